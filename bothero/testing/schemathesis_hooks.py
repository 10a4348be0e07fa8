"""Schemathesis hooks for `bothero/tests/test_schemathesis.py` (loaded through SCHEMATHESIS_HOOKS).

The OpenAPI document states every rule about a single value (types, formats,
patterns, lengths, enums, unknown fields). A few rules are about several
values together or about the clock, which JSON Schema cannot state; each is
written in the operation's description, and here a generated request that
the schema calls valid is made to follow it, as a real client would:

* an `Idempotency-Key` names one request: a new request gets a new key
  (reusing one for another request is refused, 422 `idempotency_key_reused`);
* `POST /v1/auth/keys`: `expires_at` lies in the future;
* analytics: `end` after `start`, at most 366 days apart (31 for hourly series);
  the usage `month` not in the future;
* `POST /v1/chat/completions` in OpenAI's shape: the last message is the
  customer's (`role: user`, some text);
* chat `metadata` keys are at most 64 characters (OpenAPI 3.0 has no
  `propertyNames`);
* `POST /v1/knowledge/upload`: the file is a document (the type is judged by
  content, not by the schema's `format: binary`), here a short text file.

Nothing else is touched, and requests that are invalid on purpose (negative
mode) are left alone.

One hook keeps the run short: the coverage phase sends one request per value
of an enum, and `timezone` lists every IANA zone (about 600, on four
operations). Coverage keeps the zones below, the odd ones (half- and
quarter-hour offsets, a 30-minute DST shift, both ends of the date line);
the fuzzing and stateful phases still draw from all of them.
"""

import itertools
import re
import uuid
from datetime import UTC, date, datetime, timedelta

import schemathesis
from schemathesis.transport.serialization import Binary

_KEY = re.compile(r"^[!-~]{1,255}$")
_sequence = itertools.count()
# Keys stay unique across runs against the same database too.
_RUN = uuid.uuid4().hex[:8]


COVERAGE_TIME_ZONES = frozenset(
    {
        "UTC",
        "America/New_York",
        "America/St_Johns",
        "Asia/Kolkata",
        "Asia/Kathmandu",
        "Australia/Lord_Howe",
        "Pacific/Chatham",
        "Pacific/Kiritimati",
        "Etc/GMT+12",
        "Europe/Dublin",
    }
)


def _is_positive(case) -> bool:
    """A request meant to be valid in every part (a part may be invalid on purpose while the mode says positive)."""
    meta = getattr(case, "meta", None)
    if meta is None:
        return True
    return meta.generation.mode.is_positive and all(info.mode.is_positive for info in meta.components.values())


def _fresh_idempotency_key(case) -> None:
    headers = case.headers
    if not headers:
        return
    for name in list(headers):
        if name.lower() == "idempotency-key" and isinstance(headers[name], str) and _KEY.match(headers[name]):
            suffix = f"~{_RUN}{next(_sequence)}"
            headers[name] = headers[name][: 255 - len(suffix)] + suffix


def _instant(text):
    if not isinstance(text, str):
        return None
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    except ValueError:
        return None


def _analytics_range(case) -> None:
    query = case.query
    if not query or "start" not in query:
        return
    start = _instant(query["start"])
    end = _instant(query["end"]) if "end" in query else datetime.now(UTC)
    if start is None or end is None:
        return
    longest = timedelta(days=30 if query.get("granularity") == "hour" else 365)
    if not timedelta(days=2) <= end - start <= longest:
        # Dates and date-times alike: a day after `start`, in start's own format.
        moved = start + timedelta(days=2)
        query["end"] = moved.date().isoformat() if len(query["start"]) == 10 else moved.isoformat()


def _usage_month(case) -> None:
    query = case.query
    if query and isinstance(query.get("month"), str) and query["month"] > datetime.now(UTC).strftime("%Y-%m"):
        query["month"] = datetime.now(UTC).strftime("%Y-%m")


def _api_key_expiry(case) -> None:
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("expires_at"), str):
        moment = _instant(body["expires_at"])
        if moment is not None and moment <= datetime.now(UTC) + timedelta(minutes=5):
            body["expires_at"] = (datetime.now(UTC) + timedelta(days=30)).isoformat()


def _chat_metadata_keys(case) -> None:
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("metadata"), dict):
        body["metadata"] = {key[:64]: value for key, value in body["metadata"].items()}


def _openai_last_message(case) -> None:
    body = case.body
    if not isinstance(body, dict) or "message" in body or not isinstance(body.get("messages"), list):
        return
    last = body["messages"][-1] if body["messages"] else None
    content = last.get("content") if isinstance(last, dict) else None
    if not (isinstance(last, dict) and last.get("role") == "user" and isinstance(content, str) and content.strip()):
        if len(body["messages"]) >= 200:
            body["messages"].pop()
        body["messages"].append({"role": "user", "content": "When are you open?"})


def _upload_is_a_document(case) -> None:
    body = case.body
    if isinstance(body, dict) and "file" in body:
        body["file"] = Binary(b"Opening hours: Monday to Friday, 9 AM to 6 PM.\n")


@schemathesis.hook
def before_call(context, case, kwargs):
    if not _is_positive(case):
        return
    _fresh_idempotency_key(case)
    path, method = case.operation.path, case.method.upper()
    if path == "/v1/analytics/usage":
        _usage_month(case)
    elif path.startswith("/v1/analytics/"):
        _analytics_range(case)
    elif path == "/v1/auth/keys" and method == "POST":
        _api_key_expiry(case)
    elif path == "/v1/chat/completions":
        _chat_metadata_keys(case)
        _openai_last_message(case)


@schemathesis.hook
def filter_case(context, case):
    meta = getattr(case, "meta", None)
    data = getattr(getattr(meta, "phase", None), "data", None)
    if getattr(data, "parameter", None) == "timezone" and str(getattr(data, "scenario", "")) == "enum_value":
        return (case.query or {}).get("timezone") in COVERAGE_TIME_ZONES
    return True


@schemathesis.hook
def map_case(context, case):
    # At generation time, before schemathesis records what it validated: a file replaced later would be
    # judged again, and its bytes (not a JSON string) would make the request look invalid.
    if case.operation.path == "/v1/knowledge/upload" and _is_positive(case):
        _upload_is_a_document(case)
    return case
