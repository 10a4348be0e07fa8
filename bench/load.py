"""Load test of the production layout without Docker: mixed traffic from many clients, memory and connections.

    flock /tmp/bench.lock nice -n 5 .venv/bin/python bench/load.py                 # 5 minutes, 50 clients
    flock /tmp/bench.lock nice -n 5 .venv/bin/python bench/load.py --duration 60   # a shorter run

The process set of docker-compose.yml, on loopback (`bothero.testing.stack`):
uvicorn with 2 workers, an ingestion worker (`-Q celery,ingestion -c 2`), two
solo webhook workers (`CELERY_DB_REUSE_MAX=1000`), beat, a private
redis-server and a separate embedded PostgreSQL cluster (deleted after).
The model is the stub OpenAI-compatible server (`conversations.testing.
llm_server`, its own process) with a realistic delay before the first token
and between tokens; webhooks go to a loopback receiver.

Each of `--clients` clients (spread over `--tenants` Enterprise tenants, one
bot each, trained on a few documents, with a webhook endpoint subscribed to
every event) loops over a weighted mix, with a random think time:

* streaming chat (`POST /v1/chat/completions`, `stream: true`; 5 turns per
  conversation), timed to the last byte;
* reads: the bot list, the document list, the conversation list, a
  conversation's messages;
* bot updates (each emits `bot.updated`, delivered to the receiver);
* text uploads (ingested by the worker; each emits `document.ready`).

After a warm-up (not counted) it runs for `--duration` seconds, then waits
for ingestion and webhook delivery to finish. Reported: requests, errors
(anything but 2xx; 429s counted apart, as documented), p50/p99 per route,
throughput, RSS of every process at the start of the measured window and at
its end, and the peak number of PostgreSQL connections (sampled every
second) against `max_connections`. Results: printed, and written to
bench/results/load.json; the processes' logs are copied to var/load-logs/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bothero.settings")

import httpx  # noqa: E402

from bench.common import percentile, results_file, start_stub  # noqa: E402
from bothero.testing.stack import running_stack, wait_until  # noqa: E402
from webhooks.tests.receiver import Receiver  # noqa: E402

WORDS = (
    "refund shipping warranty invoice account password delivery order return exchange store hours "
    "battery charger screen repair subscription billing plan upgrade cancel tracking parcel courier"
).split()
QUESTIONS = [
    "How do I get a refund?",
    "When does my parcel arrive?",
    "Can I change my subscription plan?",
    "What are the store hours?",
    "Is the battery covered by the warranty?",
    "How do I reset my password?",
]
MIX = [("chat", 40), ("read", 45), ("bot_update", 10), ("upload", 5)]
READS = ["/v1/bots", "/v1/knowledge/documents", "/v1/conversations", "messages"]


def document_text(rng: random.Random, words: int = 600) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)) + f" ({rng.random()})"


class Stats:
    def __init__(self):
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, Counter] = defaultdict(Counter)
        self.errors: list[str] = []
        self.counting = False

    def record(self, route: str, status: int, seconds: float, detail: str = "") -> None:
        if not self.counting:
            return
        self.statuses[route][status] += 1
        if 200 <= status < 300:
            self.latencies[route].append(seconds)
        elif status != 429 and len(self.errors) < 20:
            self.errors.append(f"{route} {status} {detail[:200]}")


class LoadClient:
    def __init__(self, http: httpx.AsyncClient, tenant: dict, stats: Stats, rng: random.Random):
        self.http, self.tenant, self.stats, self.rng = http, tenant, stats, rng
        self.headers = {"Authorization": f"Bearer {tenant['key']}"}
        self.conversation_id = None
        self.turns = 0

    async def run(self, stop_at: float, think: float) -> None:
        actions = [name for name, _ in MIX]
        weights = [weight for _, weight in MIX]
        while time.monotonic() < stop_at:
            action = self.rng.choices(actions, weights)[0]
            try:
                await getattr(self, action)()
            except (httpx.HTTPError, ValueError, KeyError) as exc:  # a cut stream, a body that is not JSON
                self.stats.record(action, 599, 0.0, repr(exc))
            await asyncio.sleep(self.rng.uniform(0, think))

    async def timed(self, route: str, method: str, path: str, **kwargs) -> httpx.Response:
        started = time.perf_counter()
        response = await self.http.request(method, path, headers=self.headers, **kwargs)
        self.stats.record(route, response.status_code, time.perf_counter() - started, response.text)
        return response

    async def chat(self) -> None:
        body = {"bot_id": self.tenant["bot_id"], "message": self.rng.choice(QUESTIONS), "stream": True}
        if self.conversation_id and self.turns < 5:
            body["conversation_id"] = self.conversation_id
            self.turns += 1
        else:
            self.turns = 1
        started = time.perf_counter()
        async with self.http.stream("POST", "/v1/chat/completions", json=body, headers=self.headers) as response:
            status, event, detail = response.status_code, None, ""
            async for line in response.aiter_lines():
                if status >= 300:
                    detail += line  # an error envelope, not a stream
                elif line.startswith("event: "):
                    event = line[7:]
                    if event == "error":
                        status = 590  # an error event inside a 200 stream
                elif line.startswith("data: ") and event == "message.start":
                    self.conversation_id = json.loads(line[6:])["conversation_id"]
                elif line.startswith("data: ") and event == "error":
                    detail = line
        self.stats.record("POST /v1/chat/completions (stream)", status, time.perf_counter() - started, detail)

    async def read(self) -> None:
        path = self.rng.choice(READS)
        if path == "messages":
            if not self.conversation_id:
                return
            await self.timed("GET /v1/conversations/:id/messages", "GET",
                             f"/v1/conversations/{self.conversation_id}/messages")  # fmt: skip
            return
        await self.timed(f"GET {path}", "GET", path)

    async def bot_update(self) -> None:
        greeting = f"Hello ({self.rng.randrange(10**6)})"
        await self.timed("PATCH /v1/bots/:id", "PATCH", f"/v1/bots/{self.tenant['bot_id']}",
                         json={"welcome_message": greeting})  # fmt: skip

    async def upload(self) -> None:
        body = {"bot_id": self.tenant["bot_id"], "title": "Load", "text": document_text(self.rng, 300)}
        response = await self.timed("POST /v1/knowledge/upload", "POST", "/v1/knowledge/upload", json=body)
        if response.status_code == 202:
            self.tenant["uploads"].append(response.json()["id"])


def setup_tenants(stack, count: int, receiver_url: str) -> list[dict]:
    tenants = []
    rng = random.Random(7)
    for n in range(count):
        _, key = stack.create_tenant_key(name=f"Load {n}")
        http = httpx.Client(base_url=stack.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        bot_id = http.post("/v1/bots", json={"name": f"Support {n}"}).json()["id"]
        response = http.post("/v1/webhooks", json={"url": f"{receiver_url}/hooks/{n}", "events": ["*"]})
        assert response.status_code == 201, response.text
        docs = []
        for d in range(3):
            body = {"bot_id": bot_id, "title": f"Guide {d}", "text": document_text(rng)}
            docs.append(http.post("/v1/knowledge/upload", json=body).json()["id"])
        tenants.append({"key": key, "bot_id": bot_id, "http": http, "training": docs, "uploads": []})
    for tenant in tenants:
        for doc in tenant["training"]:
            wait_until(lambda t=tenant, d=doc: t["http"].get(f"/v1/knowledge/documents/{d}").json()["status"]
                       in ("ready", "failed"), timeout=300, message="training documents")  # fmt: skip
    return tenants


class ConnectionSampler(threading.Thread):
    """Counts PostgreSQL backends (client connections) every second; keeps the peak."""

    def __init__(self, stack):
        super().__init__(daemon=True)
        self.stack, self.peak, self.stop_event = stack, 0, threading.Event()
        self.peak_by_app: Counter = Counter()

    def run(self) -> None:
        with self.stack.postgres.connect() as conn:
            while not self.stop_event.wait(1.0):
                rows = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
                ).fetchone()
                self.peak = max(self.peak, rows[0])

    def max_connections(self) -> int:
        with self.stack.postgres.connect() as conn:
            return int(conn.execute("SHOW max_connections").fetchone()[0])


def rss_snapshot(stack) -> dict[str, float]:
    """RSS in MB of every process (a pool's children each on their own line)."""
    snapshot = {}
    for name, process in stack.processes.items():
        for index, (_pid, rss) in enumerate(sorted(process.rss_by_process().items())):
            snapshot[name if index == 0 else f"{name} child {index}"] = rss / 2**20
    return snapshot


async def drive(stack, tenants, args, stats: Stats) -> float:
    # Idle connections are dropped after 2 s, before uvicorn closes them (5 s, `--timeout-keep-alive`): a
    # request sent on a connection the server is closing fails with `ReadError`, the client's race, not the server's.
    limits = httpx.Limits(
        max_connections=args.clients + 10, max_keepalive_connections=args.clients + 10, keepalive_expiry=2.0
    )
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=120, limits=limits) as http:
        clients = [LoadClient(http, tenants[n % len(tenants)], stats, random.Random(n)) for n in range(args.clients)]
        warm_end = time.monotonic() + args.warmup
        end = warm_end + args.duration
        tasks = [asyncio.create_task(client.run(end, args.think)) for client in clients]
        await asyncio.sleep(args.warmup)
        stats.counting = True
        stack.rss_start = rss_snapshot(stack)
        started = time.monotonic()
        await asyncio.gather(*tasks)
        return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=300, help="measured seconds (after the warm-up)")
    parser.add_argument("--warmup", type=float, default=30, help="seconds of load before measuring")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--tenants", type=int, default=5)
    parser.add_argument("--think", type=float, default=1.0, help="max think time between a client's calls (s)")
    parser.add_argument("--delay", type=float, default=0.3, help="the model's delay before its first token (s)")
    parser.add_argument("--token-delay", type=float, default=0.02, help="the model's delay between tokens (s)")
    args = parser.parse_args()

    stub, stub_url = start_stub("--delay", str(args.delay), "--token-delay", str(args.token_delay))
    receiver = Receiver().start()
    directory = BASE_DIR / "var" / f"load-{os.getpid()}"
    env = {"LLM_PROVIDER": "openai", "LLM_BASE_URL": stub_url, "LLM_API_KEY": "sk-load", "LLM_MAX_RETRIES": "0"}
    try:
        with running_stack(directory, **env) as stack:
            stack.add_web(workers=2)
            stack.add_worker("worker", queues="celery,ingestion", concurrency=2)
            stack.add_worker("webhooks-1", queues="webhooks", pool="solo", CELERY_DB_REUSE_MAX="1000")
            stack.add_worker("webhooks-2", queues="webhooks", pool="solo", CELERY_DB_REUSE_MAX="1000")
            stack.add_beat()
            stack.start()
            rss_idle = rss_snapshot(stack)
            tenants = setup_tenants(stack, args.tenants, receiver.url)
            sampler = ConnectionSampler(stack)
            sampler.start()
            stats = Stats()
            elapsed = asyncio.run(drive(stack, tenants, args, stats))
            rss_end = rss_snapshot(stack)
            sampler.stop_event.set()
            sampler.join()
            uploads = [doc for tenant in tenants for doc in tenant["uploads"]]
            settle_started = time.monotonic()
            ingested = wait_for_ingestion(stack, uploads)
            delivered, events, duplicates = wait_for_webhooks(stack, receiver)
            settle = time.monotonic() - settle_started
            logs = BASE_DIR / "var" / "load-logs"
            logs.mkdir(parents=True, exist_ok=True)
            for process in stack.processes.values():  # kept for reading errors after the run
                shutil.copy(process.log_path, logs / process.log_path.name)
            result = report(args, stats, elapsed, rss_idle, stack.rss_start, rss_end, sampler,
                            sampler.max_connections(), ingested, len(uploads), delivered, events, duplicates, settle)  # fmt: skip
    finally:
        receiver.stop()
        stub.terminate()
        stub.wait(10)
    results_file("load.json").write_text(json.dumps(result, indent=2))


def wait_for_ingestion(stack, ids: list[str], timeout: float = 300) -> int:
    def ready() -> int | None:
        with stack.postgres.connect() as conn:
            done = conn.execute(
                "SELECT count(*) FROM knowledge_document WHERE public_id = ANY(%s) AND status IN ('ready', 'failed')",
                [ids],
            ).fetchone()[0]
        return done if done == len(ids) else None

    try:
        return wait_until(ready, timeout=timeout, message="uploads to be ingested", interval=1) if ids else 0
    except AssertionError:
        with stack.postgres.connect() as conn:
            return conn.execute(
                "SELECT count(*) FROM knowledge_document WHERE public_id = ANY(%s) AND status IN ('ready', 'failed')",
                [ids],
            ).fetchone()[0]


def wait_for_webhooks(stack, receiver, timeout: float = 300) -> tuple[int, int, int]:
    def counts():
        with stack.postgres.connect() as conn:
            return conn.execute(
                "SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) FROM webhooks_delivery"
            ).fetchone()

    try:
        wait_until(lambda: (lambda c: c[0] == c[1])(counts()), timeout=timeout, message="webhooks", interval=1)
    except AssertionError:
        pass
    delivered, total = counts()
    received = Counter(request.headers.get("webhook-id") for request in receiver.requests)
    return delivered, total, sum(n - 1 for n in received.values())


def report(args, stats, elapsed, rss_idle, rss_start, rss_end, sampler, max_connections, ingested, uploads,
           delivered, deliveries, duplicates, settle) -> dict:  # fmt: skip
    total = sum(sum(c.values()) for c in stats.statuses.values())
    throttled = sum(c[429] for c in stats.statuses.values())
    errors = sum(n for c in stats.statuses.values() for status, n in c.items() if status >= 300 and status != 429)
    print(f"\nbench/load.py: {args.clients} clients, {args.tenants} tenants, {elapsed:.0f} s measured after "
          f"{args.warmup:.0f} s warm-up; model delay {args.delay} s + {args.token_delay} s/token; machine shared")  # fmt: skip
    print(f"requests {total}, throughput {total / elapsed:.1f}/s, errors {errors}, 429s {throttled}")
    print("\n| route | requests | p50 ms | p99 ms | statuses |\n|---|---:|---:|---:|---|")
    routes = {}
    for route in sorted(stats.statuses):
        values = stats.latencies[route]
        statuses = " ".join(f"{s}×{n}" for s, n in sorted(stats.statuses[route].items()))
        p50, p99 = percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000
        routes[route] = {"requests": sum(stats.statuses[route].values()), "p50_ms": p50, "p99_ms": p99,
                         "statuses": dict(stats.statuses[route])}  # fmt: skip
        print(f"| {route} | {routes[route]['requests']} | {p50:.0f} | {p99:.0f} | {statuses} |")
    print("\n| process | RSS idle MB | RSS after warm-up MB | RSS at end MB | growth |\n|---|---:|---:|---:|---:|")
    for name in rss_end:
        start, end = rss_start.get(name, 0), rss_end[name]
        growth = f"{(end - start) / start * 100:+.1f} %" if start else "new"
        print(f"| {name} | {rss_idle.get(name, 0):.0f} | {start:.0f} | {end:.0f} | {growth} |")
    print(f"\nPostgreSQL connections at peak: {sampler.peak} of max_connections {max_connections}")
    print(f"uploads ingested: {ingested}/{uploads}; webhook deliveries succeeded: {delivered}/{deliveries}, "
          f"duplicates received {duplicates}; settled {settle:.0f} s after the load")  # fmt: skip
    for error in stats.errors:
        print("  error:", error)
    return {
        "args": vars(args), "elapsed": elapsed, "requests": total, "errors": errors, "throttled": throttled,
        "routes": routes, "rss_idle_mb": rss_idle, "rss_start_mb": rss_start, "rss_end_mb": rss_end,
        "pg_connections_peak": sampler.peak, "max_connections": max_connections, "uploads": uploads,
        "ingested": ingested, "deliveries": deliveries, "delivered": delivered, "duplicates": duplicates,
        "error_samples": stats.errors,
    }  # fmt: skip


if __name__ == "__main__":
    main()
