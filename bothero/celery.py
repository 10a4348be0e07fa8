import os
import threading

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bothero.settings")

app = Celery("bothero")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

_import_lock = threading.Lock()


def task_by_name(name: str):
    """The registered task called `name`, importing the apps' task modules on first use.

    Services queue work through their app's `queueing` module, which finds tasks here by
    name instead of importing the task modules (those import the services: a cycle).
    """
    if name not in app.tasks:
        # One import at a time: a second thread that called import_default_modules while the first was
        # still in it got no task (NotRegistered, a 500 on the web process's first bot updates under load).
        with _import_lock:
            if name not in app.tasks:
                app.loader.import_default_modules()
    return app.tasks[name]
