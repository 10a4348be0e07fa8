"""Analytics benchmark: one tenant with 1,000,000 messages, rolled up, then the overview timed.

    .venv/bin/python bench/analytics.py                 # generate (once), roll up, measure
    .venv/bin/python bench/analytics.py --fresh         # drop the data set and generate it again

The data set is generated inside PostgreSQL with INSERT … SELECT generate_series
(a few minutes), in time order like real traffic: `--messages` messages in conversations of `--per-conversation`
messages (user and assistant turns), spread uniformly over the last `--days`
days on `--bots` bots, with end-user ids, sources, fallbacks, feedback, token
counts, log-normal latencies and leads. The rollup then runs through yesterday
(today stays live) and is timed. Measured, each `--requests` times after a
warm-up:

* the overview selector in process (rollups + live edges, and all-live for comparison);
* `GET /v1/analytics/overview` end to end over HTTP against a real uvicorn
  server (auth, plan gate, rate limit, JSON) — the figure the issue's
  p50 ≤ 50 ms target is about;
* the other endpoints: time series (UTC days from rollups; New York days and
  hours live), leads page, leads CSV, unanswered questions.

Without DATABASE_URL a `bench_analytics` database is made on the embedded
PostgreSQL server (the development database is not touched) and kept for the
next run. Results are printed as a table and written to bench/results/analytics.json.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))

from bench.common import bench_database_url, percentile, results_file  # noqa: E402

BENCH_TENANT = "Analytics benchmark"
TARGET_P50_MS = 50.0


def timed(function, repeat: int, warmup: int = 5) -> dict:
    for _ in range(warmup):
        function()
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        function()
        samples.append((time.perf_counter() - began) * 1000)
    return {
        "n": repeat,
        "p50_ms": round(statistics.median(samples), 2),
        "p95_ms": round(percentile(samples, 0.95), 2),
        "max_ms": round(max(samples), 2),
    }


QUESTIONS = [
    "What are your opening hours?",
    "How much does the premium plan cost?",
    "Do you offer refunds?",
    "How do I reset my password?",
    "Where is my order?",
    "Can I change my delivery address?",
    "Do you have a student discount?",
    "How do I contact support?",
]
UNANSWERED = [
    "Do you ship to Canada?",
    "do you ship to canada",
    "Can I pay with bitcoin?",
    "Is there a mobile app?",
    "Do you sponsor events?",
]


def sql_array(values: list[str]) -> str:
    return "ARRAY[" + ", ".join("'" + value.replace("'", "''") + "'" for value in values) + "]"


def generate(*, tenant, bot_ids: list[int], messages: int, per_conversation: int, days: int) -> dict:
    """Insert the data set in SQL; returns row counts and the time taken."""
    from django.db import connection

    from conversations.models import Conversation, Lead, Message

    conversations = messages // per_conversation
    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {Conversation._meta.db_table}
                (public_id, tenant_id, bot_id, end_user_id, visitor_hash, status, handoff_reason, metadata,
                 message_count, has_lead, last_message_at, created_at, updated_at)
            SELECT 'conv_' || lpad(g::text, 24, '0'), %(tenant)s, (%(bots)s::bigint[])[1 + g %% %(nbots)s],
                   CASE WHEN random() < 0.6 THEN 'user-' || (random() * %(users)s)::int ELSE '' END,
                   '', 'bot', '', '{{}}', %(per)s, g %% 20 = 0, ts + %(per)s * interval '20 seconds', ts, ts
            FROM (SELECT g, now() - random() * (%(days)s * interval '1 day') AS ts
                  FROM generate_series(1, %(conversations)s) AS g) AS s
            -- In time order, like real traffic: rows of one day sit together on disk.
            ORDER BY ts
            """,
            {
                "tenant": tenant.pk,
                "bots": bot_ids,
                "nbots": len(bot_ids),
                "users": conversations // 3,
                "per": per_conversation,
                "days": days,
                "conversations": conversations,
            },
        )
        # Each user turn is followed by the assistant's answer; ~12 % of answers are the fallback.
        cursor.execute(
            f"""
            INSERT INTO {Message._meta.db_table}
                (public_id, tenant_id, bot_id, conversation_id, role, content, sources, model,
                 prompt_tokens, completion_tokens, latency_ms, status, is_fallback, feedback_rating,
                 feedback_comment, created_at)
            SELECT 'msg_' || lpad((c.id * %(per)s + k)::text, 24, '0'), c.tenant_id, c.bot_id, c.id,
                   CASE WHEN k %% 2 = 0 THEN 'user' ELSE 'assistant' END,
                   CASE WHEN k %% 2 = 1 THEN 'An answer.'
                        WHEN r.fallback THEN ({sql_array(UNANSWERED)})[1 + floor(random() * {len(UNANSWERED)})::int]
                        ELSE ({sql_array(QUESTIONS)})[1 + floor(random() * {len(QUESTIONS)})::int] END,
                   CASE WHEN k %% 2 = 1 AND NOT r.fallback AND random() < 0.85
                        THEN '[{{"document_id": "doc_bench", "score": 0.8}}]'::jsonb ELSE '[]'::jsonb END,
                   CASE WHEN k %% 2 = 1 THEN 'gpt-oss-120b' ELSE '' END,
                   CASE WHEN k %% 2 = 1 THEN 100 + floor(random() * 700)::int ELSE 0 END,
                   CASE WHEN k %% 2 = 1 THEN 20 + floor(random() * 180)::int ELSE 0 END,
                   CASE WHEN k %% 2 = 1 THEN least(120000, exp(6.5 + 0.7 * sqrt(-2 * ln(1 - random()))
                        * cos(2 * pi() * random())))::int END,
                   'complete',
                   k %% 2 = 1 AND r.fallback,
                   CASE WHEN k %% 2 = 0 THEN NULL WHEN r.feedback < 0.04 THEN 'up'
                        WHEN r.feedback < 0.055 THEN 'down' END,
                   '',
                   c.created_at + k * interval '20 seconds'
            FROM {Conversation._meta.db_table} c
            CROSS JOIN generate_series(0, %(per)s - 1) AS k
            -- One draw per exchange (k / 2), so a fallback answer follows its own question.
            CROSS JOIN LATERAL (
                SELECT abs(hashtext(c.id || ':' || k / 2)) %% 1000 < 120 AS fallback, random() + 0 * k AS feedback
            ) AS r
            WHERE c.tenant_id = %(tenant)s
            ORDER BY c.id, k
            """,
            {"tenant": tenant.pk, "per": per_conversation},
        )
        cursor.execute(
            f"""
            INSERT INTO {Lead._meta.db_table}
                (public_id, tenant_id, bot_id, conversation_id, message_id, name, email, phone, captured_at)
            SELECT 'lead_' || lpad(c.id::text, 24, '0'), c.tenant_id, c.bot_id, c.id,
                   (SELECT min(m.id) FROM {Message._meta.db_table} m WHERE m.conversation_id = c.id),
                   'Lead ' || c.id, 'lead' || c.id || '@example.com', '+1 555 ' || lpad(c.id::text, 7, '0'),
                   c.created_at + interval '1 minute'
            FROM {Conversation._meta.db_table} c
            WHERE c.tenant_id = %(tenant)s AND c.has_lead
            """,
            {"tenant": tenant.pk},
        )
    with connection.cursor() as cursor:
        for model in (Conversation, Message, Lead):
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")
    return {
        "conversations": Conversation.objects.filter(tenant=tenant).count(),
        "messages": Message.objects.filter(tenant=tenant).count(),
        "leads": Lead.objects.filter(tenant=tenant).count(),
        "seconds": round(time.perf_counter() - began, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--per-conversation", type=int, default=8)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--bots", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per measurement")
    parser.add_argument("--fresh", action="store_true", help="regenerate the data set")
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = bench_database_url("bench_analytics")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bothero.settings")
    import django

    django.setup()
    import logging

    import httpx
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import Tenant
    from accounts.services import api_key_create, tenant_create
    from analytics import selectors, services
    from analytics.models import DailyRollup, RollupState
    from analytics.serializers import RangeQuerySerializer
    from bothero.testing.processes import uvicorn_server
    from bots.models import Bot
    from conversations.models import Conversation, Lead, Message

    logging.getLogger("httpx").setLevel(logging.WARNING)
    call_command("migrate", verbosity=0)
    tenant = Tenant.objects.filter(name=BENCH_TENANT).first()
    if tenant is not None and (args.fresh or Message.objects.filter(tenant=tenant).count() != args.messages):
        print("Dropping the previous data set…", flush=True)
        with connection.cursor() as cursor:
            # In SQL: the ORM's cascade would load a million rows into Python first.
            for model in (DailyRollup, Lead, Message, Conversation):
                cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE tenant_id = %s", [tenant.pk])
        tenant.delete()
        tenant = None
    dataset = None
    if tenant is None:
        print(f"Generating {args.messages:,} messages over {args.days} days…", flush=True)
        tenant = tenant_create(name=BENCH_TENANT, plan_slug="enterprise")
        bots = [Bot.objects.create(tenant=tenant, name=f"Bench bot {n}") for n in range(args.bots)]
        dataset = generate(
            tenant=tenant,
            bot_ids=[bot.pk for bot in bots],
            messages=args.messages,
            per_conversation=args.per_conversation,
            days=args.days,
        )
        print(f"  {dataset}", flush=True)
    bot = Bot.objects.filter(tenant=tenant).order_by("pk").first()

    print("Rolling up…", flush=True)
    DailyRollup.objects.filter(tenant=tenant).delete()
    RollupState.objects.filter(tenant=tenant).delete()
    settings.ANALYTICS_ROLLUP_MAX_DAYS_PER_RUN = args.days + 10
    began = time.perf_counter()
    days_done = services.rollup_tenant(tenant=tenant)
    rollup_seconds = time.perf_counter() - began
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {DailyRollup._meta.db_table}")
    rollup = {
        "days": len(days_done),
        "rows": DailyRollup.objects.filter(tenant=tenant).count(),
        "seconds": round(rollup_seconds, 1),
        "ms_per_day": round(rollup_seconds * 1000 / max(1, len(days_done)), 1),
    }
    print(f"  {rollup}", flush=True)

    def window(**params):
        query = RangeQuerySerializer(data=params)
        query.is_valid(raise_exception=True)
        return query.validated_data["window"]

    default_window = window()
    sample = selectors.analytics_overview(tenant=tenant, window=default_window)
    results = {}
    n = args.requests
    print("Measuring in process…", flush=True)
    results["overview selector, all bots (rollups + live)"] = timed(
        lambda: selectors.analytics_overview(tenant=tenant, window=window()), n
    )
    results["overview selector, one bot (rollups + live)"] = timed(
        lambda: selectors.analytics_overview(tenant=tenant, bot=bot, window=window()), n
    )
    results["overview selector, all bots, all live (no rollups)"] = timed(
        lambda: selectors.analytics_overview(tenant=tenant, window=window(), use_rollups=False), max(10, n // 10)
    )

    key = api_key_create(tenant=tenant, name="bench").key
    print("Measuring over HTTP (uvicorn)…", flush=True)
    # Production-like: DEBUG off (no query log kept per request).
    with (
        uvicorn_server(DEBUG="false", SECRET_KEY="bench-analytics-secret-key-not-for-production") as base_url,
        httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client,
    ):

        def get(path, **params):
            def call():
                response = client.get(path, params=params)
                assert response.status_code == 200, response.text
                return response

            return call

        results["GET /v1/analytics/overview (default: last 30 days)"] = timed(get("/v1/analytics/overview"), n)
        results["GET /v1/analytics/overview?bot_id=…"] = timed(get("/v1/analytics/overview", bot_id=bot.public_id), n)
        year_start = (datetime.now(UTC) - timedelta(days=args.days)).date().isoformat()
        results[f"GET /v1/analytics/overview ({args.days} days)"] = timed(
            get("/v1/analytics/overview", start=year_start), max(10, n // 4)
        )
        results["GET /v1/analytics/conversations (30 UTC days, rollups)"] = timed(
            get("/v1/analytics/conversations"), max(10, n // 4)
        )
        results["GET /v1/analytics/conversations (30 New York days, live)"] = timed(
            get("/v1/analytics/conversations", timezone="America/New_York"), max(10, n // 4)
        )
        week_ago = (datetime.now(UTC) - timedelta(days=6)).date().isoformat()
        results["GET /v1/analytics/conversations (7 days hourly, live)"] = timed(
            get("/v1/analytics/conversations", granularity="hour", start=week_ago), max(10, n // 4)
        )
        results["GET /v1/analytics/leads (first page of 20)"] = timed(get("/v1/analytics/leads"), max(10, n // 4))
        results["GET /v1/analytics/leads?format=csv (30 days)"] = timed(
            get("/v1/analytics/leads", format="csv"), 10, warmup=2
        )
        results["GET /v1/analytics/unanswered (30 days)"] = timed(get("/v1/analytics/unanswered"), 20, warmup=2)
        csv_rows = client.get("/v1/analytics/leads", params={"format": "csv"}).text.count("\r\n") - 1

    overview_http = results["GET /v1/analytics/overview (default: last 30 days)"]
    report = {
        "benchmark": "analytics",
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "postgres": connection.pg_version,
            "redis": bool(os.environ.get("REDIS_URL")),
            # Other processes share the CPUs: the 1/5/15-minute load averages when the timings ended.
            "load_average": [round(load, 2) for load in os.getloadavg()],
        },
        "data_set": {
            "messages": Message.objects.filter(tenant=tenant).count(),
            "days": args.days,
            "bots": args.bots,
            "per_conversation": args.per_conversation,
            "generated": dataset,
            "default_window_conversations": sample["current"]["conversations"],
            "default_window_messages": sample["current"]["messages"],
            "csv_rows_30_days": csv_rows,
        },
        "rollup": rollup,
        "timings": results,
        "target": {"overview_http_p50_ms": TARGET_P50_MS, "met": overview_http["p50_ms"] <= TARGET_P50_MS},
    }
    out = results_file("analytics.json")
    out.write_text(json.dumps(report, indent=2) + "\n")

    width = max(len(name) for name in results)
    print()
    print(
        f"{report['data_set']['messages']:,} messages, {args.days} days, {args.bots} bots; "
        f"the last 30 days hold {sample['current']['messages']:,} messages"
    )
    print(f"rollup: {rollup['days']} days in {rollup['seconds']} s ({rollup['ms_per_day']} ms/day)")
    print(f"load average at the end: {report['machine']['load_average']} on {os.cpu_count()} CPUs")
    print()
    print(f"{'measurement':<{width}}  {'n':>4}  {'p50 ms':>8}  {'p95 ms':>8}  {'max ms':>8}")
    print(f"{'-' * width}  {'-' * 4}  {'-' * 8}  {'-' * 8}  {'-' * 8}")
    for name, figures in results.items():
        print(
            f"{name:<{width}}  {figures['n']:>4}  {figures['p50_ms']:>8.1f}  {figures['p95_ms']:>8.1f}  "
            f"{figures['max_ms']:>8.1f}"
        )
    print()
    verdict = "met" if report["target"]["met"] else "NOT met"
    print(f"target overview p50 ≤ {TARGET_P50_MS:.0f} ms over HTTP: {verdict} ({overview_http['p50_ms']} ms)")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
