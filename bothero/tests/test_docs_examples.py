"""The docs' curl examples run against a live server, so the docs cannot rot.

Every ```bash block right after a `<!-- runnable ... -->` comment in README.md
and docs/*.md is run with bash (`set -euo pipefail`) against uvicorn serving
this test's database, with the demo tenant made by `manage.py demo`. The block
is run as written, with three adaptations a reader makes too: the server's
address replaces `http://127.0.0.1:8000`, `BOTHERO_API_KEY` and `BOT_ID` hold
the demo key and bot (lines that `export` them, with the `...` placeholders
make run's output fills in, are skipped), and every curl fails on an HTTP
error status (`--fail-with-body`), so a 4xx or 5xx fails the test with its body.
"""

import re
import subprocess
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from bothero.testing.factories import plan
from bothero.testing.processes import uvicorn_server
from bots.models import Bot

BASE = Path(settings.BASE_DIR)
MARKER = re.compile(r"^<!-- runnable\b[^>]*-->\n```bash\n(.*?)^```", re.M | re.S)
PROVIDED = ("BOTHERO_API_KEY", "BOT_ID")
PRELUDE = 'set -euo pipefail\ncurl() { command curl --fail-with-body --max-time 60 "$@"; }\n'


def runnable_blocks() -> list[tuple[str, str]]:
    """(where, code) of every marked block, in document order."""
    blocks = []
    for path in [BASE / "README.md", *sorted((BASE / "docs").glob("*.md"))]:
        text = path.read_text()
        for match in MARKER.finditer(text):
            line = text[: match.start()].count("\n") + 2
            blocks.append((f"{path.relative_to(BASE)}:{line}", match.group(1)))
    return blocks


def adapted(code: str, base_url: str) -> str:
    kept = [line for line in code.splitlines() if not re.match(rf"^export ({'|'.join(PROVIDED)})=", line.strip())]
    return PRELUDE + "\n".join(kept).replace("http://127.0.0.1:8000", base_url) + "\n"


def test_the_docs_mark_blocks_to_run():
    where = {location.split(":")[0] for location, _ in runnable_blocks()}
    assert {"README.md", "docs/api.md", "docs/chat.md", "docs/analytics.md"} <= where


def test_the_adaptation_keeps_the_commands_and_drops_only_the_placeholders():
    code = (
        "export BOTHERO_API_KEY=bh_live_...   # from make run\nexport OTHER=1\ncurl -s http://127.0.0.1:8000/v1/bots\n"
    )
    script = adapted(code, "http://127.0.0.1:5555")
    assert "bh_live_..." not in script
    assert "export OTHER=1" in script
    assert "curl -s http://127.0.0.1:5555/v1/bots" in script


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_every_runnable_block_of_the_docs_succeeds_against_a_live_server(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    plan("legend")  # seeded again if an earlier transactional test flushed the plans
    out = StringIO()
    call_command("demo", stdout=out)
    key = re.search(r"\b(bh_live_[0-9A-Za-z]{38})\b", out.getvalue()).group(1)
    bot_id = Bot.objects.get(name="Demo Support Bot").public_id
    failures = []
    with uvicorn_server(MEDIA_ROOT=str(tmp_path / "media")) as base_url:
        for where, code in runnable_blocks():
            done = subprocess.run(
                ["bash", "-c", adapted(code, base_url)],
                cwd=tmp_path,
                env={"PATH": "/usr/bin:/bin", "BOTHERO_API_KEY": key, "BOT_ID": bot_id},
                capture_output=True,
                text=True,
                timeout=300,
            )
            if done.returncode != 0:
                failures.append(f"{where} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    assert failures == [], "\n\n".join(failures)
