"""The fault suite: the production process set on loopback, one fault at a time, nothing lost.

A `Stack` of its own (uvicorn, an ingestion worker, a webhook worker, beat,
a private redis-server and a separate embedded PostgreSQL cluster) is put
through: an ingestion worker SIGKILLed mid-document, the webhook worker
SIGKILLed mid-delivery, Redis restarted with and without its data,
PostgreSQL restarted, and the broker down while documents are uploaded.
After each fault every accepted document reaches `ready` or `failed` (with
a reason), no chunk is duplicated, and the API answered only success or
503 during the outage, never 500. At the end every webhook event has been
delivered, duplicated only where an attempt was in flight when its worker
died. The suite prints its own table (see `pytest_terminal_summary` in
the root conftest).

The sweeps run every few seconds here instead of every 30 s, so the suite
takes a few minutes; the recovery times in the table are those of these
settings.
"""

import random
import shutil
import time
from collections import Counter

import httpx
import pytest

from bothero.testing.processes import BASE_DIR
from bothero.testing.stack import Stack, running_stack, wait_until
from webhooks.tests.receiver import Receiver, Reply

pytestmark = [
    pytest.mark.slow,
    pytest.mark.faults,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="the fault suite starts its own redis-server"),
]

# Results, one row per fault, printed by the root conftest's terminal summary.
RESULTS: list[dict] = []

SETTINGS = {
    "KNOWLEDGE_SWEEP_INTERVAL_SECONDS": "2",
    "KNOWLEDGE_CLAIM_HEARTBEAT_SECONDS": "1",
    "KNOWLEDGE_CLAIM_STALE_SECONDS": "6",
    "KNOWLEDGE_QUEUED_STALE_SECONDS": "6",
    "KNOWLEDGE_INGEST_RETRY_DELAY_SECONDS": "1",
    "WEBHOOK_SWEEP_INTERVAL_SECONDS": "2",
    "WEBHOOK_DISPATCH_GRACE_SECONDS": "1",
    "WEBHOOK_REQUEUE_AFTER_SECONDS": "6",
    "WEBHOOK_TIMEOUT_SECONDS": "3",
    "WEBHOOK_CLAIM_GRACE_SECONDS": "1",
    "WEBHOOK_RETRY_SCHEDULE": "1,2,4,8,16",
    "WEBHOOK_SENDER_THREADS": "4",
}
RECOVERY_LIMIT_SECONDS = 120
WORDS = "refund shipping warranty invoice account password delivery order return exchange store hours".split()


class Client:
    """The API as a customer uses it, recording every status code it got."""

    def __init__(self, stack: Stack, key: str):
        self.http = httpx.Client(base_url=stack.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        self.statuses: Counter = Counter()
        self.slowest_error = 0.0

    def call(self, method: str, path: str, **kwargs) -> httpx.Response:
        started = time.monotonic()
        response = self.http.request(method, path, **kwargs)
        self.statuses[response.status_code] += 1
        if response.status_code >= 500:
            self.slowest_error = max(self.slowest_error, time.monotonic() - started)
            error = response.json()["error"]
            assert (error["type"], error["code"]) == ("api_error", "service_unavailable"), response.text
            assert response.headers["Retry-After"]
        return response

    def upload(self, bot_id: str, title: str, *, words: int = 800) -> httpx.Response:
        rng = random.Random(title)
        text = " ".join(rng.choice(WORDS) for _ in range(words)) + f" {title}."
        return self.call("POST", "/v1/knowledge/upload", json={"bot_id": bot_id, "title": title, "text": text})


@pytest.fixture(scope="module")
def receiver():
    with Receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def stack(request, receiver):
    directory = BASE_DIR / "var" / f"faults-{time.time_ns()}"
    with running_stack(directory, **SETTINGS) as stack:
        stack.add_web()
        stack.add_worker("ingestion", queues="celery,ingestion", concurrency=2)
        stack.add_worker("webhooks", queues="webhooks", pool="solo")
        stack.add_beat()
        stack.start()
        _, key = stack.create_tenant_key()
        client = Client(stack, key)
        stack.client = client
        # The endpoint first: every event of the tenant from here on is one it subscribes to.
        endpoint = client.call(
            "POST",
            "/v1/webhooks",
            json={"url": f"{receiver.url}/hooks", "events": ["document.ready", "document.failed", "bot.created"]},
        )
        assert endpoint.status_code == 201, endpoint.text
        stack.bot_id = client.call("POST", "/v1/bots", json={"name": "Faults"}).json()["id"]
        failed_before = request.session.testsfailed
        yield stack
        if request.session.testsfailed > failed_before:
            for process in stack.processes.values():
                print(f"--- {process.name} ---\n{process.log_tail(1500)}")


def documents(stack: Stack, ids: list[str]) -> dict[str, tuple[str, str, int, int]]:
    """{public id: (status, error code, chunk_count, chunks stored)} of these documents."""
    with stack.postgres.connect() as conn:
        rows = conn.execute(
            """SELECT d.public_id, d.status, d.error_code, d.chunk_count,
                      (SELECT count(*) FROM knowledge_chunk c WHERE c.document_id = d.id)
               FROM knowledge_document d WHERE d.public_id = ANY(%s)""",
            [ids],
        ).fetchall()
    return {row[0]: tuple(row[1:]) for row in rows}


def settled(stack: Stack, ids: list[str]):
    states = documents(stack, ids)
    if len(states) == len(ids) and all(state[0] in ("ready", "failed") for state in states.values()):
        return states
    return None


def assert_all_settled(stack: Stack, ids: list[str], fault: str, started: float, **extra) -> None:
    """Every document ready (or failed with a reason) in time, its chunks stored once; records a row."""
    states = wait_until(
        lambda: settled(stack, ids), timeout=RECOVERY_LIMIT_SECONDS, message=f"documents to settle after: {fault}"
    )
    recovered = time.monotonic() - started
    for public_id, (status, error_code, chunk_count, stored) in states.items():
        assert status == "ready" or error_code, public_id
        assert stored == chunk_count, f"{public_id}: {stored} chunks stored for chunk_count {chunk_count}"
    ready = sum(state[0] == "ready" for state in states.values())
    client = stack.client
    RESULTS.append(
        {
            "fault": fault,
            "documents": f"{ready} ready / {len(ids) - ready} failed of {len(ids)}",
            "recovered in": f"{recovered:.0f} s",
            "statuses": " ".join(f"{code}×{n}" for code, n in sorted(client.statuses.items())),
            **extra,
        }
    )
    assert 500 not in client.statuses
    client.statuses.clear()


def upload_many(stack: Stack, prefix: str, count: int) -> list[str]:
    ids = []
    for n in range(count):
        response = stack.client.upload(stack.bot_id, f"{prefix} {n}")
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    return ids


def processing(stack: Stack, ids: list[str]) -> bool:
    return any(state[0] == "processing" for state in documents(stack, ids).values())


def test_an_ingestion_worker_killed_mid_document_loses_nothing(stack):
    ids = upload_many(stack, "killed worker", 4)
    wait_until(lambda: processing(stack, ids), timeout=60, message="a document to be processing")
    started = time.monotonic()
    stack.processes["ingestion"].kill()
    stack.processes["ingestion"].start()
    assert_all_settled(stack, ids, "ingestion worker SIGKILL mid-document", started)


def test_redis_restarted_without_its_data_loses_no_queued_document(stack):
    stack.processes["ingestion"].stop()  # the messages wait in Redis
    ids = upload_many(stack, "redis wiped", 3)
    started = time.monotonic()
    stack.redis.restart(keep_data=False)
    stack.processes["ingestion"].start()
    assert_all_settled(stack, ids, "Redis restart, data deleted (messages lost)", started)


def test_redis_restarted_with_its_data_loses_nothing(stack):
    stack.processes["ingestion"].stop()
    ids = upload_many(stack, "redis restarted", 3)
    started = time.monotonic()
    stack.redis.restart(keep_data=True, down_for=2)
    stack.processes["ingestion"].start()
    assert_all_settled(stack, ids, "Redis restart, data kept (AOF)", started)


def test_uploads_while_the_broker_is_down_are_accepted_and_ingested_once_it_is_back(stack):
    stack.redis.stop(keep_data=True)
    started = time.monotonic()
    accepted = []
    for n in range(4):
        response = stack.client.upload(stack.bot_id, f"broker down {n}")
        assert response.status_code in (202, 503), f"{response.status_code} {response.text}"
        if response.status_code == 202:
            accepted.append(response.json()["id"])
    assert stack.client.call("GET", "/v1/bots").status_code == 200
    stack.redis.start()
    assert_all_settled(stack, accepted, "broker down at upload time", started)


def test_a_postgresql_restart_loses_nothing_and_the_api_answers_503_meanwhile(stack):
    ids = upload_many(stack, "postgres restart", 4)
    wait_until(lambda: processing(stack, ids), timeout=60, message="a document to be processing")
    started = time.monotonic()
    stack.postgres.stop()
    client = stack.client
    outage = Counter()
    for n in range(3):
        for response in (
            client.call("GET", "/v1/bots"),
            client.upload(stack.bot_id, f"during the outage {n}"),
        ):
            outage[response.status_code] += 1
    stack.postgres.start()
    assert set(outage) == {503}, outage
    outage_answers = f"503×{outage[503]}, slowest {client.slowest_error:.1f} s"
    assert_all_settled(stack, ids, "PostgreSQL restart mid-ingestion", started, **{"outage answers": outage_answers})
    assert client.slowest_error < 5  # the requirement is ≤ 2 s; the margin is for a loaded machine


def test_the_webhook_worker_killed_mid_delivery_loses_no_event(stack, receiver):
    receiver.reply_with(*[Reply(delay=1.5) for _ in range(8)])  # stalled attempts, in flight at the kill
    client = stack.client
    for n in range(20):
        assert client.call("POST", "/v1/bots", json={"name": f"Hooked {n}"}).status_code == 201
    wait_until(lambda: len(receiver.requests) >= 2, timeout=30, message="deliveries to start")
    with stack.postgres.connect() as conn:
        in_flight = conn.execute("SELECT count(*) FROM webhooks_delivery WHERE status = 'sending'").fetchone()[0]
    stack.processes["webhooks"].kill()
    stack.processes["webhooks"].start()
    every_event_delivered(stack, receiver, fault="webhook worker SIGKILL mid-delivery", in_flight=in_flight)


def every_event_delivered(stack: Stack, receiver: Receiver, *, fault: str, in_flight: int) -> None:
    state = {}

    def all_delivered():
        with stack.postgres.connect() as conn:
            events = {row[0] for row in conn.execute("SELECT public_id FROM webhooks_event")}
            state["deliveries"] = dict(conn.execute("SELECT status, count(*) FROM webhooks_delivery GROUP BY 1"))
        received = {request.headers.get("webhook-id") for request in receiver.requests}
        state["not received"] = sorted(events - received)[:5]
        return events if events <= received and set(state["deliveries"]) == {"succeeded"} else None

    started = time.monotonic()
    try:
        events = wait_until(all_delivered, timeout=RECOVERY_LIMIT_SECONDS, message="every event to be delivered")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {state}") from None
    counts = Counter(request.headers.get("webhook-id") for request in receiver.requests if b"Hooked" in request.body)
    duplicates = sum(n - 1 for n in counts.values())
    RESULTS.append(
        {
            "fault": fault,
            "webhook events": f"{len(events)} delivered of {len(events)}, {duplicates} duplicates",
            "in flight at the kill": str(in_flight),
            "recovered in": f"{time.monotonic() - started:.0f} s",
        }
    )
    # Duplicates only for the attempts in flight when the worker died.
    assert duplicates <= in_flight
