"""Chat latency benchmark: what /v1/chat/completions adds on top of the model it calls.

    .venv/bin/python bench/chat.py                       # defaults below
    .venv/bin/python bench/chat.py --requests 200 --delay 0.05 --workers 1

In one run, against a loopback OpenAI-compatible stub that answers after a
fixed delay (`conversations.testing.llm_server`, its own process):

* **direct**: the stub called straight (the model's own latency);
* **platform**: `POST /v1/chat/completions` on uvicorn (`LLM_PROVIDER=openai`
  pointing at the stub), for a bot with 10,000 chunks of knowledge — so every
  request authenticates, rate-limits, checks the monthly quota, stores the
  conversation and both messages with their events, embeds the question
  (both local ONNX models of the ensemble), runs the hybrid search, builds the prompt with history,
  and calls the stub.

Each is measured plain (full answer) and streaming (time to the first token),
at concurrency 1 and 8; the added latency is platform minus direct, per
percentile. Each client keeps a conversation for 5 turns, then starts a new one.

The 10,000 chunks are inserted directly as rows (100 ready documents of 100
chunks each, with their full-text statistics as ingestion keeps them), for
speed: the ingestion pipeline (parsing, chunking) is not run,
and one passage in 25 is embedded by the local model, the next 24 getting its
vector plus small noise (see `chunk_vectors`). Questions are embedded for real.
Without DATABASE_URL a `bench_chat` database is made on the embedded
PostgreSQL server (the development database is not touched), and the bot is
reused by later runs. Results: printed, and written to bench/results/chat.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))

from bench.common import bench_database_url, results_file, start_stub, start_web, stop, summary  # noqa: E402

BENCH_DB = "bench_chat"
BOT_NAME = "Bench bot (10k chunks)"
CHUNKS = 10_000
DOCUMENTS = 100
EMBED_EVERY = 25  # see chunk_vectors
TARGETS = {"plain_p50": 15.0, "plain_p99": 50.0, "ttft_p50": 20.0}

TOPICS = {
    "shipping": ["ships in {n} business days", "express delivery costs ${p}", "free shipping above ${q}"],
    "refunds": ["can be returned within {n} days", "refunds reach your card in {m} business days",
                "engraved items are final sale"],
    "warranty": ["carries a {n}-year warranty", "the warranty covers motor failure", "keep your receipt for claims"],
    "installation": ["mounts with {m} screws", "installation takes about {n} minutes", "needs a 12 V supply"],
    "pricing": ["costs ${p} before tax", "bulk orders of {q} units get {m}% off", "prices include VAT in the EU"],
    "support": ["support answers within {m} hours", "call the hotline on weekdays", "chat is open 24/7"],
    "billing": ["invoices are sent monthly", "we accept cards and bank transfer", "payment is due in {n} days"],
    "accounts": ["passwords need {m} characters", "two-factor login is available", "accounts can be shared by teams"],
}  # fmt: skip
QUESTION_TEMPLATES = [
    "How long does shipping take for the Widget {n}?",
    "Can I get a refund on the Widget {n}?",
    "What warranty does the Widget {n} have?",
    "How do I install the Widget {n}?",
    "How much is the Widget {n}?",
    "When does support answer questions about the Widget {n}?",
    "How is the Widget {n} billed?",
    "Can my team share an account for the Widget {n}?",
]


# --- data -------------------------------------------------------------------------------


def chunk_text(rng: random.Random, product: int) -> tuple[str, str]:
    topic = rng.choice(list(TOPICS))
    facts = []
    for _ in range(6):
        fact = rng.choice(TOPICS[topic]).format(
            n=rng.randint(2, 30), m=rng.randint(2, 12), p=rng.randint(10, 900), q=rng.randint(20, 500)
        )
        facts.append(f"The Widget {product} {fact}.")
    filler = " ".join(rng.choice(["Note that", "Remember:", "In short,", "Also,"]) + " " + f for f in facts[:3])
    return f"Widget {product} {topic}", " ".join(facts) + " " + filler


def chunk_vectors(texts: list[str], rng: random.Random, embedder=None):
    """Embeddings for `texts`: every EMBED_EVERY-th text embedded by the local model (or `embedder`), the rest
    near it.

    Embedding 10,000 passages on two loaded cores takes tens of minutes, so
    only one in EMBED_EVERY is embedded for real; the texts that follow it get
    that vector plus small Gaussian noise (re-normalised), which keeps the
    index's clustered shape (similar passages, near vectors) at a fraction of
    the cost. The questions are still embedded for real, per request.
    """
    import numpy as np

    from knowledge.embeddings import get_embedder

    anchors = (embedder or get_embedder("local")).embed(texts[::EMBED_EVERY], batch_size=16)
    noise = np.random.default_rng(rng.randint(0, 2**32)).normal(0, 0.01, size=(len(texts), anchors.shape[1]))
    vectors = anchors.repeat(EMBED_EVERY, axis=0)[: len(texts)] + noise.astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def prepare_data():
    """The bench tenant, plan, bot with 10,000 chunks (made once), and a fresh API key."""
    from django.db import transaction

    from accounts.models import Plan, Tenant
    from accounts.services import api_key_create
    from bots.models import Bot
    from knowledge.models import Chunk, Document, LexemeStat
    from knowledge.services import lexeme_stats_change

    plan, _ = Plan.objects.get_or_create(
        slug="bench",
        defaults={
            "name": "Bench",
            "api_access": True,
            "max_messages_per_month": 100_000_000,
            "requests_per_minute": 1_000_000,
            "sort_order": 99,
        },
    )
    tenant, _ = Tenant.objects.get_or_create(name="Chat bench", defaults={"plan": plan})
    bot, _ = Bot.objects.get_or_create(
        tenant=tenant,
        name=BOT_NAME,
        defaults={"instructions": "You are Acme's support assistant.", "retrieval": {"top_k": 5, "min_score": 0.0}},
    )
    have = Chunk.objects.filter(bot=bot).count()
    if have == CHUNKS and not LexemeStat.objects.filter(bot=bot).exists():
        # Made by an earlier version of this script, which left the full-text ranker without statistics.
        for document in Document.objects.filter(bot=bot):
            lexeme_stats_change(document=document, sign=+1, chunk_count=document.chunk_count)
    if have != CHUNKS:
        print(f"Building {CHUNKS} chunks (once)…", flush=True)
        started = time.perf_counter()
        Document.objects.filter(bot=bot).delete()
        rng = random.Random(7)
        texts = [chunk_text(rng, product=rng.randint(1, 500)) for _ in range(CHUNKS)]
        vectors = chunk_vectors([text for _, text in texts], rng)
        per_document = CHUNKS // DOCUMENTS
        with transaction.atomic():
            for number in range(DOCUMENTS):
                part = texts[number * per_document : (number + 1) * per_document]
                document = Document.objects.create(
                    tenant=tenant,
                    bot=bot,
                    title=f"Product handbook {number + 1}",
                    source_type=Document.SourceType.TEXT,
                    content_type="text/plain",
                    size_bytes=sum(len(text) for _, text in part),
                    content_sha256=f"{number:064d}",
                    status=Document.Status.READY,
                    progress=100,
                    chunk_count=len(part),
                    text="\n\n".join(text for _, text in part),
                )
                Chunk.objects.bulk_create(
                    [
                        Chunk(
                            tenant=tenant,
                            bot=bot,
                            document=document,
                            position=position,
                            heading=heading,
                            text=text,
                            token_count=len(text.split()),
                            embedding=vectors[number * per_document + position],
                        )
                        for position, (heading, text) in enumerate(part)
                    ],
                    batch_size=500,
                )
                # As ingestion does: the full-text ranker weighs query words by these document frequencies.
                lexeme_stats_change(document=document, sign=+1, chunk_count=len(part))
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    missing_aux = Chunk.objects.filter(bot=bot, embedding_aux__isnull=True)
    if missing_aux.exists():
        # Chunks made before the embedding ensemble: give them bge-small-en's vectors, as `reindex` would
        # (the same anchors-plus-noise scheme, in the chunks' order).
        from knowledge.embeddings import get_auxiliary_embedder

        print("Adding the ensemble's second vectors (once)…", flush=True)
        started = time.perf_counter()
        chunks = list(missing_aux.order_by("document_id", "position").only("id", "text"))
        aux = chunk_vectors([chunk.text for chunk in chunks], random.Random(8), get_auxiliary_embedder())
        for chunk, vector in zip(chunks, aux, strict=True):
            chunk.embedding_aux = vector
        Chunk.objects.bulk_update(chunks, ["embedding_aux"], batch_size=500)
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    key = api_key_create(tenant=tenant, name="bench").key
    return bot, key


# --- clients ---------------------------------------------------------------------------------


class Direct:
    """The stub, called the way the platform calls it (same prompt size)."""

    name = "direct"

    def __init__(self, client, base_url: str, prompt: str):
        self.client = client
        self.url = f"{base_url}/chat/completions"
        self.prompt = prompt

    def body(self, question: str, stream: bool) -> dict:
        body = {
            "model": "gpt-oss-120b",
            "messages": [{"role": "system", "content": self.prompt}, {"role": "user", "content": question}],
            "temperature": 0.2,
            "max_tokens": 512,
            "stream": stream,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    async def plain(self, question: str, session: dict) -> float:
        started = time.perf_counter()
        response = await self.client.post(self.url, json=self.body(question, False))
        response.raise_for_status()
        response.json()
        return time.perf_counter() - started

    async def first_token(self, question: str, session: dict) -> float:
        started = time.perf_counter()
        first = None
        async with self.client.stream("POST", self.url, json=self.body(question, True)) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if first is None and line.startswith("data: {"):
                    choices = json.loads(line[6:]).get("choices") or [{}]
                    if choices[0].get("delta", {}).get("content"):
                        first = time.perf_counter() - started
        return first


class Platform:
    name = "platform"

    def __init__(self, client, base_url: str, bot_id: str, key: str):
        self.client = client
        self.url = f"{base_url}/v1/chat/completions"
        self.bot_id = bot_id
        self.headers = {"Authorization": f"Bearer {key}"}

    def body(self, question: str, session: dict, stream: bool) -> dict:
        body = {"bot_id": self.bot_id, "message": question, "stream": stream}
        if session.get("conversation_id") and session["turns"] < 5:
            body["conversation_id"] = session["conversation_id"]
        else:
            session["turns"] = 0
        session["turns"] += 1
        return body

    async def plain(self, question: str, session: dict) -> float:
        started = time.perf_counter()
        response = await self.client.post(self.url, json=self.body(question, session, False), headers=self.headers)
        if response.status_code != 200:
            raise RuntimeError(f"platform answered {response.status_code}: {response.text[:300]}")
        session["conversation_id"] = response.json()["conversation_id"]
        return time.perf_counter() - started

    async def first_token(self, question: str, session: dict) -> float:
        started = time.perf_counter()
        first = None
        body = self.body(question, session, True)
        async with self.client.stream("POST", self.url, json=body, headers=self.headers) as response:
            if response.status_code != 200:
                raise RuntimeError(f"platform answered {response.status_code}: {(await response.aread())[:300]}")
            event = None
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "message.start":
                    session["conversation_id"] = json.loads(line[6:])["conversation_id"]
                elif event == "message.delta" and first is None:
                    first = time.perf_counter() - started
                elif event == "error":
                    raise RuntimeError(f"stream error: {line}")
        return first


async def run(target, mode: str, questions: list[str], requests: int, concurrency: int) -> list[float]:
    call = target.plain if mode == "plain" else target.first_token
    timings: list[float] = []
    counter = iter(range(requests))

    async def worker(number: int):
        session = {"turns": 0}
        rng = random.Random(number)
        for _ in counter:
            timings.append(await call(rng.choice(questions), session))

    await asyncio.gather(*(worker(number) for number in range(concurrency)))
    return timings


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its live descendants (uvicorn workers; Linux /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        fields = _stat(current)
        if fields is not None:
            total += sum(int(value) for value in fields[11:13]) / os.sysconf("SC_CLK_TCK")
        todo.extend(parents.get(current, []))
    return total


async def measure(args, bot, key, stub_url: str, platform_url: str, platform_pid: int) -> list[dict]:
    import httpx

    from conversations.prompt import system_prompt

    rng = random.Random(1)
    questions = [rng.choice(QUESTION_TEMPLATES).format(n=rng.randint(1, 500)) for _ in range(500)]
    # A prompt the size of the platform's: instructions, 5 passages of ~100 words, rules.
    passages = [
        type("P", (), {"chunk_id": f"chk_{i}", "title": "Handbook", "heading": None, "page": None,
                       "text": chunk_text(rng, i)[1]})()
        for i in range(5)
    ]  # fmt: skip
    prompt = system_prompt(instructions=bot.instructions, fallback_message=bot.fallback_message, passages=passages)
    rows = []
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        direct = Direct(client, stub_url, prompt)
        platform = Platform(client, platform_url, bot.public_id, key)
        # Warm both paths (model load, connection pools, caches).
        await run(platform, "plain", questions, 20, 2)
        await run(platform, "stream", questions, 10, 2)
        await run(direct, "plain", questions, 10, 2)
        for concurrency in (1, 8):
            for mode in ("plain", "stream"):
                count = args.requests if concurrency == 1 else args.requests * 2
                results = {}
                for target in (direct, platform):
                    cpu_before = cpu_seconds(platform_pid)
                    timings = await run(target, mode, questions, count, concurrency)
                    results[target.name] = summary([seconds * 1000 for seconds in timings])
                    if target is platform:
                        results[target.name]["web_cpu_ms"] = (cpu_seconds(platform_pid) - cpu_before) * 1000 / count
                row = {"mode": mode, "concurrency": concurrency, **results}
                row["added"] = {p: results["platform"][p] - results["direct"][p] for p in ("p50", "p90", "p99")}
                rows.append(row)
                print(
                    f"{mode:6} c={concurrency}: direct p50 {results['direct']['p50']:.1f} p99 "
                    f"{results['direct']['p99']:.1f} | platform p50 {results['platform']['p50']:.1f} p99 "
                    f"{results['platform']['p99']:.1f} | added p50 {row['added']['p50']:.1f} "
                    f"p99 {row['added']['p99']:.1f} ms | web CPU {results['platform']['web_cpu_ms']:.1f} ms/request",
                    flush=True,
                )
    return rows


def phase_breakdown(bot, samples: int = 40) -> list[tuple[str, float, float]]:
    """Median wall and CPU milliseconds of the reply's steps, called in this process (extractive provider)."""
    import resource
    import statistics

    from conversations import services
    from conversations.providers import Usage
    from knowledge.selectors import query_embeddings, search

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    tenant = bot.tenant
    prepared = services.reply_prepare(tenant=tenant, bot=bot, user_message="How much is the Widget 7?")

    def finish(index):
        prepared.assistant_id = f"msg_bench{time.monotonic_ns()}"
        services.reply_finish(prepared=prepared, content="It costs $40.", usage=Usage(200, 5), status="complete",
                              latency_ms=1)  # fmt: skip

    steps = [
        # Both models of the embedding ensemble, as chat embeds a question.
        ("embed the question", lambda i: query_embeddings(f"How much is the Widget {i}?")),
        ("search (embed + hybrid SQL, 10k chunks)", lambda i: search(tenant=tenant, bot=bot, query=f"Widget {i} price?")),
        ("store the message (quota, conversation, message, events)",
         lambda i: services.user_message_record(tenant=tenant, bot=bot, conversation=None, content="Hi",
                                                metadata={}, end_user_id="")),
        ("reply_prepare (the two above overlapped, prompt)",
         lambda i: services.reply_prepare(tenant=tenant, bot=bot, user_message=f"How much is the Widget {i}?")),
        ("reply_finish (answer, counters, usage, event)", finish),
    ]  # fmt: skip
    rows = []
    for name, step in steps:
        step(0)
        walls, cpus = [], []
        for index in range(samples):
            started, cpu_started = time.perf_counter(), cpu()
            step(index)
            walls.append((time.perf_counter() - started) * 1000)
            cpus.append((cpu() - cpu_started) * 1000)
        rows.append((name, statistics.median(walls), statistics.median(cpus)))
    return rows


def report(rows: list[dict], args) -> str:
    lines = [
        f"stub delay {args.delay * 1000:.0f} ms, {args.requests} requests at c=1 and {args.requests * 2} at c=8, "
        f"uvicorn workers {args.workers}, {os.cpu_count()} CPUs",
        "",
        "| mode | concurrency | direct p50 / p99 (ms) | platform p50 / p99 (ms) | added p50 / p99 (ms) "
        "| web CPU per request (ms) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        mode = "plain (full answer)" if row["mode"] == "plain" else "streaming (time to first token)"
        d, p, a = row["direct"], row["platform"], row["added"]
        lines.append(
            f"| {mode} | {row['concurrency']} | {d['p50']:.1f} / {d['p99']:.1f} | {p['p50']:.1f} / {p['p99']:.1f} "
            f"| {a['p50']:.1f} / {a['p99']:.1f} | {p['web_cpu_ms']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="Chat latency: platform vs a direct call to the model.")
    parser.add_argument("--requests", type=int, default=300, help="requests per measurement at concurrency 1")
    parser.add_argument("--delay", type=float, default=0.05, help="the stub's fixed delay before answering (s)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = parser.parse_args()

    database_url = bench_database_url(BENCH_DB)
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bothero.settings")
    os.environ.setdefault("DB_POOL", "true")  # as in the web process (bothero/asgi.py), for the step timings
    import django

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    bot, key = prepare_data()
    phases = phase_breakdown(bot)

    stub, stub_url = start_stub("--delay", str(args.delay))
    platform, platform_url = start_web(database_url, stub_url, workers=args.workers)
    try:
        load_before = os.getloadavg()
        rows = asyncio.run(measure(args, bot, key, stub_url, platform_url, platform.pid))
        load_after = os.getloadavg()
    finally:
        stop(platform)
        stop(stub)
    table = report(rows, args)
    table += f"\n\nload average (1 min) before/after: {load_before[0]:.1f} / {load_after[0]:.1f}"
    table += "\n\n| step (in process, median) | wall (ms) | CPU (ms) |\n|---|---|---|\n"
    table += "\n".join(f"| {name} | {wall:.1f} | {cpu:.1f} |" for name, wall, cpu in phases)
    print()
    print(table)
    plain_c1 = next(r for r in rows if r["mode"] == "plain" and r["concurrency"] == 1)["added"]
    stream_c1 = next(r for r in rows if r["mode"] == "stream" and r["concurrency"] == 1)["added"]
    verdict = {
        "added plain p50 ≤ 15 ms": plain_c1["p50"] <= TARGETS["plain_p50"],
        "added plain p99 ≤ 50 ms": plain_c1["p99"] <= TARGETS["plain_p99"],
        "added TTFT p50 ≤ 20 ms": stream_c1["p50"] <= TARGETS["ttft_p50"],
    }
    print()
    for name, ok in verdict.items():
        print(f"{'PASS' if ok else 'MISS'}  {name} (concurrency 1)")
    results_file("chat.json").write_text(
        json.dumps(
            {
                "args": vars(args),
                "rows": rows,
                "phases": phases,
                "targets_at_c1": verdict,
                "loadavg": [load_before, load_after],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
