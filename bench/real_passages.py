"""Real passages for the retrieval benchmarks: paragraphs of the installed manual pages.

`python bench/real_passages.py [--count 20000]` collects them (cached under var/). They are short
(25–200 words), real English technical prose from thousands of different programs, so their
embeddings have the spread of a real corpus; bench/retrieval.py embeds them as its real vectors
(`--real-source man`) and bench/retrieval_generator.py compares them with its synthetic ones.
"""

import json
import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAN_DIR = Path("/usr/share/man")
SECTIONS = "123578"


def man_passages(count: int) -> list[str]:
    """`count` distinct paragraphs of 25–200 words from the manual pages (pages in a fixed random order)."""
    for cached in sorted(
        (ROOT / "var").glob("bench-man-passages-*.json"), key=lambda path: int(path.stem.rsplit("-", 1)[1])
    ):
        if int(cached.stem.rsplit("-", 1)[1]) >= count:  # a larger collection starts with the same passages
            return json.loads(cached.read_text())[:count]
    cache = ROOT / "var" / f"bench-man-passages-{count}.json"
    pages = sorted(str(path) for section in SECTIONS for path in (MAN_DIR / f"man{section}").glob("*.gz"))
    random.Random(1).shuffle(pages)
    # One line per paragraph: man pages formatted at a very large width, overstrikes removed.
    env = dict(os.environ, MANWIDTH="5000", LANG="C.UTF-8")
    seen: set[str] = set()
    passages: list[str] = []

    def formatted(page: str) -> str:
        try:
            return subprocess.run(
                ["sh", "-c", 'man -l "$0" 2>/dev/null | col -bx', page],
                capture_output=True, text=True, env=env, timeout=30,
            ).stdout  # fmt: skip
        except subprocess.TimeoutExpired:
            return ""

    pool = ThreadPoolExecutor(2)  # in the pages' order: the same passages every time
    for text in pool.map(formatted, pages):
        for line in text.splitlines():
            paragraph = " ".join(line.split())
            words = len(paragraph.split())
            # Prose, not option tables or code: mostly letters.
            if 25 <= words <= 200 and sum(c.isalpha() for c in paragraph) > 0.7 * len(paragraph):
                if paragraph not in seen:
                    seen.add(paragraph)
                    passages.append(paragraph)
        if len(passages) >= count:
            break
    pool.shutdown(cancel_futures=True)
    if len(passages) < count:
        raise SystemExit(f"only {len(passages)} man page paragraphs on this machine (asked for {count})")
    cache.parent.mkdir(exist_ok=True)
    cache.write_text(json.dumps(passages[:count]))
    return passages[:count]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    passages = man_passages(parser.parse_args().count)
    print(f"{len(passages)} passages, {sum(len(p.split()) for p in passages) / len(passages):.0f} words on average")
    sys.exit(0)
