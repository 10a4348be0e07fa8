"""`task_by_name` on first use from many threads at once (a fresh process: tasks not imported yet)."""

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import os, threading
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bothero.settings")
import django
django.setup()
from bothero.celery import task_by_name
errors, barrier = [], threading.Barrier(8)
def first_use():
    barrier.wait()
    try:
        task_by_name("webhooks.dispatch_events")
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=first_use) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(len(errors), errors[:1])
"""


def test_concurrent_first_lookups_all_find_the_task():
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=root, capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "0 []", result.stdout + result.stderr
