"""Django settings, derived from the validated :mod:`vcisc.config` and nothing else.

Start-up fails with a clear message when the configuration is invalid (``ConfigError``).
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url

from vcisc.config import load_config

CONFIG = load_config()

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = CONFIG.resolved_secret_key()
DEBUG = CONFIG.debug
ALLOWED_HOSTS = (
    [*CONFIG.allowed_hosts, "testserver"] if "pytest" in sys.modules else CONFIG.allowed_hosts
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "vcisc.audit",
    "vcisc.federation",
    "vcisc.assistance",
    "vcisc.engagements",
    "vcisc.sharing.taxii",
    "vcisc.feeds",
    "vcisc.notify",
    "vcisc.core",
    "vcisc.web",
]

MIDDLEWARE = [
    "vcisc.web.middleware.BodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "vcisc.web.middleware.SessionExpiryMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "vcisc.urls"
ASGI_APPLICATION = "vcisc.asgi.application"

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
            ]
        },
    }
]


def _databases() -> dict[str, dict[str, object]]:
    if CONFIG.database_url:
        db: dict[str, object] = dict(dj_database_url.parse(CONFIG.database_url, conn_max_age=60))
        if CONFIG.is_postgres:
            db["ENGINE"] = "django.db.backends.postgresql"
            db["CONN_HEALTH_CHECKS"] = True
            # A pool (psycopg_pool), not persistent connections: under ASGI each request runs
            # its sync code in a thread of its own, so a connection kept per thread was a new
            # connection (about 6 ms) for every request. Requests beyond the pool's size wait
            # for a connection rather than open more than the server allows.
            db["CONN_MAX_AGE"] = 0
            options = dict(db.get("OPTIONS") or {})  # type: ignore[call-overload]
            options["pool"] = {
                "min_size": 1,
                "max_size": CONFIG.database_pool_size,
                "timeout": 30,
            }
            db["OPTIONS"] = options
        return {"default": db}
    CONFIG.data_dir.mkdir(parents=True, exist_ok=True)
    return {
        "default": {
            # Django's SQLite backend, its connections reused in the process (vcisc.db.sqlite3).
            "ENGINE": "vcisc.db.sqlite3",
            "NAME": str(CONFIG.data_dir / "vcisc.sqlite3"),
            "OPTIONS": {
                # IMMEDIATE takes the write lock when a transaction starts, so two writers never
                # deadlock on a lock upgrade; WAL lets readers go on while one writes; FULL sync
                # makes an acknowledged commit survive a power cut.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": (
                    "PRAGMA journal_mode=WAL;"
                    "PRAGMA synchronous=FULL;"
                    "PRAGMA foreign_keys=ON;"
                    "PRAGMA busy_timeout=20000;"
                ),
            },
        }
    }


DATABASES = _databases()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Every request that writes runs its service in an explicit transaction.atomic(); reads need none.
ATOMIC_REQUESTS = False

AUTH_USER_MODEL = "federation.User"
# django-axes first: it counts failed passwords and locks the account (vcisc.web.signin).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = CONFIG.signin_failure_limit
AXES_COOLOFF_TIME = timedelta(minutes=CONFIG.signin_lockout_minutes)
AXES_LOCKOUT_PARAMETERS = ["username"]  # per account; per-IP limits are rate limits
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "vcisc.web.signin.locked_out"
AXES_VERBOSE = False  # its log lines would name the account; the audit trail records lockouts
# Masked in axes' log lines and in the form data it keeps of each failed attempt.
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "password", "csrfmiddlewaretoken"]
AXES_DISABLE_ACCESS_LOG = True
AXES_CLIENT_IP_CALLABLE = "vcisc.web.signin.client_ip"
AXES_USERNAME_CALLABLE = "vcisc.web.signin.account_name"
VCISC_REQUIRE_SECOND_FACTOR = CONFIG.require_second_factor
VCISC_SESSION_IDLE = timedelta(minutes=CONFIG.session_idle_minutes)
VCISC_SESSION_MAX = timedelta(hours=CONFIG.session_max_hours)
VCISC_SIGNIN_RATE_PER_IP = CONFIG.signin_rate_per_ip
VCISC_API_RATE_PER_TOKEN = CONFIG.api_rate_per_token
VCISC_MAX_BODY_BYTES = CONFIG.max_body_bytes
VCISC_TAXII_FAST_READS = CONFIG.taxii_fast_reads
# Identity providers for OIDC sign-in (vcisc.web.oidc reads this at every request).
VCISC_OIDC_PROVIDERS = tuple(CONFIG.oidc_providers)
VCISC_OIDC_CACHE_SECONDS = CONFIG.oidc_cache_seconds
# Django's own limit on form fields read into memory follows ours (ours answers 413 first:
# vcisc.web.middleware.BodyLimit in front of Django, which counts bodies without a length too).
DATA_UPLOAD_MAX_MEMORY_SIZE = CONFIG.max_body_bytes
# A body (or uploaded file) larger than this waits in a temporary file rather than in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = min(CONFIG.max_body_bytes, 2_621_440)
OTP_TOTP_ISSUER = "VCISC"
# Rate-limit counters (django-ratelimit): process memory; see VCISC_SIGNIN_RATE_PER_IP.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# The console's sign-in page; an absent or expired session is sent there with ?next=.
LOGIN_URL = "web:login"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = CONFIG.data_dir / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True

SESSION_COOKIE_SECURE = CONFIG.secure_cookies
CSRF_COOKIE_SECURE = CONFIG.secure_cookies
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = int(CONFIG.session_max_hours * 3600)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if CONFIG.tls_proxy_header:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = 365 * 24 * 3600  # sent on HTTPS responses only
    SECURE_HSTS_INCLUDE_SUBDOMAINS = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # No token, password, session key or one-time code in a log record, at any level
    # (vcisc.web.middleware; uvicorn's own loggers get theirs in vcisc.asgi).
    "filters": {
        "redact": {"()": "vcisc.web.middleware.SecretRedaction"},
        "template-lookup": {"()": "vcisc.web.middleware.TemplateLookupWithoutContext"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": CONFIG.log_level},
    "loggers": {
        # Every failed variable lookup with the whole template context in its traceback.
        "django.template": {"filters": ["template-lookup"]},
        # The PKCE verifier of every OpenID Connect sign-in, at DEBUG.
        "authlib.integrations.base_client.sync_app": {"filters": ["redact"]},
        # Each call to an identity provider, with its URL.
        "urllib3.connectionpool": {"filters": ["redact"]},
    },
}

VCISC_TOKEN_DEFAULT_DAYS = CONFIG.token_default_days
