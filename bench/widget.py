"""Chat widget benchmark: widget.js's size, and what the browser adds to a streamed answer.

    flock /tmp/bench.lock nice -n 5 .venv/bin/python bench/widget.py            # defaults below
    .venv/bin/python bench/widget.py --runs 30 --delay 0.3 --token-delay 0.02

In one run:

* **size**: `/widget.js` as served, raw and gzipped (the budget is 50 KB gzipped);
* **widget**: headless Chromium (Debian's chromium + chromium-driver, through Selenium) opens a page on
  another loopback origin that embeds the snippet, and for each question clicks Send; the page itself
  records (performance.now()) when the first token appears in the answer's bubble and when the answer is
  complete (`bothero:answer`);
* **direct**: the same request — POST /v1/chat/completions with the publishable key, its Origin and a
  visitor id, `stream: true` — made directly over HTTP (httpx), timed to the first `message.delta` and to
  `message.completed`.

The API is uvicorn (DEBUG off) with `LLM_PROVIDER=openai` pointing at the loopback stub
(`conversations.testing.llm_server`, its own process), which waits `--delay` before its first token and
`--token-delay` between tokens of a fixed 52-word answer: a model's pace. Each question starts a new
conversation (the bot has a small FAQ, ingested for real). Runs alternate widget / direct so both see the
same machine. Without DATABASE_URL a `bench_widget` database is made on the embedded PostgreSQL server.
Results: printed, and written to bench/results/widget.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))

from bench.common import bench_database_url, results_file, start_stub, start_web, stop, summary  # noqa: E402

BENCH_DB = "bench_widget"
REPLY = " ".join(
    "Our shop is open Monday through Friday from nine to six Eastern time and on Saturdays from ten to two; "
    "refunds are paid within five business days and express shipping arrives the next business day for a "
    "small fee, while orders over fifty dollars ship free of charge anywhere in the country.".split()[:60]
)
QUESTIONS = ["When are you open?", "How do refunds work?", "How fast is express shipping?", "Is shipping free?"]


def prepare(page_origin: str):
    """A tenant on a plan without tight limits, a bot trained on the test FAQ, a publishable key for the page."""
    from accounts.models import Plan
    from accounts.services import api_key_create, tenant_create
    from bots.models import Bot
    from conversations.tests.conftest import FAQ_TEXT, FAQ_TITLE
    from knowledge.services import document_create_from_text

    plan, _ = Plan.objects.get_or_create(
        slug="bench-widget",
        defaults={"name": "Bench", "api_access": True, "requests_per_minute": 100000, "sort_order": 99},
    )
    bot = Bot.objects.filter(name="Widget bench bot").select_related("tenant").first()
    if bot is None:
        tenant = tenant_create(name="Widget bench", plan_slug=plan.slug)
        bot = Bot.objects.create(tenant=tenant, name="Widget bench bot", welcome_message="Hi!")
        document_create_from_text(tenant=tenant, bot=bot, title=FAQ_TITLE, text=FAQ_TEXT)
    key = api_key_create(
        tenant=bot.tenant,
        name="bench",
        key_type="publishable",
        bot_ids=[bot.public_id],
        allowed_origins=[page_origin],
        limits={"visitor_requests_per_minute": 10000, "address_requests_per_minute": 10000},
    ).key
    return bot, key


# Clicks Send in the widget and resolves with [ms to the first token on screen, ms to the complete answer].
ASK_IN_PAGE = """
var done = arguments[arguments.length - 1], question = arguments[0];
var widget = BotHero.element, root = widget.shadowRoot, log = root.querySelector('.log');
widget.conversationId = null;  // a new conversation for every question, as for the direct requests
var before = log.querySelectorAll('.msg.assistant').length, first = null, started;
var observer = new MutationObserver(function () {
  var bubbles = log.querySelectorAll('.msg.assistant');
  if (first === null && bubbles.length > before && bubbles[bubbles.length - 1].textContent.length > 0) {
    first = performance.now() - started;
  }
});
observer.observe(log, {subtree: true, childList: true, characterData: true});
widget.addEventListener('bothero:answer', function finished() {
  widget.removeEventListener('bothero:answer', finished);
  observer.disconnect();
  done([first, performance.now() - started]);
});
root.querySelector('textarea').value = question;
started = performance.now();
root.querySelector('button[aria-label="Send"]').click();
"""


def ask_direct(client, api: str, key: str, origin: str, bot_id: str, question: str) -> tuple[float, float]:
    headers = {"Authorization": f"Bearer {key}", "Origin": origin, "X-BotHero-Visitor": "v_bench_direct_0123456789"}
    body = {"bot_id": bot_id, "message": question, "stream": True}
    started = time.perf_counter()
    first = None
    with client.stream("POST", f"{api}/v1/chat/completions", json=body, headers=headers) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if first is None and line == "event: message.delta":
                first = time.perf_counter() - started
            if line == "event: message.completed":
                break
    return first * 1000, (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description="widget.js size; click-Send to first/last token vs direct HTTP.")
    parser.add_argument("--runs", type=int, default=30, help="questions asked each way")
    parser.add_argument("--delay", type=float, default=0.3, help="the stub's wait before its first token (s)")
    parser.add_argument("--token-delay", type=float, default=0.02, help="the stub's wait between tokens (s)")
    args = parser.parse_args()

    import httpx

    from widget.testing import PageServer, chromium, snippet_page

    database_url = bench_database_url(BENCH_DB)
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bothero.settings")
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"  # ingest the FAQ here and now
    import django

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from django.core.management import call_command

    from widget.assets import widget_js

    call_command("migrate", verbosity=0)
    asset = widget_js()
    sizes = {"raw_bytes": len(asset.body), "gzip_bytes": len(asset.gzipped)}

    stub, stub_url = start_stub("--delay", str(args.delay), "--token-delay", str(args.token_delay), "--reply", REPLY)
    widget_times, direct_times = [], []
    with PageServer() as pages:
        bot, key = prepare(pages.origin("localhost"))
        api_proc, api = start_web(database_url, stub_url, LOG_LEVEL="WARNING")  # not a line per model call
        try:
            pages.pages["/shop.html"] = snippet_page(api=api, bot_id=bot.public_id, key=key)
            with chromium() as driver, httpx.Client(timeout=60) as client:
                driver.set_script_timeout(60)
                driver.get(pages.url("/shop.html"))
                while not driver.execute_script("return !!(window.BotHero && BotHero.element.ready)"):
                    time.sleep(0.05)
                driver.execute_script("BotHero.open()")
                # One of each first, unmeasured: connections, the CORS preflight cache, the model's first load.
                driver.execute_async_script(ASK_IN_PAGE, "Warm up")
                ask_direct(client, api, key, pages.origin("localhost"), bot.public_id, "Warm up")
                for run in range(args.runs):
                    question = QUESTIONS[run % len(QUESTIONS)]
                    widget_times.append(driver.execute_async_script(ASK_IN_PAGE, question))
                    direct_times.append(
                        ask_direct(client, api, key, pages.origin("localhost"), bot.public_id, question)
                    )
                errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        finally:
            stop(api_proc)
            stop(stub)

    rows = {
        "widget": {"first": summary([t[0] for t in widget_times]), "last": summary([t[1] for t in widget_times])},
        "direct": {"first": summary([t[0] for t in direct_times]), "last": summary([t[1] for t in direct_times])},
    }
    print(
        f"\nwidget.js: {sizes['raw_bytes'] / 1024:.1f} KB raw, {sizes['gzip_bytes'] / 1024:.1f} KB gzipped (budget 50 KB)"
    )
    print(
        f"\nstub: {args.delay * 1000:.0f} ms to the first token, {args.token_delay * 1000:.0f} ms between tokens, "
        f"{len(REPLY.split())} words; {args.runs} questions each way; load average {os.getloadavg()[0]:.1f}; "
        f"{os.cpu_count()} CPUs\n"
    )
    print("| path | first token p50 / p90 (ms) | last token p50 / p90 (ms) |")
    print("|---|---|---|")
    for name, label in (("direct", "direct HTTP (httpx, SSE)"), ("widget", "widget in Chromium (click Send → screen)")):
        first, last = rows[name]["first"], rows[name]["last"]
        print(f"| {label} | {first['p50']:.0f} / {first['p90']:.0f} | {last['p50']:.0f} / {last['p90']:.0f} |")
    added_first = rows["widget"]["first"]["p50"] - rows["direct"]["first"]["p50"]
    added_last = rows["widget"]["last"]["p50"] - rows["direct"]["last"]["p50"]
    print(f"| widget − direct (p50) | {added_first:+.0f} | {added_last:+.0f} |")
    print(f"\nbrowser console errors: {len(errors)}")
    results_file("widget.json").write_text(
        json.dumps({"args": vars(args), "sizes": sizes, "rows": rows, "console_errors": len(errors)}, indent=2)
    )


if __name__ == "__main__":
    main()
