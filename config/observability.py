"""What operators see of the running app: one structured log line per request and per task, and Prometheus
metrics (django-prometheus's request metrics, plus the SQL statements of each request, the Celery queue's length,
failed tasks, and how long ago the audit trail was last verified) at /metrics behind a token.

A log line is one JSON object: a log shipper indexes its fields as they are, and nothing in it needs parsing.
Paths are logged without their query string, which may carry search terms (a participant's initials).
"""

import datetime
import hmac
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable

import prometheus_client
import redis
from django.conf import settings
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily

request_logger = logging.getLogger("edc.request")
task_logger = logging.getLogger("edc.task")

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Redis counters the worker writes and the web process reads at scrape time (they are different processes).
TASK_FAILURES_KEY = "edc:metrics:task-failures"
TASK_RUNS_KEY = "edc:metrics:task-runs"
_SITE_ROLES_ATTR = "_trial_site_roles"  # trial.access keeps a request's memberships here once it has read them

SQL_PER_REQUEST = prometheus_client.Histogram(
    "edc_request_sql_statements",
    "SQL statements run by one HTTP request",
    buckets=(1, 2, 5, 10, 15, 20, 30, 50, 100, 200),
)
SQL_SECONDS = prometheus_client.Histogram("edc_sql_seconds", "Time of one SQL statement run by a request")
_in_process_counts = {TASK_FAILURES_KEY: 0, TASK_RUNS_KEY: 0}


class _Statements:
    """Counts and times the SQL statements of one request (a connection execute wrapper)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Callable, sql: str, params: object, many: bool, context: dict) -> object:
        self.count += 1
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            SQL_SECONDS.observe(time.perf_counter() - started)


def request_id_of(request: HttpRequest) -> str:
    """The proxy's request id when it sent a sane one, else a new one."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex


class RequestLogMiddleware:
    """One JSON log line per request: request id, user, sites, status, duration and SQL statement count."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.request_id = request_id_of(request)
        statements = _Statements()
        started = time.perf_counter()
        with connection.execute_wrapper(statements):
            response = self.get_response(request)
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        SQL_PER_REQUEST.observe(statements.count)
        response[REQUEST_ID_HEADER] = request.request_id
        request_logger.info(json.dumps(_request_fields(request, response, duration_ms, statements.count)))
        return response


def _request_fields(request: HttpRequest, response: HttpResponse, duration_ms: float, sql: int) -> dict:
    user = getattr(request, "user", None)
    authenticated = bool(user is not None and user.is_authenticated)
    # The sites are those the request itself read; none is read here, so logging costs no query.
    sites = sorted(getattr(user, _SITE_ROLES_ATTR, {}) or {}) if authenticated else []
    return {
        "event": "request",
        "request_id": request.request_id,
        "method": request.method,
        "path": request.path,
        "user": user.get_username() if authenticated else None,
        "sites": sites,
        "status": response.status_code,
        "duration_ms": duration_ms,
        "sql": sql,
    }


# --- Tasks -------------------------------------------------------------------------------------------------------


_task_started: dict[str, tuple[float, _Statements, object]] = {}


def task_started(task_id: str, task: object, **kwargs: object) -> None:
    statements = _Statements()
    wrapper = connection.execute_wrapper(statements)
    wrapper.__enter__()
    _task_started[task_id] = (time.perf_counter(), statements, wrapper)


def task_finished(task_id: str, task: object, state: str = "", **kwargs: object) -> None:
    started, statements, wrapper = _task_started.pop(task_id, (time.perf_counter(), _Statements(), None))
    if wrapper is not None:
        wrapper.__exit__(None, None, None)
    _count(TASK_RUNS_KEY)
    if state == "FAILURE":
        _count(TASK_FAILURES_KEY)
    fields = {
        "event": "task",
        "task": getattr(task, "name", str(task)),
        "task_id": task_id,
        "state": state,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        "sql": statements.count,
    }
    (task_logger.warning if state == "FAILURE" else task_logger.info)(json.dumps(fields))


def _redis() -> redis.Redis | None:
    if not settings.REDIS_URL:
        return None
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1.0, socket_connect_timeout=1.0)


def _count(key: str) -> None:
    client = _redis()
    if client is None:
        _in_process_counts[key] += 1
        return
    try:
        with client:
            client.incr(key)
    except redis.RedisError:
        task_logger.warning("metrics: the task counter %s could not be written to Redis", key)


def _counted(client: redis.Redis | None, key: str) -> float:
    if client is None:
        return float(_in_process_counts[key])
    return float(client.get(key) or 0)


# --- Metrics read at scrape time -----------------------------------------------------------------------------


class ScrapeTimeCollector:
    """Figures read when Prometheus scrapes, from where they live (Redis, the audit's verification record)."""

    def collect(self) -> object:
        client = _redis()
        try:
            queue = float(client.llen("celery")) if client is not None else 0.0
            failures = _counted(client, TASK_FAILURES_KEY)
            runs = _counted(client, TASK_RUNS_KEY)
        except redis.RedisError:
            queue = failures = runs = float("nan")
        finally:
            if client is not None:
                client.close()
        yield GaugeMetricFamily("edc_celery_queue_length", "Tasks waiting in the Celery queue", value=queue)
        yield GaugeMetricFamily("edc_celery_task_failures", "Tasks that ended in failure (all workers)", value=failures)
        yield GaugeMetricFamily("edc_celery_task_runs", "Tasks that ran to an end (all workers)", value=runs)
        age = audit_verification_age_seconds()
        yield GaugeMetricFamily(
            "edc_audit_seconds_since_verified",
            "Seconds since verify_audit last checked the audit trail (NaN: never)",
            value=float("nan") if age is None else age,
        )


def audit_verification_age_seconds() -> float | None:
    """Seconds since the audit trail was last verified, or None if it never was."""
    from trial.anchors import audit_status  # the status verify_audit writes beside its anchors

    verified = audit_status().get("last_verified")
    if not verified:
        return None
    return max(0.0, time.time() - datetime.datetime.fromisoformat(verified).timestamp())


def _registry() -> prometheus_client.CollectorRegistry:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        # gunicorn's workers are processes: each writes its metrics to the shared folder; a scrape reads them all.
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return prometheus_client.REGISTRY


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics for a scraper holding METRICS_TOKEN (`Authorization: Bearer <token>`); 404 otherwise, so
    the address reveals nothing to anybody else, and when no token is configured."""
    token = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not token or scheme != "Bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Http404
    scrape_time = prometheus_client.CollectorRegistry()
    scrape_time.register(ScrapeTimeCollector())
    body = prometheus_client.generate_latest(_registry()) + prometheus_client.generate_latest(scrape_time)
    return HttpResponse(body, content_type=prometheus_client.CONTENT_TYPE_LATEST)
