"""Settings read from the environment.

With no environment at all this is the embedded default: SQLite, Celery in
eager mode, a local-memory cache and email to the console. Setting
``DATABASE_URL`` and ``REDIS_URL`` switches to the real services.
"""

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="embedded-development-key-not-for-production")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

# The absolute base of links handed out (the customer's notice_url).
WORKBENCH_BASE_URL = env("WORKBENCH_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# The key of the customers' notice links (an HMAC of the case reference), and
# the keys it replaced: links already sent keep working (docs/operations.md).
NOTICE_LINK_KEY = env("NOTICE_LINK_KEY", default="") or SECRET_KEY
NOTICE_LINK_KEY_FALLBACKS = env.list("NOTICE_LINK_KEY_FALLBACKS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_guid",
    "django_prometheus",
    "csp",
    "template_partials",
    "ninja",
    "axes",
    "workbench",
    "reviews",
    "escalations",
]

MIDDLEWARE = [
    # First: every log line of the request carries its id (X-Request-ID).
    "django_guid.middleware.guid_middleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files from the web process itself (collectstatic first), with
    # compression and far-future caching of hashed names in production.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "workbench.middleware.BodyLimitMiddleware",
    # Before the session is looked up by its cookie.
    "workbench.middleware.NulCharacterMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Turns django-ratelimit's refusal into RATELIMIT_VIEW's 429 page.
    "django_ratelimit.middleware.RatelimitMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as django-axes requires: it turns a lockout into the login page's answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "workbench.urls"
WSGI_APPLICATION = "workbench.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

# Content-Security-Policy: everything from this origin, no inline script or
# style anywhere (htmx is configured not to inject styles or eval), no
# framing. The API's interactive docs load Swagger UI from a CDN: excluded.
CONTENT_SECURITY_POLICY = {
    "EXCLUDE_URL_PREFIXES": ["/api/v1/docs"],
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
        "object-src": [NONE],
    },
}

# --- Database -----------------------------------------------------------------
DATABASES = {
    "default": env.db_url_config(
        env("DATABASE_URL", default="") or f"sqlite:///{VAR_DIR / 'workbench.sqlite3'}"
    ),
}
VAR_DIR.mkdir(exist_ok=True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # BEGIN IMMEDIATE: writers queue on SQLite's lock up front instead of failing
    # with "database is locked" when a read transaction tries to upgrade.
    # secure_delete: what a change or an erasure removes is overwritten with
    # zeros, not left in the file's free space (DESIGN §7: a copy of the
    # database file holds none of an erased subject's data).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA secure_delete=ON"}
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Bulk inserts as VALUES lists with parameters bound by the server; see
    # workbench/db/postgresql/base.py for why.
    DATABASES["default"]["ENGINE"] = "workbench.db.postgresql"
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "workbench.User"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
# django-axes: five failed logins for one username from one address lock that
# pair out for 15 minutes; a successful login clears the count.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "workbench.views.login_locked_out"
# How many reverse proxies stand in front of the web processes (each appends
# to X-Forwarded-For); 0 trusts no header. workbench.http.client_ip applies it
# for the lockout, the rate limits and the metrics allowlist.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "workbench.http.client_ip"
RATELIMIT_IP_META_KEY = "workbench.http.client_ip"
# The counts are in the cache: while it is out of reach, requests go through.
RATELIMIT_FAIL_OPEN = True
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# --- Cache and Celery -----------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            # Redis out of reach is a miss, not an error (workbench/cache.py).
            "BACKEND": "workbench.cache.FailOpenRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="workbench"),
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task whose worker died before acknowledging it (acks_late: killed, or
# its machine lost) is handed to another worker once it has been out this
# long. Redis's default; the fault tests shorten it.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
}

# --- Email ------------------------------------------------------------------------
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="workbench@localhost")

# --- Static files and i18n -----------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"  # collectstatic writes here; WhiteNoise serves it
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Outside production the files are served from where they are (no collectstatic).
WHITENOISE_USE_FINDERS = True
# Evidence customers send with appeals: encrypted files, outside the web root,
# served only through the staff view that checks who may see them.
EVIDENCE_ROOT = Path(env("EVIDENCE_ROOT", default=str(VAR_DIR / "evidence")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "evidence": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": EVIDENCE_ROOT, "base_url": None},
    },
}
# Trail exports made in the background (large ones); small ones stream.
EXPORT_ROOT = Path(env("EXPORT_ROOT", default=str(VAR_DIR / "exports")))
EXPORT_STREAM_MAX_EVENTS = env.int("EXPORT_STREAM_MAX_EVENTS", default=50_000)
# Files of exports made in the background are deleted this long after they
# were written (hourly, by beat); the request stays listed, as expired.
EXPORT_RETENTION_DAYS = env.int("EXPORT_RETENTION_DAYS", default=7)
LANGUAGE_CODE = "en"
# Customers read their notice in their locale where a translation exists
# (locale/<code>/LC_MESSAGES); staff screens are in English.
LANGUAGES = [("en", "English"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- The decision trail ---------------------------------------------------------------
# Ed25519 private key (PEM) that signs trail checkpoints. Unset in development:
# a key is generated once into TRAIL_SIGNING_KEY_FILE.
TRAIL_SIGNING_KEY = env("TRAIL_SIGNING_KEY", default="")
TRAIL_SIGNING_KEY_FILE = Path(
    env("TRAIL_SIGNING_KEY_FILE", default=str(VAR_DIR / "trail-signing-key.pem"))
)
# The public keys (PEM files, comma-separated) of signing keys used before
# the current one: older checkpoints still verify (docs/operations.md, Keys).
TRAIL_RETIRED_PUBLIC_KEY_FILES = env.list("TRAIL_RETIRED_PUBLIC_KEY_FILES", default=[])
TRAIL_CHECKPOINT_EVERY = 1000
TRAIL_CHECKPOINT_MAX_AGE_SECONDS = 3600
# The sequencer (PostgreSQL, DESIGN §6): a writer's commit NOTIFYs it, at most
# once per TRAIL_NOTIFY_INTERVAL_SECONDS per process (a NOTIFY serializes the
# commits that send one; 0: every commit, -1: never); it sweeps every
# TRAIL_SEQUENCER_SWEEP_SECONDS when idle, every TRAIL_SEQUENCER_BUSY_SECONDS
# while events keep coming. /readyz fails when an event has waited longer than
# TRAIL_MERGE_DELAY_MAX_SECONDS for its seq.
TRAIL_NOTIFY_INTERVAL_SECONDS = env.float("TRAIL_NOTIFY_INTERVAL_SECONDS", default=0.2)
TRAIL_SEQUENCER_SWEEP_SECONDS = env.float("TRAIL_SEQUENCER_SWEEP_SECONDS", default=0.25)
TRAIL_SEQUENCER_BUSY_SECONDS = env.float("TRAIL_SEQUENCER_BUSY_SECONDS", default=0.02)
TRAIL_MERGE_DELAY_MAX_SECONDS = env.float("TRAIL_MERGE_DELAY_MAX_SECONDS", default=5.0)

# --- API --------------------------------------------------------------------------------
API_MAX_BODY_BYTES = 1024 * 1024
API_MAX_BATCH_BODY_BYTES = 64 * 1024 * 1024
API_MAX_BATCH_ITEMS = 1000
# Requests per API key (a batch counts once), counted in the cache.
API_RATE_PER_KEY = env("API_RATE_PER_KEY", default="600/m")
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BATCH_BODY_BYTES
# Web forms: an appeal with its evidence (5 files of 10 MB), everything else small.
APPEAL_MAX_BODY_BYTES = 52 * 1024 * 1024
WEB_MAX_BODY_BYTES = 2 * 1024 * 1024

# --- Webhooks to AI systems (workbench/services/webhooks.py) ---------------------------
# Callback URLs must be https and resolve to public addresses only; true lifts
# both rules, so that http://127.0.0.1:PORT/ works. On here (the embedded
# default, the demo, the tests); off in production.
WEBHOOK_ALLOW_PRIVATE = env.bool("WEBHOOK_ALLOW_PRIVATE", default=True)
# After a secret is rotated, the old one still signs webhook-signature this long.
WEBHOOK_SECRET_GRACE_HOURS = env.int("WEBHOOK_SECRET_GRACE_HOURS", default=24)

# --- The customer's notice page ------------------------------------------------------
# Per client address; the link's token is unguessable, the limit keeps anyone
# from trying. django-ratelimit counts in the cache (Redis when REDIS_URL is set;
# the embedded local-memory cache counts per process, which is enough there).
NOTICE_RATE_GET = env("NOTICE_RATE_GET", default="60/m")
NOTICE_RATE_POST = env("NOTICE_RATE_POST", default="10/m")
RATELIMIT_VIEW = "escalations.views.notice.rate_limited"
# How long a customer may change their answers to the notice's two questions
# ("Did we listen to you?", "Was the decision explained fairly?"), from the first.
FEEDBACK_CHANGE_DAYS = env.int("FEEDBACK_CHANGE_DAYS", default=14)

# Who may read /metrics (the Prometheus scraper): a list of client addresses.
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"])

# A request id on every log line of a request: taken from X-Request-ID when
# a proxy sends one, else made; returned in the same header.
DJANGO_GUID = {"GUID_HEADER_NAME": "X-Request-ID", "VALIDATE_GUID": False}
# LOG_FORMAT=json (the production default) writes one JSON object per line,
# for log shippers; text is for people at a terminal.
LOG_FORMAT = env("LOG_FORMAT", default="text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "django_guid.log_filters.CorrelationId"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s",
            "rename_fields": {
                "asctime": "time",
                "levelname": "level",
                "correlation_id": "request_id",
            },
        },
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": LOG_FORMAT,
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
