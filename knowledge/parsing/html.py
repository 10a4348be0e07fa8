"""HTML: the main content under its headings; navigation, header, footer, scripts and forms dropped."""

from __future__ import annotations

import re

from knowledge.parsing.base import Section, check_text_budget

_HTML_BOILERPLATE = [
    "script", "style", "noscript", "template", "nav", "aside", "form", "iframe",
    "svg", "canvas", "button", "select", "textarea", "input", "object", "embed",
]  # fmt: skip
_HTML_BOILERPLATE_ROLES = ["navigation", "banner", "contentinfo", "complementary", "search"]
_HTML_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_HTML_BLOCKS = {
    "address", "article", "blockquote", "caption", "dd", "details", "div", "dl", "dt",
    "figcaption", "figure", "footer", "header", "hr", "li", "main", "ol", "p",
    "section", "summary", "table", "tbody", "thead", "tfoot", "tr", "ul",
}  # fmt: skip
_HTML_CELLS = {"td", "th"}
_WHITESPACE = re.compile(r"\s+")


class _BlockEnd:
    """Marker pushed on the walk stack to close a block element."""


_BLOCK_END = _BlockEnd()


def parse_html(data: bytes) -> list[Section]:
    from bs4 import BeautifulSoup, CData, NavigableString, Tag

    # Handing bytes to BeautifulSoup lets it honour the page's declared charset.
    soup = BeautifulSoup(data, "lxml")
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    _drop_html_boilerplate(soup)
    articles = soup.find_all("article")
    root = (
        soup.find("main")
        or soup.find(attrs={"role": "main"})
        or (articles[0] if len(articles) == 1 else None)
        or soup.body
        or soup
    )

    sections: list[Section] = []
    heading = title
    paragraphs: list[str] = []
    pieces: list[str] = []
    chars = 0

    def flush_paragraph() -> None:
        nonlocal chars
        text = "".join(pieces).strip()
        pieces.clear()
        if text:
            chars += len(text)
            check_text_budget(chars)
            paragraphs.append(text)

    # Iterative walk (an explicit stack, not recursion) so deeply nested
    # markup cannot hit the recursion limit.
    stack: list = [root]
    while stack:
        node = stack.pop()
        if node is _BLOCK_END:
            flush_paragraph()
        elif isinstance(node, NavigableString):
            # Comments, doctypes and processing instructions are subclasses.
            if type(node) in (NavigableString, CData):
                pieces.append(_WHITESPACE.sub(" ", str(node)))
        elif isinstance(node, Tag):
            name = node.name
            if name in _HTML_HEADINGS:
                flush_paragraph()
                sections.append(Section(text="\n\n".join(paragraphs), heading=heading))
                heading, paragraphs = node.get_text(" ", strip=True), []
            elif name == "br":
                pieces.append("\n")
            elif name == "pre":
                # Preformatted text keeps its own line breaks.
                flush_paragraph()
                pieces.append(node.get_text())
                flush_paragraph()
            else:
                if name in _HTML_CELLS:
                    pieces.append(" ")
                elif name in _HTML_BLOCKS:
                    flush_paragraph()
                    stack.append(_BLOCK_END)
                stack.extend(reversed(node.contents))
    flush_paragraph()
    sections.append(Section(text="\n\n".join(paragraphs), heading=heading))
    return sections


def _drop_html_boilerplate(soup) -> None:
    """Remove scripts, navigation, forms, sidebars and page-level header/footer."""
    doomed = list(soup.find_all(_HTML_BOILERPLATE))
    doomed += soup.find_all(attrs={"role": _HTML_BOILERPLATE_ROLES})
    doomed += soup.find_all(attrs={"aria-hidden": "true"})
    doomed += soup.find_all(hidden=True)
    # A <header> inside an article usually holds the article's title, so
    # only page-level headers and footers are boilerplate.
    doomed += [tag for tag in soup.find_all(["header", "footer"]) if not tag.find_parent(["article", "main"])]
    for tag in doomed:
        if not tag.decomposed:
            tag.decompose()


# --------------------------------------------------------------------------
# Markdown
