"""`manage.py backfill_embeddings`: give every chunk stored without it the ensemble's second vector, now.

Beat does this in the background (`knowledge.backfill_aux_embeddings`); this is for a set-up without beat
(the embedded default) or to finish at once. Same service, same batches, same lock.
"""

import time

from django.core.management.base import BaseCommand

from knowledge import services


class Command(BaseCommand):
    help = "Give the chunks stored before the embedding ensemble its second vector (what beat does in the background)."

    def handle(self, *args, **options):
        started = time.monotonic()
        embedded = completed = 0
        while True:
            result = services.chunks_aux_backfill()
            embedded += result.embedded
            completed += result.documents_completed
            if result.status == "busy":  # a background batch holds the lock for a few seconds
                time.sleep(1)
                continue
            if result.status != "done" or not result.more:
                break
        rate = embedded / max(time.monotonic() - started, 1e-9)
        self.stdout.write(
            f"{result.status}: {embedded} chunk(s) embedded ({rate:.1f}/s), {completed} document(s) complete."
        )
