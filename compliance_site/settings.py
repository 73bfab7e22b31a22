"""Settings, read only from the environment (django-environ).

Defaults give a zero-setup development run: SQLite under var/ and Celery's
filesystem broker. DATABASE_URL / CELERY_BROKER_URL switch to PostgreSQL / Redis.
DEBUG is off unless DJANGO_DEBUG=1; with DEBUG off a SECRET_KEY must come from
the environment.
"""

import os
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("COMPLIANCE_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
env.smart_cast = False

# The development settings `make run` generated (DJANGO_DEBUG=1 and a random
# secret key; see compliance_site/devenv.py), so a management command typed in a
# second shell beside `make run` works with nothing exported. Only when the
# environment names no secret key: a deployment that sets its own never reads it.
DEV_ENV_FILE = VAR_DIR / "dev.env"
if "DJANGO_SECRET_KEY" not in os.environ and DEV_ENV_FILE.is_file():
    environ.Env.read_env(str(DEV_ENV_FILE))  # never overrides what the environment sets

DEBUG = env.bool("DJANGO_DEBUG", default=False)
TESTING = env.bool("COMPLIANCE_TESTING", default=False)
if DEBUG or TESTING:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="insecure-development-key-" + "x" * 40)
else:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY")

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # django.contrib.admin, with the workspace's site (dashboard, evidence page).
    "reporting.workspace.apps.WorkspaceAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "django_celery_beat",
    "axes",
    "csp",
    "accounts",
    "audit",
    "approvals",
    "surveillance",
    "reporting",
]

MIDDLEWARE = [
    "compliance_site.metrics.HotPathLatencyMiddleware",
    "compliance_site.errors.RefuseNulMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files served by the app itself in every mode (gunicorn serves none).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "compliance_site.middleware.BrowserTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it answers a locked-out login with its message.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "compliance_site.urls"
WSGI_APPLICATION = "compliance_site.wsgi.application"

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

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # BEGIN IMMEDIATE: a writer takes the database lock when its transaction
    # starts, so the read-then-append of the log head never races another writer.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 30, "init_command": "PRAGMA journal_mode=WAL;"}
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    # Off by default: a ping query before every request costs a round trip on the
    # hot path; a broken persistent connection fails one request and is replaced.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool(
        "DATABASE_CONN_HEALTH_CHECKS", default=False
    )
    # Django's own cursors bind parameters client-side and never prepare. A
    # threshold no query reaches keeps psycopg from preparing anything: the hot
    # statements (the gate's under the firm lock, planned once per connection
    # instead of at every order) are prepared by compliance_site.db's own wire,
    # which owns every prepared statement of the session.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 1_000_000_000)

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # First: refuses a login for a locked-out account or address before the
    # password is even checked (the admin form and the token endpoint alike).
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user row

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Brute force: proxies whose X-Forwarded-For is believed (addresses or CIDR
# networks); from anyone else the header is ignored. Failed logins are limited
# per account and per address on both doors (admin form, token endpoint).
COMPLIANCE_TRUSTED_PROXIES = env.list("COMPLIANCE_TRUSTED_PROXIES", default=[])
AXES_FAILURE_LIMIT = env.int("COMPLIANCE_LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("COMPLIANCE_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_CLIENT_IP_CALLABLE = "compliance_site.proxies.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "compliance_site.errors.login_locked_out"
AXES_VERBOSE = True

if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# The project's own static files: the dashboard's script and styles, and the
# vendored chart library with its licence (static/vendor/).
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Compressed copies (gzip) written by collectstatic, served with far-future
    # caching by WhiteNoise; no manifest, so a page never fails for a file that
    # collectstatic has not seen yet.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = Path(env.str("COMPLIANCE_MEDIA_ROOT", default=str(VAR_DIR / "media")))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Request bodies: a 500-event batch of signed envelopes fits well inside 5 MiB.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("COMPLIANCE_MAX_BODY_BYTES", default=5 * 1024 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["compliance_site.parsers.SafeJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "DEFAULT_SCHEMA_CLASS": "compliance_site.openapi.ComplianceAutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "compliance_site.exceptions.exception_handler",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "compliance_site.negotiation.JSONContentNegotiation",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# drf-spectacular reports, as system checks, every APIView whose response body it
# cannot infer; the endpoints are still in the schema. Those notes are about the
# docs' detail, not about deployment safety, so `check --deploy` stays meaningful.
SILENCED_SYSTEM_CHECKS = ["drf_spectacular.W001", "drf_spectacular.W002"]
# The schema and the docs: public in development, behind a login in production
# (bots with their key and people with a token or a session read them).
COMPLIANCE_API_DOCS_PUBLIC = env.bool("COMPLIANCE_API_DOCS_PUBLIC", default=DEBUG)
SPECTACULAR_SETTINGS = {
    "TITLE": "Compliance back-office API",
    "DESCRIPTION": "Pre-trade gate, signed append-only audit log, approvals, surveillance.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and Redoc from the app's own static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Choice sets named once, whichever serializer uses them.
    "ENUM_NAME_OVERRIDES": {
        "AlertStatusEnum": "surveillance.models.Alert.Status",
        # reports and evidence exports share one lifecycle
        "JobStatusEnum": "reporting.models.Report.Status",
        "VerificationStatusEnum": "audit.models.LogVerification.Status",
        # the five roles, wherever a role is named (users, the kill switch's role)
        "RoleEnum": "accounts.models.ROLE_ORDER",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "compliance_site.openapi.add_error_responses",
    ],
    "SERVE_PERMISSIONS": ["compliance_site.docs_access.DocsAccess"],
}

# Celery. Default broker: kombu's filesystem transport under var/ (no service needed).
_broker_dir = VAR_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Its exchange tables; kombu's default is ./control, wherever a process started.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith("redis"):
    # With acks_late, a task whose worker died is redelivered after this long.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 900}
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# The outbox keeps what must be sent; with the broker down, an after-commit
# wake-up must not hold the request for seconds.
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=1)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True  # a killed worker's task is redelivered, not lost
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE: dict = {
    "verify-audit-nightly": {
        "task": "audit.tasks.audit_verify_task",
        "schedule": timedelta(hours=24),
    },
    "surveillance-cycle": {
        "task": "surveillance.tasks.surveillance_cycle_task",
        "schedule": timedelta(seconds=env.int("COMPLIANCE_SURVEILLANCE_INTERVAL_SECS", default=5)),
    },
    "order-counts-prune": {
        "task": "surveillance.tasks.order_counts_prune_task",
        "schedule": timedelta(hours=1),
    },
    "audit-jobs-sweep": {
        "task": "audit.tasks.audit_jobs_sweep_task",
        "schedule": timedelta(minutes=1),
    },
    "webhook-sweep": {
        "task": "audit.webhooks.tasks.webhook_sweep_task",
        "schedule": timedelta(seconds=5),
    },
    "report-daily-trade": {
        "task": "reporting.tasks.report_daily_trade_schedule_task",
        "schedule": crontab(minute="5,35", hour="*"),
    },
    "report-quarterly": {
        "task": "reporting.tasks.report_quarterly_schedule_task",
        "schedule": crontab(minute=15, hour="*/6"),
    },
    "report-sweep": {
        "task": "reporting.tasks.report_sweep_task",
        "schedule": timedelta(minutes=1),
    },
    "retention-purge": {
        "task": "reporting.tasks.retention_purge_task",
        "schedule": crontab(minute=30, hour=2),
    },
    "approvals-email-sweep": {
        "task": "approvals.tasks.approval_notification_email_sweep_task",
        "schedule": timedelta(seconds=60),
    },
    "approvals-expire": {
        "task": "approvals.tasks.approval_expire_due_task",
        "schedule": timedelta(
            seconds=env.int("COMPLIANCE_APPROVAL_EXPIRY_INTERVAL_SECS", default=5)
        ),
    },
}

# Alert cases: hours from creation (or reopening) until an alert is due, per
# severity ("critical=4,high=24,medium=72,low=168"); the dashboard counts the overdue.
COMPLIANCE_ALERT_SLA_HOURS = {
    severity: float(hours)
    for severity, hours in env.dict(
        "COMPLIANCE_ALERT_SLA_HOURS", default={"critical": 4, "high": 24, "medium": 72, "low": 168}
    ).items()
}

# Audit log settings.
COMPLIANCE_LOG_ORIGIN = env.str("COMPLIANCE_LOG_ORIGIN", default="compliance.local/log")
# /metrics (Prometheus): callers from these addresses or networks, or with
# `Authorization: Bearer <COMPLIANCE_METRICS_TOKEN>`, may scrape; nobody else.
COMPLIANCE_METRICS_ALLOWED_IPS = env.list(
    "COMPLIANCE_METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"]
)
COMPLIANCE_METRICS_TOKEN = env.str("COMPLIANCE_METRICS_TOKEN", default="")

# Witnesses (C2SP tlog-witness): a checkpoint counts as published once this
# many registered, unrevoked witnesses have cosigned it (0: when signed).
COMPLIANCE_WITNESS_QUORUM = env.int("COMPLIANCE_WITNESS_QUORUM", default=0)
# The log public key, the latest checkpoint and consistency proofs are public
# by nature (a witness needs them); turn this off to require an account.
COMPLIANCE_PUBLIC_TRANSPARENCY = env.bool("COMPLIANCE_PUBLIC_TRANSPARENCY", default=True)
# The window an envelope's occurred_at_us must fall in (else timestamp_out_of_range):
# at most this far ahead of the server's clock...
COMPLIANCE_MAX_CLOCK_DRIFT_US = env.int("COMPLIANCE_MAX_CLOCK_DRIFT_US", default=5_000_000)
# ...and at most this far behind it (an SDK outbox replays events after an outage).
COMPLIANCE_MAX_EVENT_AGE_US = env.int(
    "COMPLIANCE_MAX_EVENT_AGE_US", default=30 * 24 * 3600 * 1_000_000
)
COMPLIANCE_TOKEN_TTL = timedelta(seconds=env.int("COMPLIANCE_TOKEN_TTL_SECS", default=8 * 3600))

# Webhooks: targets on private, loopback or link-local addresses are refused
# unless their host (or host:port) is listed here.
# Fernet keys for the secrets stored encrypted (webhook signing secrets): the
# first encrypts, all decrypt. Unset: one derived from SECRET_KEY (see
# compliance_site/fields.py); production sets its own.
COMPLIANCE_ENCRYPTION_KEYS = env.list("COMPLIANCE_ENCRYPTION_KEYS", default=[])
COMPLIANCE_WEBHOOK_ALLOWED_HOSTS = env.list("COMPLIANCE_WEBHOOK_ALLOWED_HOSTS", default=[])
COMPLIANCE_WEBHOOK_TIMEOUT_SECS = env.float("COMPLIANCE_WEBHOOK_TIMEOUT_SECS", default=10)
COMPLIANCE_WEBHOOK_DISABLE_AFTER_FAILURES = env.int(
    "COMPLIANCE_WEBHOOK_DISABLE_AFTER_FAILURES", default=20
)

# Email for approval notices: console in development, SMTP from EMAIL_URL in production.
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="compliance@localhost")

# Reports: firm identifiers printed on regulator variants, and thresholds.
COMPLIANCE_FIRM_NAME = env.str("COMPLIANCE_FIRM_NAME", default="")
COMPLIANCE_FIRM_LEI = env.str("COMPLIANCE_FIRM_LEI", default="")
COMPLIANCE_FIRM_SEC_FILE_NUMBER = env.str("COMPLIANCE_FIRM_SEC_FILE_NUMBER", default="")
COMPLIANCE_FIRM_DESIGNATED_OFFICER = env.str("COMPLIANCE_FIRM_DESIGNATED_OFFICER", default="")
COMPLIANCE_FIRM_FCA_FRN = env.str("COMPLIANCE_FIRM_FCA_FRN", default="")
COMPLIANCE_FIRM_BAFIN_ID = env.str("COMPLIANCE_FIRM_BAFIN_ID", default="")
COMPLIANCE_FIRM_COMPETENT_AUTHORITY = env.str("COMPLIANCE_FIRM_COMPETENT_AUTHORITY", default="")
COMPLIANCE_FIRM_VENUE_MIC = env.str("COMPLIANCE_FIRM_VENUE_MIC", default="")
REPORTING_RTS25_TOLERANCE_US = env.int("REPORTING_RTS25_TOLERANCE_US", default=1000)  # 100 for HFT
REPORTING_DAILY_FORMATS = env.list("REPORTING_DAILY_FORMATS", default=["json", "csv", "pdf"])
REPORTING_QUARTERLY_FORMATS = env.list(
    "REPORTING_QUARTERLY_FORMATS", default=["json", "csv", "pdf"]
)
REPORTING_PDF_MAX_ROWS = env.int("REPORTING_PDF_MAX_ROWS", default=500)
# Emailed reports: the file is attached up to this size, above it (or with 0)
# the email carries a link that needs a login, under COMPLIANCE_BASE_URL.
REPORTING_EMAIL_ATTACH_MAX_BYTES = env.int(
    "REPORTING_EMAIL_ATTACH_MAX_BYTES", default=5 * 1024 * 1024
)
REPORTING_EMAIL_MAX_ATTEMPTS = env.int("REPORTING_EMAIL_MAX_ATTEMPTS", default=5)
COMPLIANCE_BASE_URL = env.str("COMPLIANCE_BASE_URL", default="http://127.0.0.1:8000")
# Report anomalies that raise a critical alert in the queue, from these kinds.
REPORTING_ALERT_KINDS = env.list(
    "REPORTING_ALERT_KINDS", default=["daily_trade", "full_compliance"]
)
REPORTING_ALERT_ANOMALIES = env.list(
    "REPORTING_ALERT_ANOMALIES",
    default=["cancel_ratio", "error_rate", "gap_in_trading_hours", "clock_drift"],
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}


# Content-Security-Policy (django-csp): scripts only from this origin (the admin
# has no inline script; the docs load their init script from a URL, see
# urls.py); inline styles allowed, which the admin's widgets and Swagger UI
# set; images also as data: URIs (Swagger UI's icons). Swagger UI's assets come
# from its CDN unless SWAGGER_UI_DIST is "SIDECAR" (served from here).
def _origin(url: str) -> list[str]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return [f"{parts.scheme}://{parts.netloc}"] if parts.scheme and parts.netloc else []


_DOCS_ASSETS = _origin(
    str(
        SPECTACULAR_SETTINGS.get(
            "SWAGGER_UI_DIST", "https://cdn.jsdelivr.net/npm/swagger-ui-dist@latest"
        )
    )
)
CONTENT_SECURITY_POLICY = {
    # The bots' two hot paths answer JSON only (nosniff is set): no policy to
    # build there for every order and batch.
    "EXCLUDE_URL_PREFIXES": ["/api/v1/orders/", "/api/v1/events/"],
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", *_DOCS_ASSETS],
        "style-src": ["'self'", "'unsafe-inline'", *_DOCS_ASSETS],
        "img-src": ["'self'", "data:", *_DOCS_ASSETS],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# Production hardening; `check --deploy` is clean when DEBUG is off.
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not TESTING)
    SESSION_COOKIE_SECURE = not TESTING
    CSRF_COOKIE_SECURE = not TESTING
    SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# The log's own Ed25519 signing key (for checkpoints). Never in the database and
# separate from every bot key: COMPLIANCE_LOG_PRIVATE_KEY (base64 of the raw
# 32-byte seed) wins over the PEM file COMPLIANCE_LOG_KEY_FILE, which
# `manage.py ensure_log_key` (run by `make run`) creates with mode 0600.
COMPLIANCE_LOG_KEY_FILE = env.str(
    "COMPLIANCE_LOG_KEY_FILE", default=str(VAR_DIR / "log-signing-key.pem")
)
COMPLIANCE_LOG_KEY_NAME = env.str("COMPLIANCE_LOG_KEY_NAME", default=COMPLIANCE_LOG_ORIGIN)
COMPLIANCE_CHECKPOINT_HEARTBEAT_SECS = env.int("COMPLIANCE_CHECKPOINT_HEARTBEAT_SECS", default=3600)
CELERY_BEAT_SCHEDULE["checkpoint"] = {
    "task": "audit.tasks.checkpoint_create_task",
    "schedule": timedelta(seconds=env.int("COMPLIANCE_CHECKPOINT_INTERVAL_SECS", default=10)),
}
