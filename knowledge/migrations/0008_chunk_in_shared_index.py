# A large bot's chunks written once it has its own graph stay out of the shared one (issue #15, writes):
# the shared HNSW index becomes partial on `in_shared_index`. On a big table every step is safe to run
# while the application writes: the column comes with a constant default (PostgreSQL 11+ adds it
# without rewriting the table), and the indexes are built and dropped concurrently, hence outside a
# transaction. The new shared graph is built beside the old one (searches keep one throughout); it is
# as long to build as the old one was: give the migrating session the memory to hold the whole graph,
# e.g. `PGOPTIONS="-c maintenance_work_mem=4GB" python manage.py migrate` (~2 KB per chunk), or the
# build is much slower (docs/operations.md).

import pgvector.django.indexes
from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("knowledge", "0007_chunk_without_aux"),
    ]

    operations = [
        migrations.AddField(
            model_name="chunk",
            name="in_shared_index",
            field=models.BooleanField(db_default=True, default=True),
        ),
        AddIndexConcurrently(
            model_name="chunk",
            index=pgvector.django.indexes.HnswIndex(
                condition=models.Q(in_shared_index=True),
                ef_construction=64,
                fields=["embedding"],
                m=16,
                name="chunk_embedding_shared_hnsw",
                opclasses=["vector_cosine_ops"],
            ),
        ),
        RemoveIndexConcurrently(model_name="chunk", name="chunk_embedding_hnsw"),
        AddIndexConcurrently(
            model_name="chunk",
            index=models.Index(
                condition=models.Q(in_shared_index=False), fields=["bot"], name="chunk_outside_shared_index"
            ),
        ),
    ]
