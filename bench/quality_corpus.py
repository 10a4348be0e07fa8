"""The answer-quality benchmark's documents: GNOME Help, turned from Mallard XML into HTML pages.

The pages are the English GNOME Help (``gnome-help``) of the Debian package
``gnome-user-docs`` 43.0-2, by the GNOME Documentation Project, under
CC-BY-SA 3.0 (see bench/data/gnome-help/COPYRIGHT); they are committed unchanged
under bench/data/gnome-help/. GNOME Help is a product's end-user manual: what a
support bot's customers ask ("my battery drains fast", "how do I connect to
Wi-Fi") is what it answers.

Each topic page becomes HTML (title as <h1>, each section's title as <h2>/<h3>,
paragraphs, list items and table cells as blocks); the pages of one chapter
(the start of their id: "power", "net", "printing", ...) make one HTML document
that the benchmark uploads through the product's own upload and ingestion code,
as a customer uploading their manual's chapters would. Guide pages (lists of links
to other pages) are left out. A link without text is given the title of the
page it points to, as the help viewer shows it.
"""

from __future__ import annotations

import html
from pathlib import Path

from lxml import etree

DATA = Path(__file__).resolve().parent / "data" / "gnome-help"
MAL = "{http://projectmallard.org/1.0/}"
# Elements whose content is never shown as text of the page.
_SKIPPED = {"info", "comment", "media", "links", "desc", "credit", "revision", "include"}
# Elements that end a line of text (one HTML block each).
_BLOCKS = {"p", "item", "td", "th", "code", "screen", "synopsis", "note", "example", "tr", "figure"}


def _local(tag) -> str:
    if not isinstance(tag, str):
        return ""  # comments, processing instructions
    return tag.rsplit("}", 1)[-1]


def page_ids() -> list[str]:
    """The ids (file stems) of the topic pages, sorted."""
    ids = []
    for path in sorted(DATA.glob("*.page")):
        root = etree.parse(str(path)).getroot()
        if root.get("type", "topic") == "topic":
            ids.append(path.stem)
    return ids


def page_titles() -> dict[str, str]:
    """Every page's title (guides too: links point at them)."""
    titles = {}
    for path in sorted(DATA.glob("*.page")):
        root = etree.parse(str(path)).getroot()
        title = root.find(f"{MAL}title")
        if title is not None:
            titles[path.stem] = " ".join("".join(title.itertext()).split())
    return titles


def page_html(page_id: str, titles: dict[str, str]) -> tuple[str, str]:
    """(title, HTML document) of one page."""
    root = etree.parse(str(DATA / f"{page_id}.page")).getroot()
    # Conditional text (<if:choose>) gives variants for several platforms: the first one is kept.
    for choose in root.iter("{http://projectmallard.org/if/1.0/}choose"):
        for variant in list(choose)[1:]:
            choose.remove(variant)
    out: list[str] = []

    def inline(element) -> str:
        # The text of an inline element and its children, links without text named after their target.
        name = _local(element.tag)
        if name in _SKIPPED or not name:
            return element.tail or "" if not name else ""
        parts = [element.text or ""]
        for child in element:
            child_name = _local(child.tag)
            if child_name in _SKIPPED or not child_name:
                pass
            elif child_name in _BLOCKS or child_name in ("list", "steps", "terms", "table", "section", "title"):
                parts.append(" " + block_text(child) + " ")
            else:
                parts.append(inline(child))
            parts.append(child.tail or "")
        text = "".join(parts)
        if name == "link" and not text.strip():
            target = (element.get("xref") or "").split("#")[0]
            text = titles.get(target, "")
        return text

    def block_text(element) -> str:
        return " ".join(inline(element).split())

    def walk(element, depth: int) -> None:
        for child in element:
            name = _local(child.tag)
            if not name or name in _SKIPPED:
                continue
            if name == "title":
                level = min(depth, 4)
                out.append(f"<h{level}>{html.escape(block_text(child))}</h{level}>")
            elif name == "section":
                walk(child, depth + 1)
            elif name in (
                "list",
                "steps",
                "terms",
                "table",
                "tbody",
                "thead",
                "tr",
                "note",
                "example",
                "choose",
                "when",
                "otherwise",
                "if",
                "div",
                "figure",
                "item",
            ) and any(
                _local(grandchild.tag)
                in (
                    "p",
                    "item",
                    "tr",
                    "td",
                    "title",
                    "list",
                    "steps",
                    "when",
                    "otherwise",
                    "table",
                    "note",
                    "div",
                    "code",
                    "screen",
                    "tbody",
                    "thead",
                )
                for grandchild in child
            ):
                # A container of blocks: its blocks, each on its own.
                if name == "item" and child.find(f"{MAL}title") is not None and _local(element.tag) == "terms":
                    # A term and its definition: "Term: definition".
                    term = block_text(child.find(f"{MAL}title"))
                    rest = " ".join(block_text(grandchild) for grandchild in child if _local(grandchild.tag) != "title")
                    out.append(f"<p>{html.escape(term)}: {html.escape(rest)}</p>")
                else:
                    walk(child, depth)
            else:
                text = block_text(child)
                if text:
                    out.append(f"<p>{html.escape(text)}</p>")

    title = titles.get(page_id, page_id)
    walk(root, 1)
    body = "\n".join(out)
    return (
        title,
        f"<!DOCTYPE html>\n<html><head><title>{html.escape(title)}</title></head><body>\n{body}\n</body></html>\n",
    )


def chapter_of(page_id: str) -> str:
    """The chapter a page belongs to: the start of its id ("power-suspend" is in "power")."""
    return page_id.split("-", 1)[0]


def corpus() -> list[tuple[str, str, str]]:
    """(chapter id, title, HTML) of every chapter: its topic pages one after another, each under its <h1>.

    Pages are grouped by chapter (the 249 pages make 36 documents) as a
    manual's chapters would be uploaded: the ingestion of many tiny files
    would measure per-file overheads more than the pipeline.
    """
    titles = page_titles()
    chapters: dict[str, list[str]] = {}
    for page_id in page_ids():
        chapters.setdefault(chapter_of(page_id), []).append(page_id)
    documents = []
    for chapter, pages in chapters.items():
        title = titles.get(chapter) or chapter.capitalize()
        bodies = []
        for page_id in pages:
            page = page_html(page_id, titles)[1]
            bodies.append(page.split("<body>\n", 1)[1].rsplit("\n</body>", 1)[0])
        body = "\n".join(bodies)
        documents.append(
            (
                chapter,
                title,
                f"<!DOCTYPE html>\n<html><head><title>{html.escape(title)}</title></head><body>\n{body}\n</body></html>\n",
            )
        )
    return documents


if __name__ == "__main__":
    import sys

    titles = page_titles()
    for page_id in sys.argv[1:] or page_ids():
        print(f"=== {page_id}")
        print(page_html(page_id, titles)[1])
