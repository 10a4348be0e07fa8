"""Keep each chunk's embedding inside its row (storage PLAIN) instead of pgvector's EXTERNAL.

A chunk row (vector 1.5 KB, text, tsvector) is over PostgreSQL's 2 KB TOAST threshold, and with
EXTERNAL storage the embedding, the largest value, is the first moved out of line: every exact
distance then costs a TOAST index lookup and fetch. The exact search of small bots reads every
embedding of the bot, so they stay in the row; the text and tsvector are compressed or moved out
instead. Rows written before this migration keep their out-of-line embeddings until rewritten
(reindex, or `VACUUM FULL knowledge_chunk`); see docs/performance.md.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0002_lexeme_stats")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE knowledge_chunk ALTER COLUMN embedding SET STORAGE PLAIN",
            reverse_sql="ALTER TABLE knowledge_chunk ALTER COLUMN embedding SET STORAGE EXTERNAL",
        )
    ]
