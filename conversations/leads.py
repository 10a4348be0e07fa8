"""Contact details in what a customer typed: names, emails and phone numbers.

Pure functions, no database: `conversations.services` decides what becomes a Lead.
Names are only taken after an explicit cue ("my name is", "I'm", "this is",
"call me"); a phone number needs 7–15 digits and either a leading "+",
separators between digit groups, or a cue word ("phone", "call", ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,24}\b"
)
PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d\s().-]{5,22}\d(?![\w])")
DATE_LIKE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$")
PHONE_CUE = re.compile(r"\b(phone|call|tel|telephone|mobile|cell|number|whatsapp|text me|reach me)\b", re.IGNORECASE)
# Strong cues take a name even in lower case; weak ones ("I'm ...") only a capitalised one.
STRONG_NAME_CUE = re.compile(r"\b(?:my name is|my name's|name is|name:|call me|you can call me)\s+", re.IGNORECASE)
WEAK_NAME_CUE = re.compile(r"(?:^|[\s,.!?])(?:i am|i'm|i’m|this is|it's|it’s)\s+", re.IGNORECASE)
NAME_WORD = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿ][A-Za-zÀ-ÖØ-öø-ÿ'’-]*")
NOT_NAME_WORDS = frozenset(
    "a an and the my me i is am at in on of for from to with but or so just not no yes here there interested "
    "looking trying wondering calling writing contacting asking hoping sorry fine good great ok okay happy sure "
    "new back still also very really available ready glad thanks thank please hi hello hey email phone number "
    "reach contact customer client".split()
)
MAX_NAME_WORDS = 3


@dataclass(frozen=True)
class ContactDetails:
    name: str = ""
    email: str = ""
    phone: str = ""

    def __bool__(self) -> bool:
        return bool(self.name or self.email or self.phone)


def find_email(text: str) -> str:
    match = EMAIL.search(text)
    return match.group(0).lower()[:254] if match else ""


def find_phone(text: str) -> str:
    without_emails = EMAIL.sub(" ", text)
    has_cue = bool(PHONE_CUE.search(without_emails))
    for match in PHONE.finditer(without_emails):
        candidate = match.group(0).strip()
        digits = re.sub(r"\D", "", candidate)
        if not 7 <= len(digits) <= 15 or DATE_LIKE.match(candidate):
            continue
        grouped = bool(re.search(r"\d[\s().-]+\d", candidate))
        if candidate.startswith("+") or grouped or has_cue:
            return candidate[:40]
    return ""


def _name_after(text: str, start: int, *, require_capital: bool) -> str:
    words = []
    for match in NAME_WORD.finditer(text, start):
        gap = text[start : match.start()] if not words else text[words[-1][1] : match.start()]
        if gap.strip():  # punctuation ends the name
            break
        word = match.group(0)
        if word.lower() in NOT_NAME_WORDS or (require_capital and not word[0].isupper()):
            break
        words.append((word, match.end()))
        if len(words) == MAX_NAME_WORDS:
            break
    names = [word for word, _ in words]
    if not names:
        return ""
    return " ".join(name if name[0].isupper() else name.capitalize() for name in names)[:200]


def find_name(text: str) -> str:
    for cue, require_capital in ((STRONG_NAME_CUE, False), (WEAK_NAME_CUE, True)):
        for match in cue.finditer(text):
            name = _name_after(text, match.end(), require_capital=require_capital)
            if name:
                return name
    return ""


def extract_contact_details(text: str, fields=("name", "email", "phone")) -> ContactDetails:
    """The contact details in `text`, limited to `fields` (a bot's lead_capture.fields)."""
    return ContactDetails(
        name=find_name(text) if "name" in fields else "",
        email=find_email(text) if "email" in fields else "",
        phone=find_phone(text) if "phone" in fields else "",
    )
