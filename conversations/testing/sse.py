"""Reading a server-sent events stream in tests (the chat streams, a conversation's live events)."""

from __future__ import annotations

import json


def sse_frames(response):
    """(event, data) for each frame of an httpx streaming `response`: ("heartbeat", None) for a comment line,
    else the frame's event name (None when it has none) and its JSON data."""
    event, data = None, []
    for line in response.iter_lines():
        if line.startswith(":"):
            yield "heartbeat", None
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and data:
            yield event, json.loads("\n".join(data))
            event, data = None, []
