"""GET /healthz: the database, the broker and the workers, without a login and without secrets."""

import time

import pytest
import redis
from django.db import OperationalError, connection
from django.test import Client, override_settings

from tests.conftest import missing
from tests.safety.worker import (
    broker_empty,
    claimed_redis_database,
    publishing_to,
    redis_url_or_missing,
    running_worker,
    wait_for,
)

pytestmark = pytest.mark.django_db

REAL_REDIS = "redis://127.0.0.1:6379/0"
CLOSED_PORT = "redis://127.0.0.1:1/0"


def healthz() -> tuple[int, dict]:
    response = Client().get("/healthz")
    return response.status_code, response.json()


@override_settings(REDIS_URL="")
def test_without_broker_reports_in_process_tasks():
    status, body = healthz()
    assert status == 200
    assert body == {
        "database": "ok",
        "broker": "not configured (tasks run in-process)",
        "workers": "in-process (no broker)",
        "audit": {"last_verified": None, "intact": None},
    }


def test_with_real_redis_reports_broker_ok():
    try:
        redis.Redis.from_url(REAL_REDIS, socket_connect_timeout=1).ping()
    except redis.RedisError:
        missing(f"Redis is not running at {REAL_REDIS}")
    with override_settings(REDIS_URL=REAL_REDIS):
        status, body = healthz()
    assert status == 200
    assert body["database"] == "ok"
    assert body["broker"] == "ok"
    assert isinstance(body["workers"], int)


def test_counts_a_real_worker_that_answers(tmp_path):
    with claimed_redis_database(redis_url_or_missing()) as broker, publishing_to(broker):
        broker_empty(broker)
        with running_worker(broker, tmp_path) as worker, override_settings(REDIS_URL=broker):
            status, body = wait_for(
                lambda: (answer := healthz())[1]["workers"] == 1 and answer, "/healthz to count it", log=worker.log_tail
            )
    assert status == 200
    assert body == {
        "database": "ok",
        "broker": "ok",
        "workers": 1,
        "audit": {"last_verified": None, "intact": None},
    }


@override_settings(REDIS_URL=CLOSED_PORT)
def test_unreachable_broker_is_an_error_but_still_200():
    started = time.monotonic()
    status, body = healthz()
    assert time.monotonic() - started < 3
    assert status == 200
    assert body["database"] == "ok"
    assert body["broker"].startswith("error: ")
    assert body["workers"] == "unknown (broker unreachable)"


@override_settings(REDIS_URL="redis://:s3cret-passw0rd@127.0.0.1:1/0")
def test_broker_error_reveals_no_credentials():
    response = Client().get("/healthz")
    assert response.json()["broker"].startswith("error: ")
    assert b"s3cret-passw0rd" not in response.content
    assert b"127.0.0.1" not in response.content


@override_settings(REDIS_URL="")
def test_database_down_is_503(monkeypatch):
    def refuse(*args: object, **kwargs: object) -> None:
        raise OperationalError('connection to server at "db" failed: password authentication failed')

    with monkeypatch.context() as patch:
        patch.setattr(connection, "cursor", refuse)
        status, body = healthz()
    assert status == 503
    assert body["database"] == "error: OperationalError"
    assert "password" not in body["database"]
    assert body["broker"] == "not configured (tasks run in-process)"


def test_needs_no_login_and_only_answers_get():
    client = Client()
    assert client.get("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405


def test_live_answers_from_the_database_alone_without_a_login(client, django_assert_num_queries):
    with django_assert_num_queries(1):
        response = client.get("/healthz/live")
    assert response.status_code == 200
    assert response.json() == {"database": "ok"}
    assert "no-cache" in response["Cache-Control"]
    assert client.post("/healthz/live").status_code == 405
