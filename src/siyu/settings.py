"""Siyu settings: everything configurable comes from ``SIYU_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

from siyu.core.env import env_bool, env_list, env_str, secret_key, var_dir

BASE_DIR = Path(__file__).resolve().parent
VAR_DIR = var_dir()

SECRET_KEY = secret_key()
DEBUG = env_bool("SIYU_DEBUG", False)
ALLOWED_HOSTS = env_list("SIYU_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("SIYU_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "unfold",
    "unfold.contrib.filters",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_tasks",
    "django_tasks_db",
    "siyu.core",
    "siyu.org",
    "siyu.members",
    "siyu.commerce",
    "siyu.events",
    "siyu.tags",
    "siyu.segments",
    "siyu.analytics",
    "siyu.loyalty",
    "siyu.messaging",
    "siyu.journeys",
    "siyu.integrations",
    "siyu.console",
    "siyu.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "siyu.urls"
WSGI_APPLICATION = "siyu.wsgi.application"
ASGI_APPLICATION = "siyu.asgi.application"

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
                "django.template.context_processors.i18n",
            ],
        },
    },
]


def _database() -> dict:
    url = env_str("SIYU_DATABASE_URL", "") or f"sqlite:///{VAR_DIR / 'siyu.sqlite3'}"  # empty means default
    config = dj_database_url.parse(url, conn_max_age=60)
    engine = config["ENGINE"]
    options = config.setdefault("OPTIONS", {})
    if engine.endswith("sqlite3"):
        config["CONN_MAX_AGE"] = 0
        options.setdefault(
            "init_command",
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;",
        )
        options.setdefault("transaction_mode", "IMMEDIATE")
    elif engine.endswith("postgresql"):
        # No JIT: a segment preview (estimated cost over jit_above_cost) spent 0.3-1.6 s compiling
        # a query that runs in 0.4 s; nothing the web or worker runs is long enough to gain from it.
        options.setdefault("options", "-c jit=off")
    elif engine.endswith("mysql"):
        import pymysql

        pymysql.install_as_MySQLdb()
        options.setdefault("charset", "utf8mb4")
        options.setdefault("init_command", "SET sql_mode='STRICT_TRANS_TABLES'")
        config.setdefault("TEST", {}).update({"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_bin"})
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# MySQL has no partial indexes: it indexes every row of the few that have a condition
# (``commerce.Order``'s guide and waiting-buyer indexes), which answers the same queries.
SILENCED_SYSTEM_CHECKS = ["models.W037"]

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
#: When ``siyu worker`` starts the nightly recomputes, business time (HH:MM), or "off" (cron runs
#: ``siyu nightly`` instead).
SIYU_NIGHTLY_AT = env_str("SIYU_NIGHTLY_AT", "02:00")
#: The schedulers ``siyu worker`` runs beside the task queue, each in its own thread: (dotted
#: callable, seconds between calls). A call does what is due and returns; several workers may call
#: at once, because each claims its work (a unique key or ``SKIP LOCKED``).
SIYU_WORKER_LOOPS = [
    ("siyu.core.nightly.enqueue_due_run", 60),
    ("siyu.journeys.engine.tick", 10),
    ("siyu.messaging.delivery.deliver_due", 5),
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("SIYU_TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise serves from finders until collectstatic fills it
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "/console/login/"
# API batches of up to 5,000 orders with lines and console uploads of exports exceed Django's 2.5 MB default.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(env_str("SIYU_MAX_REQUEST_MB", "32")) * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("SIYU_LOG_LEVEL", "WARNING")},
}

# Console (django-unfold)
from siyu.console.unfold_conf import UNFOLD  # noqa: E402, F401
