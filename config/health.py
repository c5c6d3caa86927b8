"""GET /healthz: can the app reach its database, its broker, and do workers answer. GET /healthz/live: is this web
process serving and does its database answer (the container's liveness check: it does not wait for the workers'
ping, which takes up to half a second, nor depend on them, since a stopped worker is no reason to restart the web
process; the load benchmark's baseline request too).

No login, so it reveals no secrets: a failed check reports the exception's class only (the details, which may
name hosts and users, go to the log). "audit" says when the audit chain was last verified and whether it was
intact. The answer is 503 only when the database is down, since without a broker
the app still serves pages and runs its tasks in-process.
"""

import logging

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from redis.backoff import NoBackoff
from redis.retry import Retry

from config.celery import app as celery_app
from trial.anchors import audit_status

logger = logging.getLogger(__name__)

BROKER_TIMEOUT_SECONDS = 1.0
WORKER_PING_SECONDS = 0.5
NO_BROKER = "not configured (tasks run in-process)"


def _error(check: str, exc: Exception) -> str:
    logger.warning("healthz: %s check failed", check, exc_info=exc)
    return f"error: {type(exc).__name__}"


def database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # whatever fails is a status to report, never a 500
        return _error("database", exc)
    return "ok"


def broker_status() -> str:
    if not settings.REDIS_URL:
        return NO_BROKER
    try:
        # One attempt: a health check must answer within about a second, not back off and retry.
        with redis.Redis.from_url(
            settings.REDIS_URL,
            socket_timeout=BROKER_TIMEOUT_SECONDS,
            socket_connect_timeout=BROKER_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
        ) as client:
            client.ping()
    except Exception as exc:
        return _error("broker", exc)
    return "ok"


def workers_status(broker: str) -> int | str:
    """How many Celery workers answer a ping, or why they were not asked."""
    if broker == NO_BROKER:
        return "in-process (no broker)"
    if broker != "ok":
        return "unknown (broker unreachable)"
    try:
        # On the broker the app sends its tasks to (REDIS_URL): kombu broadcasts the ping through the app's own
        # producer pool whatever connection is given, so a connection to another URL would only miss the replies.
        return len(celery_app.control.ping(timeout=WORKER_PING_SECONDS) or [])
    except Exception as exc:
        return _error("workers", exc)


@never_cache
@require_GET
def live(request: HttpRequest) -> JsonResponse:
    database = database_status()
    return JsonResponse({"database": database}, status=200 if database == "ok" else 503)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    database = database_status()
    broker = broker_status()
    body = {"database": database, "broker": broker, "workers": workers_status(broker), "audit": audit_status()}
    return JsonResponse(body, status=200 if database == "ok" else 503)
