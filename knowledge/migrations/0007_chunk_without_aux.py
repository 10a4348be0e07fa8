# The backfill's work list: a partial index over the chunks without `embedding_aux`. Built concurrently
# (writes to knowledge_chunk go on meanwhile), hence outside a transaction.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("knowledge", "0006_chunk_embedding_aux"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="chunk",
            index=models.Index(
                condition=models.Q(embedding_aux__isnull=True), fields=["document", "id"], name="chunk_without_aux"
            ),
        ),
    ]
