"""Parse untrusted documents in a child process with a wall-clock timeout and a memory cap.

The parsers already refuse oversized archives, too many pages and XML entity
tricks, but a crafted PDF can still make pypdf spin or allocate for a long
time. Running the parse in a short-lived child process bounds both: the child
sets its own address-space and CPU limits before it reads a byte, and the
parent kills it when the wall-clock timeout passes. The child gets a minimal
environment (no database URL, no secrets).

Run as ``python -m knowledge.sandbox <filename>``: reads the document on
stdin, writes JSON to stdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from knowledge.parsing import ParsedDocument, ParseError, Section

BASE_DIR = Path(__file__).resolve().parent.parent

PARSE_TIMEOUT = "parse_timeout"
PARSE_OUT_OF_MEMORY = "parse_out_of_memory"
PARSE_CRASHED = "parse_failed"


def parse_in_subprocess(
    data: bytes, *, filename: str | None, timeout_seconds: float, memory_limit_mb: int
) -> ParsedDocument:
    """`knowledge.parsing.parse_document` in a child process; raises `ParseError` on any failure."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(BASE_DIR),
        "LANG": "C.UTF-8",
        "BOTHERO_SANDBOX_MEMORY_MB": str(memory_limit_mb),
        "BOTHERO_SANDBOX_CPU_SECONDS": str(int(timeout_seconds) + 1),
    }
    try:
        completed = subprocess.run(
            [sys.executable, "-s", "-m", "knowledge.sandbox", filename or ""],
            input=data,
            capture_output=True,
            timeout=timeout_seconds,
            cwd=BASE_DIR,
            env=env,
            check=False,
            # Its own session: a Ctrl-C at the terminal (make run) reaches the server, which finishes the
            # document it is ingesting, but not this child, whose parse would then fail for no reason.
            start_new_session=True,
        )
    except subprocess.TimeoutExpired:
        raise ParseError(PARSE_TIMEOUT, f"Parsing took longer than {timeout_seconds:g} seconds.") from None
    try:
        result = json.loads(completed.stdout)
    except ValueError:
        result = None
    if completed.returncode != 0 or not isinstance(result, dict):
        stderr = completed.stderr.decode("utf-8", "replace")
        if "MemoryError" in stderr or completed.returncode in (-9, 137):
            raise ParseError(PARSE_OUT_OF_MEMORY, f"Parsing needed more than {memory_limit_mb} MB of memory.")
        if completed.returncode in (-24, 152):  # SIGXCPU: the CPU limit
            raise ParseError(PARSE_TIMEOUT, f"Parsing took longer than {timeout_seconds:g} seconds.")
        raise ParseError(PARSE_CRASHED, "The document could not be parsed.")
    if "error" in result:
        raise ParseError(result["error"]["code"], result["error"]["message"])
    return ParsedDocument(
        content_type=result["content_type"],
        sections=[Section(text=s["text"], heading=s["heading"], page=s["page"]) for s in result["sections"]],
    )


def _child_main() -> int:
    import resource

    memory = int(os.environ.get("BOTHERO_SANDBOX_MEMORY_MB", "1024")) * 1024 * 1024
    cpu = int(os.environ.get("BOTHERO_SANDBOX_CPU_SECONDS", "60"))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    from knowledge.parsing import parse_document

    data = sys.stdin.buffer.read()
    filename = sys.argv[1] if len(sys.argv) > 1 else None
    try:
        parsed = parse_document(data, filename=filename or None)
    except ParseError as exc:
        body = {"error": {"code": exc.code, "message": exc.message}}
    except MemoryError:
        print("MemoryError", file=sys.stderr)
        return 3
    else:
        body = {
            "content_type": parsed.content_type,
            "sections": [{"text": s.text, "heading": s.heading, "page": s.page} for s in parsed.sections],
        }
    sys.stdout.write(json.dumps(body))
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
