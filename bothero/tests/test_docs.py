"""The docs stay true to the code: every setting is in the one table, every link resolves."""

import re
from pathlib import Path

from django.conf import settings

BASE = Path(settings.BASE_DIR)
DOCS = BASE / "docs"


def _markdown_files() -> list[Path]:
    return [BASE / "README.md", *sorted(DOCS.glob("*.md"))]


def _outside_code(text: str) -> str:
    """The text without fenced code blocks (links and headings in code are not links and headings)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def test_every_setting_read_from_the_environment_is_in_the_configuration_table():
    read = set(re.findall(r'env\.\w+\(\s*"([A-Z_]+)"', (BASE / "bothero" / "settings.py").read_text()))
    assert len(read) > 60  # the pattern still finds them
    table = (DOCS / "configuration.md").read_text()
    documented = set(re.findall(r"^\| [^|]+ \| `([A-Z_]+)` \|", table, flags=re.M))
    assert sorted(read - documented) == []
    assert sorted(documented - read - {"HOST", "PORT"}) == []


def test_every_relative_link_and_anchor_resolves():
    broken = []
    for path in _markdown_files():
        for target in re.findall(r"\]\(([^)\s]+)\)", _outside_code(path.read_text())):
            if re.match(r"^[a-z]+:", target):
                continue  # http(s) and mailto links are not checked offline
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            if not linked.exists():
                broken.append(f"{path.name}: {target}")
                continue
            if anchor and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", _outside_code(linked.read_text()), flags=re.M)
                if anchor not in {_anchor(heading) for heading in headings}:
                    broken.append(f"{path.name}: {target}")
    assert broken == []


def test_the_readme_is_a_front_door():
    readme = (BASE / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    assert "PORT=" in readme
