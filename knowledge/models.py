"""Documents a bot learns from, and the chunks retrieval searches.

Invariant: a document's chunks exist only while it is `ready`. They are
written in the same transaction that marks it ready, and deleted in the one
that takes it out of `ready` (reindex, failure), so a search never sees half
a document. `LexemeStat` rows (full-text document frequencies per bot) change
in the same transactions as the chunks.
"""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from pgvector.django import HnswIndex, VectorField

from bothero.ids import PublicIdField

EMBEDDING_DIMENSION = 384
# Text search configuration of the generated tsvector column (and of the queries against it).
FULLTEXT_CONFIG = "english"


def document_upload_path(document: "Document", filename: str) -> str:
    return f"knowledge/{document.tenant.public_id}/{document.public_id}/{filename}"


class Document(models.Model):
    class SourceType(models.TextChoices):
        FILE = "file"
        URL = "url"
        TEXT = "text"

    class Status(models.TextChoices):
        QUEUED = "queued"
        PROCESSING = "processing"
        READY = "ready"
        FAILED = "failed"

    public_id = PublicIdField(prefix="doc")
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="documents")
    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="documents")
    title = models.CharField(max_length=255)
    source_type = models.CharField(max_length=8, choices=SourceType.choices)
    source_url = models.URLField(max_length=2048, blank=True)
    filename = models.CharField(max_length=255, blank=True)
    # Detected from the content (never the name or the declared type); empty until known.
    content_type = models.CharField(max_length=100, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    # Empty for a URL document until it has been downloaded.
    content_sha256 = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    chunk_count = models.PositiveIntegerField(default=0)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # The original bytes (file and URL sources) under MEDIA_ROOT, or the raw text (text source).
    file = models.FileField(upload_to=document_upload_path, max_length=500, blank=True)
    text = models.TextField(blank=True)
    embedding_model = models.CharField(max_length=200, blank=True)
    embedding_dimension = models.PositiveSmallIntegerField(null=True, blank=True)
    # Ingestion bookkeeping: which task run owns the work (the Celery task id, the same
    # on a redelivery), since when, and how many runs have claimed it.
    claim_token = models.CharField(max_length=64, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ready_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "-id"]),
            models.Index(fields=["bot", "-id"]),
            models.Index(fields=["status", "updated_at"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["bot", "content_sha256"],
                condition=~models.Q(content_sha256=""),
                name="unique_document_content_per_bot",
            )
        ]

    def __str__(self):
        return f"{self.title} ({self.public_id})"


class Chunk(models.Model):
    public_id = PublicIdField(prefix="chk")
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="+")
    # Denormalised from the document so every search filters on one column.
    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="+")
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    position = models.PositiveIntegerField()
    text = models.TextField()
    heading = models.TextField(null=True, blank=True)
    page = models.PositiveIntegerField(null=True, blank=True)
    token_count = models.PositiveIntegerField(default=0)
    # Headings weigh more than body text in full-text ranking.
    search_vector = models.GeneratedField(
        expression=SearchVector("heading", weight="A", config=FULLTEXT_CONFIG)
        + SearchVector("text", weight="B", config=FULLTEXT_CONFIG),
        output_field=SearchVectorField(),
        db_persist=True,
    )
    embedding = VectorField(dimensions=EMBEDDING_DIMENSION)
    # The ensemble's second model (bge-small-en; `knowledge.embeddings`), not indexed: only the
    # candidates the searches on `embedding` find are compared with it. Null for a chunk embedded
    # before the ensemble (or with an embedding API): it is then compared with `embedding` alone, until
    # the backfill gives it one (`knowledge.services.embedding_backfill`).
    # pgvector's EXTERNAL storage moves it out of the row (unlike `embedding`, migration 0003), so
    # the exact scans over `embedding` read rows no larger than before.
    embedding_aux = VectorField(dimensions=EMBEDDING_DIMENSION, null=True, blank=True)
    # Whether the chunk is in the shared HNSW graph (whose index is partial on this column). False for a
    # chunk written while its bot had a valid graph of its own (`knowledge.services.bot_indexes`): that
    # graph alone holds it, so a write into a large bot pays one graph insert, not two. Set back to true
    # before the bot's own graph is dropped. A database default, so rows written in bulk outside Django
    # (COPY) get it too.
    in_shared_index = models.BooleanField(default=True, db_default=True)

    class Meta:
        indexes = [
            models.Index(fields=["bot"]),
            # The chunks still without the second vector, in the order the backfill takes them
            # (`knowledge.services.embedding_backfill`): empty once it is done, so its beat run costs nothing.
            models.Index(
                fields=["document", "id"], name="chunk_without_aux", condition=models.Q(embedding_aux__isnull=True)
            ),
            GinIndex(fields=["search_vector"], name="chunk_search_vector_gin"),
            # The shared graph: every chunk but those of a bot with its own graph written since it has one.
            HnswIndex(
                fields=["embedding"],
                name="chunk_embedding_shared_hnsw",
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
                condition=models.Q(in_shared_index=True),
            ),
            # The chunks outside the shared graph, by bot: what the sweep and the drop of a bot's own graph
            # look for (`knowledge.services.bot_indexes`); empty unless some bot has its own graph.
            models.Index(fields=["bot"], name="chunk_outside_shared_index", condition=models.Q(in_shared_index=False)),
        ]
        constraints = [models.UniqueConstraint(fields=["document", "position"], name="unique_chunk_position")]

    def __str__(self):
        return f"{self.document_id}#{self.position}"


class LexemeStat(models.Model):
    """How many of a bot's chunks contain each lexeme: the document frequencies behind full-text IDF weights.

    The row with the empty lexeme holds the bot's total number of chunks.
    Maintained with the chunks, in the same transactions (see `knowledge.services`).
    """

    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="+")
    lexeme = models.TextField(blank=True)
    chunk_count = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bot", "lexeme"], name="unique_lexeme_per_bot")]

    def __str__(self):
        return f"{self.lexeme or '<total>'}: {self.chunk_count}"


class CuratedAnswer(models.Model):
    """An answer the business wants given, word for word, to a question (and its variants).

    A customer's question that matches the question or a variant closely enough
    (`knowledge.answer_selectors.curated_answer_match`) is answered with `answer`
    verbatim, cited as this curated answer, instead of from the documents.
    """

    public_id = PublicIdField(prefix="ans")
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="curated_answers")
    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="curated_answers")
    question = models.TextField(max_length=500)
    variants = models.JSONField(default=list, blank=True)
    answer = models.TextField(max_length=4000)
    # The message it was made from (a rated answer, or an unanswered question), if any.
    source_message = models.ForeignKey(
        "conversations.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    times_used = models.PositiveIntegerField(default=0)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "-id"]), models.Index(fields=["bot", "-id"])]

    def __str__(self):
        return f"{self.question[:60]} ({self.public_id})"


class CuratedPhrase(models.Model):
    """One wording of a curated answer's question (the question itself, or a variant), embedded and indexed
    for full text like a chunk, so a customer's question is matched with the same machinery."""

    answer = models.ForeignKey(CuratedAnswer, on_delete=models.CASCADE, related_name="phrases")
    # Denormalised from the answer so a match filters on one column.
    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="+")
    text = models.TextField()
    search_vector = models.GeneratedField(
        expression=SearchVector("text", config=FULLTEXT_CONFIG),
        output_field=SearchVectorField(),
        db_persist=True,
    )
    embedding = VectorField(dimensions=EMBEDDING_DIMENSION)

    class Meta:
        indexes = [models.Index(fields=["bot"])]


class WebsiteSource(models.Model):
    """A website a bot learns from: its pages, found by sitemap or by crawling, one document each, kept fresh.

    `knowledge.services.sources.website_source_sync` discovers the pages, fetches
    them with conditional requests, (re)ingests only new and changed ones and
    removes the documents of pages that are gone.
    """

    class Type(models.TextChoices):
        SITEMAP = "sitemap"
        CRAWL = "crawl"

    class Refresh(models.TextChoices):
        DAILY = "daily"
        WEEKLY = "weekly"
        NEVER = "never"

    class Status(models.TextChoices):
        QUEUED = "queued"
        SYNCING = "syncing"
        IDLE = "idle"  # the last sync finished (see last_result)
        FAILED = "failed"  # the last sync could not discover any page (see last_result)

    public_id = PublicIdField(prefix="src")
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="website_sources")
    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="website_sources")
    type = models.CharField(max_length=16, choices=Type.choices)
    url = models.URLField(max_length=2048)
    max_pages = models.PositiveIntegerField(default=100)
    max_depth = models.PositiveSmallIntegerField(default=3)
    include = models.JSONField(default=list, blank=True)
    exclude = models.JSONField(default=list, blank=True)
    refresh = models.CharField(max_length=16, choices=Refresh.choices, default=Refresh.WEEKLY)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.JSONField(default=dict, blank=True)
    last_result = models.JSONField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    next_sync_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=64, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "-id"]), models.Index(fields=["status", "next_sync_at"])]

    def __str__(self):
        return f"{self.type} {self.url} ({self.public_id})"


class SourcePage(models.Model):
    """One page of a website source, with what the next sync needs to skip it when unchanged."""

    source = models.ForeignKey(WebsiteSource, on_delete=models.CASCADE, related_name="pages")
    url = models.URLField(max_length=2048)
    document = models.ForeignKey(Document, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    etag = models.CharField(max_length=500, blank=True)
    last_modified = models.CharField(max_length=100, blank=True)
    content_sha256 = models.CharField(max_length=64, blank=True)
    # Same-host links found in the page (crawls), so a page answered 304 still leads to its links.
    links = models.JSONField(default=list, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "url"], name="unique_page_per_source")]
