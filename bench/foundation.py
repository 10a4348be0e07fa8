"""Benchmark of the request pipeline: `python bench/foundation.py [--requests N] [--concurrency C] [--no-pool]`.

Creates a throw-away database (`bench_foundation`), a tenant on a plan whose
rate limit is out of the way, and serves the real ASGI app with one uvicorn
process on loopback. Then it measures, from a Python client on the same
machine (so the numbers include the client's own cost):

* latency (p50/p95/p99) of sequential calls, and the server process's own
  CPU time per call (user + system, from /proc: far less disturbed than
  wall-clock latency when other work shares the machine): GET /v1/bots with an API key,
  with an access token, with a signed request; GET /v1/bots/:id; POST /v1/bots
  with an Idempotency-Key; POST /v1/auth/token;
* throughput of GET /v1/bots with C concurrent clients;
* the rate limiter's own cost (one `ratelimit.hit`), in process.

Uses REDIS_URL when set (rate limits and nonces then go through Redis).
"""

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bothero.settings")
os.environ["BOTHERO_TEST_DB_NAME"] = "bench_foundation"


def percentiles(samples_ms: list[float]) -> str:
    ordered = sorted(samples_ms)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return f"p50 {at(0.50):6.2f} ms  p95 {at(0.95):6.2f} ms  p99 {at(0.99):6.2f} ms  mean {statistics.mean(ordered):6.2f} ms"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (from /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(n: int, call) -> list[float]:
    samples = []
    for i in range(n):
        start = time.perf_counter()
        response = call(i)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code < 300, response.text
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--no-pool", action="store_true", help="serve without the database connection pool")
    args = parser.parse_args()

    import django

    django.setup()
    import httpx
    from django.test.utils import setup_databases, teardown_databases

    old_config = setup_databases(verbosity=0, interactive=False)
    try:
        from django.conf import settings

        from accounts.services import api_key_create, token_exchange
        from bothero import ratelimit
        from bothero.testing.factories import BotFactory, MembershipFactory, PlanFactory, TenantFactory
        from bothero.testing.helpers import signed_headers
        from bothero.testing.processes import uvicorn_server

        tenant = TenantFactory(plan=PlanFactory(requests_per_minute=10_000_000, max_bots=None))
        MembershipFactory(tenant=tenant)
        key = api_key_create(tenant=tenant, name="bench").key
        signing = api_key_create(tenant=tenant, name="bench-signed", require_signature=True)
        token = token_exchange(grant_type="api_key", api_key=key, client_address="bench").access_token
        bots = BotFactory.create_batch(20, tenant=tenant)
        n = args.requests
        print(
            f"BotHero pipeline benchmark: {n} sequential requests per case, "
            f"Redis: {bool(os.environ.get('REDIS_URL'))}, connection pool: {not args.no_pool}"
        )

        with (
            # As in production: DEBUG off (with it, Django records every query and more).
            uvicorn_server(
                DB_POOL="false" if args.no_pool else "true",
                DEBUG="false",
                SECRET_KEY=settings.SECRET_KEY,  # the signing secrets made here derive from it
            ) as base,
            httpx.Client(base_url=base, timeout=30) as client,
        ):
            auth = {"Authorization": f"Bearer {key}"}
            for _ in range(50):  # warm up connections and caches
                client.get("/v1/bots", headers=auth)
            cases = {
                "GET /v1/bots (API key)": lambda i: client.get("/v1/bots", headers=auth),
                "GET /v1/bots (access token)": lambda i: client.get(
                    "/v1/bots", headers={"Authorization": f"Bearer {token}"}
                ),
                "GET /v1/bots (signed request)": lambda i: client.get(
                    "/v1/bots",
                    headers={
                        "Authorization": f"Bearer {signing.key}",
                        **signed_headers(signing.signing_secret, method="GET", path="/v1/bots"),
                    },
                ),
                "GET /v1/bots/:id": lambda i: client.get(f"/v1/bots/{bots[i % len(bots)].public_id}", headers=auth),
                "POST /v1/bots (Idempotency-Key)": lambda i: client.post(
                    "/v1/bots", json={"name": f"bench {i}"}, headers={**auth, "Idempotency-Key": f"bench-{i}"}
                ),
                "POST /v1/auth/token": lambda i: client.post(
                    "/v1/auth/token", json={"grant_type": "api_key", "api_key": key}
                ),
            }
            for name, call in cases.items():
                cpu_before = cpu_seconds(base.pid)
                samples = timed(n, call)
                server_cpu_ms = (cpu_seconds(base.pid) - cpu_before) / n * 1000
                print(f"  {name:34s} {percentiles(samples)}  server CPU {server_cpu_ms:5.1f} ms/req")

            total = n * 4
            done = []
            lock = threading.Lock()

            def worker(count: int) -> None:
                with httpx.Client(base_url=base, timeout=30) as own:
                    for _ in range(count):
                        response = own.get("/v1/bots", headers=auth)
                        assert response.status_code == 200, response.text
                        with lock:
                            done.append(1)

            threads = [
                threading.Thread(target=worker, args=(total // args.concurrency,)) for _ in range(args.concurrency)
            ]
            start = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - start
            print(
                f"  GET /v1/bots, {args.concurrency} concurrent clients: {len(done)} requests in {elapsed:.2f} s "
                f"= {len(done) / elapsed:.0f} req/s (one uvicorn process)"
            )

        start = time.perf_counter()
        for _ in range(5000):
            ratelimit.hit("bench", limit=10**9)
        per_hit_us = (time.perf_counter() - start) / 5000 * 1e6
        print(f"  ratelimit.hit (in process): {per_hit_us:.0f} µs per call")
    finally:
        teardown_databases(old_config, verbosity=0)


if __name__ == "__main__":
    sys.exit(main())
