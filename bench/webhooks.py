"""Webhook delivery benchmark: real Celery workers, Redis, PostgreSQL and a local HTTP receiver.

    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/webhooks.py

Events are emitted the way the app emits them (`event_emit` inside a
transaction; after commit the dispatcher is woken through Redis and, when
none is queued or running, a `dispatch_events` task goes to the `webhooks`
queue; the worker fans out and its sender threads POST signed requests to the
receiver). Two phases:

* **burst**: `--events` events committed in one transaction (a batch job);
  deliveries per second = events / (last receipt − commit).
* **paced**: `--rate` events per second for `--seconds`, each in its own
  transaction, from `--emitters` threads (concurrent requests); latency from
  the event's creation to its receipt at the receiver (p50/p95/p99), the
  delivery rate sustained, and CPU per event: the emitting process, the
  workers, PostgreSQL, Redis, the receiver and the whole machine (busy time
  of all cores from /proc/stat, so anything else running counts too).

The receiver is a lean asyncio HTTP/1.1 server in a child process that
records the arrival time of each request; duplicates (at-least-once) are
counted apart.
Without DATABASE_URL a fresh `bench_webhooks` database is made on the
embedded PostgreSQL server, so the development database is not touched.
"""

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(BASE_DIR))

from bench.common import bench_database_url, percentile  # noqa: E402


def serve_receiver() -> None:
    """A lean asyncio HTTP/1.1 receiver (its own process): answers 200 and prints "<webhook-id> <arrival time>".

    Lighter than the tests' threaded http.server, so the machine's two cores go
    to the system under test rather than to the receiver.
    """
    import asyncio

    class Receiver(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            self.buffer = b""

        def data_received(self, data):
            self.buffer += data
            while True:
                head_end = self.buffer.find(b"\r\n\r\n")
                if head_end < 0:
                    return
                head = self.buffer[:head_end].decode("latin-1").split("\r\n")
                headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in head[1:])}
                length = int(headers.get("content-length", "0"))
                if len(self.buffer) < head_end + 4 + length:
                    return
                self.buffer = self.buffer[head_end + 4 + length :]
                sys.stdout.write(f"{headers.get('webhook-id', '-')} {time.time():.6f}\n")
                self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

    async def main():
        server = await asyncio.get_running_loop().create_server(Receiver, "127.0.0.1", 0)
        print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
        while True:
            await asyncio.sleep(0.01)
            sys.stdout.flush()

    asyncio.run(main())


class ReceiverProcess:
    """Runs `serve_receiver` in a child process and collects arrivals: {webhook-id: first arrival}, and a count."""

    def __init__(self):
        import threading

        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-receiver"], stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self.port = int(self.proc.stdout.readline().split()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.arrivals: list[tuple[str, float]] = []
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            webhook_id, arrived = line.split()
            with self.changed:
                self.arrivals.append((webhook_id, float(arrived)))
                self.changed.notify_all()

    def wait_for(self, webhook_ids, timeout: float) -> dict[str, float]:
        """Block until every one of `webhook_ids` has arrived; their first arrival times."""
        wanted = set(webhook_ids)
        first: dict[str, float] = {}
        seen = 0
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for webhook_id, arrived in self.arrivals[seen:]:
                    if webhook_id in wanted:
                        first.setdefault(webhook_id, arrived)
                seen = len(self.arrivals)
                if len(first) == len(wanted):
                    return first
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(first)} of {len(wanted)} deliveries arrived in {timeout} s")
                self.changed.wait(0.5)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by these processes (Linux /proc), in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def machine_busy_seconds() -> float:
    """CPU time the whole machine has spent busy so far (all cores, all processes; Linux /proc/stat).

    Time stolen by the hypervisor is not counted: it was not ours.
    """
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in stat.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def pids_named(*names: str) -> list[int]:
    """Processes whose command name starts with one of `names` (e.g. "postgres", "redis-server")."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as comm:
                    if comm.read().strip().startswith(names):
                        pids.append(int(entry))
            except OSError:
                pass  # exited meanwhile
    return pids


def cpu_seconds_of_live(pids: list[int]) -> dict[int, float]:
    """CPU seconds of each of these processes that still exists."""
    seconds = {}
    for pid in pids:
        try:
            seconds[pid] = cpu_seconds([pid])
        except (OSError, IndexError):
            pass
    return seconds


def start_workers(count: int, concurrency: int, pool: str) -> list[subprocess.Popen]:
    workers = []
    for _ in range(count):
        workers.append(
            subprocess.Popen(
                [str(BIN / "celery"), "-A", "bothero", "worker", "-Q", "webhooks", "-c", str(concurrency),
                 "-P", pool, "-l", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                cwd=BASE_DIR,
                env=dict(os.environ),
                start_new_session=True,
            )
        )  # fmt: skip
    return workers


def stop_workers(workers: list[subprocess.Popen]) -> None:
    import signal

    for worker in workers:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000, help="events in the burst phase")
    parser.add_argument("--rate", type=float, default=200.0, help="events per second in the paced phase")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the paced phase")
    parser.add_argument("--emitters", type=int, default=8, help="threads emitting events in the paced phase")
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--concurrency", type=int, default=1, help="concurrency of each worker")
    parser.add_argument("--pool", default="solo", help="Celery pool: solo, threads, prefork, ...")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line too")
    parser.add_argument("--serve-receiver", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_receiver:
        serve_receiver()
        return 0

    if not os.environ.get("REDIS_URL"):
        print("Set REDIS_URL (the Celery broker), e.g. REDIS_URL=redis://127.0.0.1:6379/0", file=sys.stderr)
        return 2
    os.environ["DATABASE_URL"] = bench_database_url("bench_webhooks", fresh=True)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bothero.settings",
        ALLOW_PRIVATE_URLS="true",
        CELERY_TASK_ALWAYS_EAGER="false",
        LOG_LEVEL="WARNING",
        # Production settings: with DEBUG on, Django also logs every query.
        DEBUG="false",
        SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(32),
    )
    # Workers keep their database connections between tasks, as docs/webhooks.md recommends for
    # webhook workers; by default Celery closes the connection after every task.
    os.environ.setdefault("CELERY_DB_REUSE_MAX", "1000")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction

    from accounts.models import Plan, Tenant
    from accounts.plans import plans_seed
    from bothero.celery import app as celery_app
    from webhooks import queueing
    from webhooks.models import Delivery, Event, WebhookEndpoint
    from webhooks.services import event_emit
    from webhooks.signing import secret_generate

    call_command("migrate", verbosity=0)
    plans_seed(Plan)
    with celery_app.connection_for_write() as connection:
        connection.default_channel.queue_purge("webhooks")
    queueing.dispatcher_state_reset()  # its wake-up key stood for a message just purged
    tenant = Tenant.objects.create(name="webhook bench", plan=Plan.objects.get(slug="legend"))
    receiver = ReceiverProcess()
    WebhookEndpoint.objects.create(tenant=tenant, url=f"{receiver.url}/bench", events=["*"], secret=secret_generate())
    emitted: dict[str, float] = {}

    def emit(n: int) -> None:
        with transaction.atomic():
            event = event_emit(tenant=tenant, type="message.created", data={"n": n, "content": "x" * 200})
        emitted[event.public_id] = event.created_at.timestamp()

    workers = start_workers(args.workers, args.concurrency, args.pool)
    emitters = ThreadPoolExecutor(max_workers=args.emitters)
    results = {}
    try:
        # Warm-up: workers ready, connections open.
        list(emitters.map(emit, range(50)))
        receiver.wait_for(emitted, timeout=120)

        # Burst: a batch of events committed at once (one transaction), then drained by the workers.
        emitted.clear()
        worker_pids = [worker.pid for worker in workers]
        with transaction.atomic():
            for n in range(args.events):
                emit(n)
            committing = time.time()  # the commit queues the dispatch tasks (on_commit)
            workers_cpu = cpu_seconds(worker_pids)
        arrivals = receiver.wait_for(emitted, timeout=600)
        burst_seconds = max(arrivals.values()) - committing
        results["burst"] = {
            "events": args.events,
            "deliveries_per_second": round(len(arrivals) / burst_seconds, 1),
            "seconds": round(burst_seconds, 2),
            "worker_cpu_ms_per_delivery": round((cpu_seconds(worker_pids) - workers_cpu) / args.events * 1000, 2),
        }

        # Paced: `--rate` events per second, each in its own transaction, from `--emitters` threads.
        time.sleep(1)
        emitted.clear()
        total = int(args.rate * args.seconds)
        started = time.time()
        # Backends that start during the phase count in full; any that end during it are missed.
        services = pids_named("postgres", "redis-server")
        services_cpu, receiver_cpu = cpu_seconds_of_live(services), cpu_seconds([receiver.proc.pid])
        workers_cpu, emitter_cpu, machine_cpu = (
            cpu_seconds(worker_pids),
            cpu_seconds([os.getpid()]),
            machine_busy_seconds(),
        )
        pending = []
        for n in range(total):
            delay = started + n / args.rate - time.time()
            if delay > 0:
                time.sleep(delay)
            pending.append(emitters.submit(emit, n))
        for future in pending:
            future.result()
        emit_seconds = time.time() - started
        emitter_cpu = cpu_seconds([os.getpid()]) - emitter_cpu
        arrivals = receiver.wait_for(emitted, timeout=600)
        workers_cpu = cpu_seconds(worker_pids) - workers_cpu
        machine_cpu = machine_busy_seconds() - machine_cpu
        receiver_cpu = cpu_seconds([receiver.proc.pid]) - receiver_cpu
        services_after = cpu_seconds_of_live(pids_named("postgres", "redis-server"))
        postgres_pids = set(pids_named("postgres"))
        used = {pid: seconds - services_cpu.get(pid, 0.0) for pid, seconds in services_after.items()}
        postgres_cpu = sum(seconds for pid, seconds in used.items() if pid in postgres_pids)
        redis_cpu = sum(seconds for pid, seconds in used.items() if pid not in postgres_pids)
        latencies = [(arrivals[event_id] - created) * 1000 for event_id, created in emitted.items()]
        paced_seconds = max(arrivals.values()) - started
        results["paced"] = {
            "offered_rate": args.rate,
            "emitted_rate": round(total / emit_seconds, 1),
            "events": total,
            "deliveries_per_second": round(len(arrivals) / paced_seconds, 1),
            "latency_ms_p50": round(percentile(latencies, 0.50), 1),
            "latency_ms_p95": round(percentile(latencies, 0.95), 1),
            "latency_ms_p99": round(percentile(latencies, 0.99), 1),
            "latency_ms_max": round(max(latencies), 1),
            "latency_ms_mean": round(statistics.mean(latencies), 1),
            "emitter_cpu_ms_per_event": round(emitter_cpu / total * 1000, 2),
            "worker_cpu_ms_per_delivery": round(workers_cpu / total * 1000, 2),
            # Everything: emitter, workers, PostgreSQL, Redis, receiver (and anything else running).
            "machine_cpu_ms_per_event": round(machine_cpu / total * 1000, 2),
            "postgres_cpu_ms_per_event": round(postgres_cpu / total * 1000, 2),
            "redis_cpu_ms_per_event": round(redis_cpu / total * 1000, 2),
            "receiver_cpu_ms_per_event": round(receiver_cpu / total * 1000, 2),
        }
        results["duplicates"] = len(receiver.arrivals) - len({webhook_id for webhook_id, _ in receiver.arrivals})
        results["setup"] = {"workers": args.workers, "concurrency": args.concurrency, "pool": args.pool,
                            "cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 1)}  # fmt: skip
    finally:
        emitters.shutdown()
        stop_workers(workers)  # a warm shutdown: in-flight attempts are recorded first
        receiver.stop()
        results["not_succeeded"] = Delivery.objects.filter(endpoint__tenant=tenant).exclude(status="succeeded").count()
        Event.objects.filter(tenant=tenant).delete()
        tenant.delete()

    burst, paced = results["burst"], results["paced"]
    print(f"setup: {results['setup']}")
    print(
        f"burst: {burst['events']} events committed at once → {burst['deliveries_per_second']} deliveries/s "
        f"(drained in {burst['seconds']} s; worker CPU {burst['worker_cpu_ms_per_delivery']} ms a delivery)"
    )
    print(
        f"paced at {paced['offered_rate']:g}/s (emitted {paced['emitted_rate']}/s) for {paced['events']} events: "
        f"{paced['deliveries_per_second']} "
        f"deliveries/s, event→receipt p50 {paced['latency_ms_p50']} ms, p95 {paced['latency_ms_p95']} ms, "
        f"p99 {paced['latency_ms_p99']} ms, max {paced['latency_ms_max']} ms; CPU per event: emitting "
        f"{paced['emitter_cpu_ms_per_event']} ms, workers {paced['worker_cpu_ms_per_delivery']} ms, "
        f"PostgreSQL {paced['postgres_cpu_ms_per_event']} ms, Redis {paced['redis_cpu_ms_per_event']} ms, "
        f"receiver {paced['receiver_cpu_ms_per_event']} ms; whole machine {paced['machine_cpu_ms_per_event']} ms"
    )
    print(f"duplicates: {results['duplicates']}, deliveries not succeeded: {results['not_succeeded']}")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
