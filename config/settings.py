"""One settings module, read from the environment with safe defaults.

A bad value raises ImproperlyConfigured at start-up rather than failing later.
"""

import datetime
import os
from pathlib import Path

import bootstrap_wrapper
import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if not raw.strip():
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None


def env_list(name: str, default: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


# pytest sets PYTEST_VERSION for the whole session.
TESTING = "PYTEST_VERSION" in os.environ
DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not (DEBUG or TESTING):
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-development-key-never-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "csp",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_htmx",
    "axes",
    "django_celery_beat",
    "django_prometheus",
    "trial",
    "capture",
    "safety",
    "reports",
]

MIDDLEWARE = [
    # django-prometheus times the whole request (with its After middleware near the end); then one log line per
    # request (config/observability.py).
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "config.observability.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # After the locale, so its refusal is in the user's language; before any view reads the query string.
    "trial.middleware.HostileRequestMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "config.security.NoStoreMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "trial.sessions.IdleTimeoutMiddleware",
    # A deadlock that escapes the services' retry answers 409, never 500 (trial/locking.py).
    "trial.locking.ConflictMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

try:
    DATABASES = {
        "default": dj_database_url.parse(
            os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
            conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        )
    }
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from exc
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # SQLite serialises writers; wait for the lock instead of failing at once.
    # SQLite allows one writer; take the write lock when a transaction starts (so the audit chain never
    # forks) and wait for it rather than failing at once.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    # A deliberately slow hash only slows the suite; tests never store real passwords.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
AUTHENTICATION_BACKENDS = [
    # Counts failed logins and refuses a locked-out account before the password is even checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = datetime.timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "30")))
# By account, not by address: a hospital's staff share one address behind its firewall.
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
SILENCED_SYSTEM_CHECKS = ["axes.W006"]  # by username on purpose, see AXES_LOCKOUT_PARAMETERS
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "trial:dashboard"
LOGOUT_REDIRECT_URL = "login"

# Times are stored in UTC and shown in the sites' time zone.
USE_TZ = True
TIME_ZONE = os.environ.get("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]

STATIC_URL = "static/"
# Where collectstatic puts the files whitenoise serves (the image collects them at build time).
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT") or BASE_DIR / "staticfiles")
# Bootstrap comes from PyPI (bootstrap-wrapper), never copied into the repository.
STATICFILES_DIRS = [BASE_DIR / "static", ("bootstrap", bootstrap_wrapper.get_bootstrap_dir())]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # The token first: a request without credentials answers 401 with `WWW-Authenticate: Token`, not 403.
        "trial.tokens.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "trial.pagination.Pagination",
    "PAGE_SIZE": 50,
    # Every operation documents the refusals it can answer, each with its body and an example.
    "DEFAULT_SCHEMA_CLASS": "trial.api_schema.AutoSchema",
    "EXCEPTION_HANDLER": "trial.api_errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "NCT01573923 EDC API",
    "DESCRIPTION": "Electronic data capture for the UC-MSC liver cirrhosis trial (NCT01573923).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# API tokens (django-rest-knox, trial/tokens.py): hashed at rest, sent as `Authorization: Token <key>`; each use
# pushes the expiry on by the idle time, never past the absolute lifetime from the issue.
REST_KNOX = {
    "TOKEN_TTL": datetime.timedelta(hours=env_int("API_TOKEN_IDLE_HOURS", 8)),
    "AUTO_REFRESH": True,
    "AUTO_REFRESH_MAX_TTL": datetime.timedelta(days=env_int("API_TOKEN_MAX_DAYS", 7)),
    "AUTH_HEADER_PREFIX": "Token",
    "TOKEN_LIMIT_PER_USER": None,
}
if REST_KNOX["TOKEN_TTL"] <= datetime.timedelta(0) or REST_KNOX["AUTO_REFRESH_MAX_TTL"] < REST_KNOX["TOKEN_TTL"]:
    raise ImproperlyConfigured("API_TOKEN_IDLE_HOURS must be over 0 and API_TOKEN_MAX_DAYS at least as long.")

# Without REDIS_URL the app runs its tasks in-process, so the embedded default needs no broker.
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
# The test suite runs tasks in-process too; the worker tests turn this off and start a real worker on Redis.
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL or TESTING
# How a task runs without a broker (trial/background.py): "thread", on a worker thread of this process after the
# commit, so that the request answers first; "inline", at once in the committing thread (the test suite's default,
# so tests are deterministic).
TASKS_IN_PROCESS = os.environ.get("TASKS_IN_PROCESS", "inline" if TESTING else "thread")
if TASKS_IN_PROCESS not in {"thread", "inline"}:
    raise ImproperlyConfigured(f"TASKS_IN_PROCESS must be thread or inline, not {TASKS_IN_PROCESS!r}")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
# Tasks must finish well inside the visibility timeout, or Redis hands them to a second worker.
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 3600)
# A Redis that vanishes without closing the connection fails a publish after socket_timeout, rather than holding
# the request (or the worker) forever.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT, "socket_timeout": 10}
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 600)
# The soft limit comes first, so that a task rolls back and logs before the hard limit kills its process.
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - min(60, CELERY_TASK_TIME_LIMIT // 10)
if not 0 < CELERY_TASK_TIME_LIMIT < CELERY_VISIBILITY_TIMEOUT:
    raise ImproperlyConfigured(
        "CELERY_TASK_TIME_LIMIT must be over 0 s and below CELERY_VISIBILITY_TIMEOUT, "
        "or Redis hands a running task to a second worker."
    )
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# Safety's sweeps: lab forms saved but not graded, and SAE notices not sent (a lost task, a broker that was down).
SAFETY_SWEEP_SECONDS = env_int("SAFETY_SWEEP_SECONDS", 60)
# How old a save or a notice must be before the sweep re-sends it: younger ones are left to their own task.
SAFETY_SWEEP_GRACE_SECONDS = env_int("SAFETY_SWEEP_GRACE_SECONDS", 30)
CELERY_BEAT_SCHEDULE = {
    "safety-sweep": {"task": "safety.tasks.safety_sweep_task", "schedule": float(SAFETY_SWEEP_SECONDS)},
    "audit-anchor": {"task": "trial.tasks.audit_anchor_task", "schedule": float(env_int("AUDIT_ANCHOR_SECONDS", 60))},
    "audit-verify": {"task": "trial.tasks.audit_verify_task", "schedule": float(env_int("AUDIT_VERIFY_SECONDS", 3600))},
    # The site tallies' deltas folded into one row per site and kind (trial/tallies.py).
    "tallies-compact": {
        "task": "trial.tasks.tallies_compact_task",
        "schedule": float(env_int("TALLIES_COMPACT_SECONDS", 300)),
    },
}
# Beat reads its schedule from the database (django-celery-beat), so a data manager can change the report schedules
# (`manage.py install_report_schedules` installs them); the sweep above is copied there when beat starts.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# Expedited SAE notices go to the site's investigators and monitors and to the sponsor's safety contact.
SAFETY_CONTACT_EMAIL = os.environ.get("SAFETY_CONTACT_EMAIL", "drug-safety@alliancells.example")
# Links in emails point here.
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000")

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "edc@localhost")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("Set EMAIL_USE_TLS (STARTTLS, port 587) or EMAIL_USE_SSL (port 465), not both.")
# A mail server that does not answer fails the send (the task retries) instead of holding a worker forever.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30)
# For django.core.mail.backends.filebased.EmailBackend (a file per message): the folder, given with the backend.
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH") or None

# Sessions live in the database (so logging out ends them everywhere) and are read through the cache, so a
# request spends no query on its session. Redis is the cache when configured, else this process's memory.
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_IDLE_SECONDS = int(os.environ.get("SESSION_IDLE_MINUTES", "30")) * 60
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True

# Transport security: on by default in production (DEBUG off), off for `make run` and the tests over http. Behind
# a proxy that ends TLS, set SECURE_PROXY_SSL_HEADER=1 so that its X-Forwarded-Proto says the request was https
# (only if the proxy sets that header itself, overwriting the client's).
SECURE_BY_DEFAULT = not DEBUG and not TESTING
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", SECURE_BY_DEFAULT)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", SECURE_BY_DEFAULT)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if SECURE_BY_DEFAULT else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
# The preload flag only allows the domain to be submitted to the browsers' preload list; nothing happens until it is.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", SECURE_BY_DEFAULT)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# /healthz answers the container's health check over plain http inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^healthz/live$"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CSRF_FAILURE_VIEW = "config.errors.csrf_failure"
# Content-Security-Policy (django-csp): scripts only from this server's files, never inline (no inline <script>,
# no on...= handlers; tests/test_security.py reads every template). Inline style attributes remain (progress bars'
# widths, htmx's indicator style), which cannot run code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}


# The audit trail's HMAC keyring (21 CFR Part 11): keys live outside the database, so even its superuser cannot
# rewrite the chain unseen. Each key is "id:secret" (secret of 32 characters or more), given in AUDIT_HMAC_KEYS
# (comma-separated) and/or AUDIT_HMAC_KEY_FILE (one per line); new records use AUDIT_HMAC_KEY_ID (default: the last
# key listed). Old keys stay in the ring so that records written under them still verify after a rotation.
def _audit_keyring() -> dict[str, bytes]:
    lines = env_list("AUDIT_HMAC_KEYS", "")
    key_file = os.environ.get("AUDIT_HMAC_KEY_FILE", "")
    if key_file:
        try:
            lines += [line.strip() for line in Path(key_file).read_text().splitlines() if line.strip()]
        except OSError as exc:
            raise ImproperlyConfigured(f"AUDIT_HMAC_KEY_FILE cannot be read: {exc}") from None
    keyring = {}
    for line in lines:
        key_id, _colon, secret = line.partition(":")
        if not key_id.strip() or len(secret.strip()) < 32 or len(key_id.strip()) > 32:
            raise ImproperlyConfigured(
                "Each audit HMAC key is 'id:secret', an id of at most 32 characters and a secret of at least 32"
            )
        keyring[key_id.strip()] = secret.strip().encode()
    return keyring


AUDIT_HMAC_KEYRING = _audit_keyring()
AUDIT_HMAC_KEY_ID = os.environ.get("AUDIT_HMAC_KEY_ID", "") or next(reversed(AUDIT_HMAC_KEYRING), "")
if not AUDIT_HMAC_KEYRING:
    if not (DEBUG or TESTING):
        raise ImproperlyConfigured("AUDIT_HMAC_KEYS or AUDIT_HMAC_KEY_FILE must be set when DEBUG is off")
    # Never valid outside DEBUG and the tests: `make run` generates a real development key instead.
    AUDIT_HMAC_KEY_ID = "insecure-test" if TESTING else "insecure-dev"
    AUDIT_HMAC_KEYRING = {AUDIT_HMAC_KEY_ID: b"insecure-audit-key-for-tests-and-development-only"}
if AUDIT_HMAC_KEY_ID not in AUDIT_HMAC_KEYRING:
    raise ImproperlyConfigured(f"AUDIT_HMAC_KEY_ID {AUDIT_HMAC_KEY_ID!r} is not in the audit keyring")
# The append-only anchor log: the chain's signed head, written outside the database every minute (beat) and by
# each successful verify_audit. Share it between web, worker and beat; ship it off the machine (README).
AUDIT_ANCHOR_DIR = Path(os.environ.get("AUDIT_ANCHOR_DIR", BASE_DIR / "var" / "audit-anchors"))
AUDIT_ANCHOR_SECONDS = env_int("AUDIT_ANCHOR_SECONDS", 60)
AUDIT_VERIFY_SECONDS = env_int("AUDIT_VERIFY_SECONDS", 3600)

# Prometheus scrapes /metrics with `Authorization: Bearer <METRICS_TOKEN>`; without a token the address is a 404.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")

# Demo accounts share one password; seed_demo refuses to create them outside DEBUG unless forced.
DEMO_PASSWORD = "demo-password"

# With LOG_FILE set (`make run` sets it), everything goes to that file and the terminal shows only warnings and the
# development server's request lines, so the set-up's summary is not buried under every demo task's log.
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOG_FILE = os.environ.get("LOG_FILE", "")
if LOG_FILE:
    Path(LOG_FILE).parent.mkdir(parents=True, exist_ok=True)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {
        "console": {"class": "logging.StreamHandler", "level": "WARNING" if LOG_FILE else LOG_LEVEL},
        **({"file": {"class": "logging.FileHandler", "filename": LOG_FILE}} if LOG_FILE else {}),
    },
    "loggers": {
        # Kombu's in-memory transport has no host; it says so once per connection.
        "kombu.connection": {"level": "ERROR"},
        **({"django.server": {"handlers": ["console"], "level": "INFO", "propagate": False}} if LOG_FILE else {}),
    },
    "root": {"handlers": ["console", "file"] if LOG_FILE else ["console"], "level": LOG_LEVEL},
}
