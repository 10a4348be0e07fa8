"""Markdown: sections under their headings, markup reduced to its text."""

from __future__ import annotations

import re

from knowledge.parsing.base import Section, check_text_budget
from knowledge.parsing.detect import MD_LIST_ITEM

_MD_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_MD_SETEXT = re.compile(r"^ {0,3}(?:=+|-+)[ \t]*$")
_MD_THEMATIC_BREAK = re.compile(r"^ {0,3}(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$")
_MD_FENCE_LINE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_MD_LINK_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s+\S+")
_MD_IMAGE = re.compile(r"!\[([^\]\n]*)\]\([^)\n]*\)")
_MD_INLINE_LINK = re.compile(r"\[([^\]\n]+)\]\([^)\n]*\)")
_MD_REFERENCE_LINK = re.compile(r"\[([^\]\n]+)\]\[[^\]\n]*\]")
_MD_AUTOLINK = re.compile(r"<((?:https?|mailto):[^>\s]+)>")


def parse_markdown(data: bytes) -> list[Section]:
    text = data.decode("utf-8-sig")
    check_text_budget(len(text))
    lines = _strip_front_matter(text.splitlines())
    sections: list[Section] = []
    heading: str | None = None
    body: list[str] = []
    fence: str | None = None
    for line in lines:
        fence_match = _MD_FENCE_LINE.match(line)
        if fence is not None:
            # Inside a code block everything is content, until the closing fence.
            if fence_match and fence_match.group(1)[0] == fence[0] and len(fence_match.group(1)) >= len(fence):
                fence = None
            else:
                body.append(line)
            continue
        if fence_match:
            fence = fence_match.group(1)
            continue
        atx = _MD_ATX.match(line)
        if atx:
            sections.append(Section(text="\n".join(body), heading=heading))
            heading, body = _md_inline(atx.group(2) or ""), []
            continue
        if _MD_SETEXT.match(line) and _is_single_line_paragraph(body):
            # "Title\n=====": the line above was the heading, not content.
            title = body.pop()
            sections.append(Section(text="\n".join(body), heading=heading))
            heading, body = _md_inline(title), []
            continue
        if _MD_THEMATIC_BREAK.match(line) or _MD_LINK_DEFINITION.match(line):
            continue
        body.append(_md_inline(line))
    sections.append(Section(text="\n".join(body), heading=heading))
    return sections


def _strip_front_matter(lines: list[str]) -> list[str]:
    """Drop a leading YAML front-matter block (``---`` ... ``---``)."""
    if lines and lines[0].strip() == "---":
        for index, line in enumerate(lines[1:], start=1):
            if line.strip() in ("---", "..."):
                return lines[index + 1 :]
    return lines


def _is_single_line_paragraph(body: list[str]) -> bool:
    if not body or not body[-1].strip():
        return False
    if MD_LIST_ITEM.match(body[-1]) or body[-1].lstrip().startswith(">"):
        return False
    return len(body) == 1 or not body[-2].strip()


def _md_inline(text: str) -> str:
    """Reduce links and images to their visible text."""
    text = _MD_IMAGE.sub(r"\1", text)
    text = _MD_INLINE_LINK.sub(r"\1", text)
    text = _MD_REFERENCE_LINK.sub(r"\1", text)
    return _MD_AUTOLINK.sub(r"\1", text)


# --------------------------------------------------------------------------
# Plain text and CSV
# --------------------------------------------------------------------------
