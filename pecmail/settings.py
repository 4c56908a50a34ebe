"""Settings for pecmail, driven by the environment.

Every default runs on a bare clone (SQLite, a filesystem Celery broker, files under
``var/``). Production overrides them with environment variables; see ``.env.example``.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEVELOPMENT_SECRET_KEY = "pecmail-development-key-never-use-in-production"  # noqa: S105 (public on purpose)

DATA_DIR = Path(env_str("PECMAIL_DATA_DIR", str(BASE_DIR / "var")))
DATA_DIR.mkdir(parents=True, exist_ok=True)
DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY", DEVELOPMENT_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEVELOPMENT_SECRET_KEY:
    raise ImproperlyConfigured(
        "DEBUG is off but SECRET_KEY is the development key: set SECRET_KEY in the environment."
    )
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.usersessions",
    "pecmail.accounts",
    "pecmail.certification",
    "pecmail.transport",
    "pecmail.mail",
    "pecmail.contacts",
    "pecmail.agenda",
    "pecmail.todos",
    "pecmail.search",
    "pecmail.options",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "pecmail.options.middleware.UserPreferencesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "allauth.usersessions.middleware.UserSessionsMiddleware",
]

ROOT_URLCONF = "pecmail.urls"
WSGI_APPLICATION = "pecmail.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the web, the worker and the SMTP server share one file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool(
    "DATABASE_SERVER_SIDE_BINDING", True
):
    # Parameters travel apart from the SQL, and psycopg prepares a statement once a connection
    # has run it DATABASE_PREPARE_THRESHOLD (5) times: every message runs the same few dozen
    # statements, so neither psycopg interpolates them in Python nor PostgreSQL parses and
    # plans them each time. Django turns preparing off unless asked, for the sake of poolers
    # in transaction mode (PgBouncer before 1.21): behind one, set DATABASE_PREPARE_THRESHOLD=0.
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True
    if (_prepare_threshold := env_int("DATABASE_PREPARE_THRESHOLD", 5)) > 0:
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = _prepare_threshold
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "mail:index"
LOGOUT_REDIRECT_URL = "account_login"

# allauth: e-mail login, no usernames, no public sign-up (mailboxes are created by the provider).
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_ADAPTER = "pecmail.accounts.adapter.AccountAdapter"
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_RATE_LIMITS = {
    "login_failed": env_str("PECMAIL_LOGIN_RATE", "5/5m/ip,5/5m/key"),
    "login": "30/m/ip",
    "reset_password": "5/m/ip,3/m/key",
}
ACCOUNT_SESSION_REMEMBER = None
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "pecmail"
USERSESSIONS_TRACK_ACTIVITY = True
AUTH_USER_MODEL = "accounts.User"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("it", _("Italiano"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Rome"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(DATA_DIR / "staticfiles")))
# WhiteNoise warns about a missing STATIC_ROOT before the first collectstatic.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = DATA_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# Security headers: on in every environment.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_PROXY", False) else None
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "frame-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# Uploads: the provider limit decides, Django only keeps large files out of memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# E-mail (notifications to ordinary addresses, password reset).
_email_backend = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
_smtp_options = {
    "host": env_str("EMAIL_HOST", "localhost"),
    "port": env_int("EMAIL_PORT", 25),
    "username": env_str("EMAIL_HOST_USER"),
    "password": env_str("EMAIL_HOST_PASSWORD"),
    "use_tls": env_bool("EMAIL_USE_TLS", False),
}
MAILERS = {
    "default": {
        "BACKEND": _email_backend,
        "OPTIONS": _smtp_options if _email_backend.endswith("smtp.EmailBackend") else {},
    }
}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "pecmail <no-reply@localhost>")

# Celery: Redis when REDIS_URL is set, otherwise a filesystem broker so that `make run`
# needs nothing but Python. Tests run tasks eagerly unless told otherwise.
REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_URL = REDIS_URL or "filesystem://"
if not REDIS_URL:
    _broker_dir = DATA_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# No result backend by default (tasks record their outcome in the database themselves).
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or None
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A worker keeps its database connection for this many tasks (Celery otherwise opens a new
# one per task; pecmail.celery drops a broken one at once). 0 = a new connection per task.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000) or None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")

CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    )
}

# PEC provider identity.
PEC_DOMAIN = env_str("PEC_DOMAIN", "pec.localhost").lower()
PEC_PROVIDER_NAME = env_str("PEC_PROVIDER_NAME", "pecmail sviluppo")
PEC_PKI_DIR = Path(env_str("PEC_PKI_DIR", str(DATA_DIR / "pki")))
PEC_SIGNING_KEY = Path(env_str("PEC_SIGNING_KEY", str(PEC_PKI_DIR / "provider.key")))
PEC_SIGNING_CERT = Path(env_str("PEC_SIGNING_CERT", str(PEC_PKI_DIR / "provider.pem")))
PEC_CA_CERT = Path(env_str("PEC_CA_CERT", str(PEC_PKI_DIR / "ca.pem")))
# Message size × number of recipients may not exceed this (SPEC §2.1: at least 30 MB).
PEC_MAX_TOTAL_SIZE = env_int("PEC_MAX_TOTAL_SIZE", 100 * 1024 * 1024)
PEC_MAX_RECIPIENTS = env_int("PEC_MAX_RECIPIENTS", 500)
# Static routes "domain=host:port,…" for tests and private networks; otherwise MX lookup.
PEC_ROUTES = dict(item.split("=", 1) for item in env_list("PEC_ROUTES", []))
PEC_SMTP_BIND = env_str("PEC_SMTP_BIND", "127.0.0.1:2525")
# Mailboxes that receive what comes for postmaster@ our domains (RFC 5321 §4.5.1: accepted
# always), filed as anomaly envelopes; unset, it is kept in the admin's inbound list only.
PEC_POSTMASTER = env_list("PEC_POSTMASTER", [])
# Processes of ``pec smtpd`` sharing its listening socket (0 = one per CPU, at most 4): each
# verifies and commits on its own interpreter, so ingest is not bound to one core's GIL.
PEC_SMTP_PROCESSES = env_int("PEC_SMTP_PROCESSES", 0)
# Transport (pecmail.transport): STARTTLS certificate of SMTP in (a development one is made
# under PEC_PKI_DIR when unset), virus scanner ("none", "eicar" test scanner, "clamd"), and the
# sweeps' timings in seconds (integration tests shorten them).
PEC_SMTP_TLS_CERT = env_str("PEC_SMTP_TLS_CERT")
PEC_SMTP_TLS_KEY = env_str("PEC_SMTP_TLS_KEY")
PEC_VIRUS_SCANNER = env_str("PEC_VIRUS_SCANNER", "none")
PEC_CLAMD_SOCKET = env_str("PEC_CLAMD_SOCKET")
PEC_CLAMD_ADDRESS = env_str("PEC_CLAMD_ADDRESS", "127.0.0.1:3310")
PEC_TRANSPORT_SWEEP_INTERVAL = env_int("PEC_TRANSPORT_SWEEP_INTERVAL", 30)
PEC_TRANSPORT_SWEEP_GRACE = env_int("PEC_TRANSPORT_SWEEP_GRACE", 120)
PEC_OUTBOX_RELAY_GRACE = env_int("PEC_OUTBOX_RELAY_GRACE", 30)
PEC_INBOUND_RETRY_AFTER = env_int("PEC_INBOUND_RETRY_AFTER", 300)
PEC_SMTP_CLAIM_LEASE = env_int("PEC_SMTP_CLAIM_LEASE", 600)
# SMTP out keeps a session open for the next message to the same server: at most this many
# seconds idle and this many messages per session (0 = one message per session).
PEC_SMTP_SESSION_IDLE = env_int("PEC_SMTP_SESSION_IDLE", 30)
PEC_SMTP_SESSION_MAX = env_int("PEC_SMTP_SESSION_MAX", 100)
PEC_LOG_RETENTION_DAYS = env_int("PEC_LOG_RETENTION_DAYS", 30 * 31)
PEC_DEMO_PASSWORD = env_str("PEC_DEMO_PASSWORD", "pecmail-demo-2026")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
