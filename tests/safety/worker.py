"""A real Celery worker for the tests: a subprocess on Redis and on the test database, as in production.

The suite runs tasks in-process (settings.CELERY_TASK_ALWAYS_EAGER under pytest); these helpers are for the
tests that prove what only a real worker shows: tasks go through the broker after the commit, survive a killed
process and a stopped broker, and run exactly once in effect. Helpers, not fixtures, so that any test module can
use them as context managers.
"""

from __future__ import annotations

import contextlib
import email
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import redis
from django.conf import settings
from django.db import connection
from kombu import pools

from config.celery import app
from tests.conftest import missing

PROJECT = Path(__file__).resolve().parents[2]
REDIS_SERVER = "/usr/bin/redis-server"
QUEUE = "celery"  # the default queue: every task of the app goes there
UNACKED = "unacked"  # kombu's hash of delivered, not yet acknowledged messages (acks_late: until the task ends)
UNACKED_INDEX = "unacked_index"  # the same messages by time of delivery
CLAIM_KEY = "edc-tests:claimed-by"
CLAIM_SECONDS = 3600
WORKER_APPLICATION_NAME = "edc-test-worker"  # how the worker's database sessions show in pg_stat_activity
EMAIL_SEPARATOR = b"\n" + b"-" * 79 + b"\n"  # what Django's file backend writes after each message
# Shared CI machines are slow: waits are generous, and nothing asserts how long a step took.
DEADLINE_SECONDS = 90.0

T = TypeVar("T")


def wait_for(condition: Callable[[], T], what: str, timeout: float = DEADLINE_SECONDS, log: Callable = str) -> T:
    """Poll until `condition()` is truthy and return it; fail naming `what` (and the worker's log) at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Gave up after {timeout:.0f} s waiting for {what}.\n{log()}")
        time.sleep(0.2)


# --- Redis ----------------------------------------------------------------------------------------------------


def redis_url_or_missing() -> str:
    """The machine's Redis (REDIS_URL), or a skip (a failure under CI) when it is not configured or down."""
    url = os.environ.get("REDIS_URL", "")
    if not url.startswith("redis://"):
        missing("Redis is not configured (set REDIS_URL=redis://...)")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError:
        missing(f"Redis does not answer at {urlsplit(url).hostname}:{urlsplit(url).port or 6379}")
    return url


def with_database(url: str, number: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{number}", parts.query, ""))


@contextlib.contextmanager
def claimed_redis_database(base_url: str) -> Iterator[str]:
    """A database number (15 down to 1) of the machine's Redis that no other test session uses meanwhile.

    Test sessions may run side by side on one machine: two workers on one queue would take each other's tasks,
    and run them against the wrong test database.
    """
    token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
    for number in range(15, 0, -1):
        client = redis.Redis.from_url(with_database(base_url, number))
        _release_if_abandoned(client)
        if client.set(CLAIM_KEY, token, nx=True, ex=CLAIM_SECONDS):
            try:
                yield with_database(base_url, number)
            finally:
                _release(client, token)
                client.close()
            return
    missing("every Redis database from 1 to 15 is claimed by another test session")


def _release(client: redis.Redis, token: str) -> None:
    """Delete the claim if it is still `token`'s, in one step (two sessions may look at a dead one's claim)."""
    client.eval(
        "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
        1,
        CLAIM_KEY,
        token,
    )


def _release_if_abandoned(client: redis.Redis) -> None:
    """A session of this machine that died (killed at a timeout) leaves its claim: take it back."""
    token = (client.get(CLAIM_KEY) or b"").decode()
    host, _, rest = token.partition(":")
    pid = rest.partition(":")[0]
    if host == socket.gethostname() and pid.isdigit() and not Path(f"/proc/{pid}").exists():
        _release(client, token)


def broker_empty(url: str) -> None:
    """Drop every queued and unacknowledged message (a previous test's leftovers); the claim stays."""
    with redis.Redis.from_url(url) as client:
        for key in client.scan_iter(count=1000):
            if key != CLAIM_KEY.encode():
                client.delete(key)


def broker_backlog(url: str) -> int:
    """Messages waiting in the queue plus those a worker holds unacknowledged (running, or prefetched)."""
    with redis.Redis.from_url(url) as client:
        return client.llen(QUEUE) + client.hlen(UNACKED)


def unacked_since(url: str) -> list[float]:
    """When each unacknowledged message was delivered (kombu brings it back a visibility timeout later)."""
    with redis.Redis.from_url(url) as client:
        return [score for _tag, score in client.zrange(UNACKED_INDEX, 0, -1, withscores=True)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class RedisServer:
    """A redis-server of the test's own, on its own port, so that stopping it leaves the machine's Redis up."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if not shutil.which(REDIS_SERVER):
            missing(f"redis-server is not installed at {REDIS_SERVER} (apt-get install redis-server)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        command += ["--dir", str(self.workdir)]
        with open(self.workdir / "redis.log", "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self.answers, f"redis-server on port {self.port}", timeout=30)

    def answers(self) -> bool:
        try:
            with redis.Redis.from_url(self.url, socket_connect_timeout=1) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        """Stop as a crash or a restart would: without saving, so whatever was queued is lost."""
        if self.process is None:
            return
        with contextlib.suppress(redis.RedisError):
            redis.Redis.from_url(self.url, socket_connect_timeout=1).shutdown(nosave=True)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


@contextlib.contextmanager
def redis_of_its_own(workdir: Path) -> Iterator[RedisServer]:
    server = RedisServer(workdir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


# --- The test process's side ----------------------------------------------------------------------------------


def _drop_broker_connections() -> None:
    """Close the pooled broker connections; the next publish connects to the broker_url of the moment."""
    pools.reset()  # kombu's registry of pools, keyed by broker: closed and emptied
    app._pool = None  # the app's references to them, as Celery drops them after a fork
    app.amqp._producer_pool = None


@contextlib.contextmanager
def publishing_to(broker_url: str) -> Iterator[None]:
    """Make this process send its tasks to `broker_url` instead of running them in-process (as the suite does)."""
    saved = app.conf.broker_url, app.conf.task_always_eager
    _drop_broker_connections()
    app.conf.broker_url, app.conf.task_always_eager = broker_url, False
    try:
        yield
    finally:
        _drop_broker_connections()
        app.conf.broker_url, app.conf.task_always_eager = saved


def database_url_of_tests() -> str:
    """The database this test process uses (the test database), as a URL for the worker."""
    db = connection.settings_dict
    if connection.vendor != "postgresql":
        return "sqlite://"  # a test database in this process's memory: the worker can only answer pings then
    credentials = quote(db["USER"] or "", safe="") + (f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else "")
    return (
        f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{quote(db['NAME'], safe='')}"
        f"?application_name={WORKER_APPLICATION_NAME}"
    )


def sent_emails(folder: Path) -> list[Message]:
    """Every message the worker's file email backend wrote (one file per connection, messages separated)."""
    messages = []
    for path in sorted(folder.glob("*.log")):
        for chunk in path.read_bytes().split(EMAIL_SEPARATOR):
            if chunk.strip():
                messages.append(email.message_from_bytes(chunk))
    return messages


def recipients_counted(folder: Path) -> Counter:
    return Counter(address.strip() for message in sent_emails(folder) for address in message["To"].split(","))


# --- The worker -----------------------------------------------------------------------------------------------


@dataclass
class CeleryWorker:
    """`celery -A config worker` as a subprocess whose environment is built from scratch, as in a container.

    No PYTEST_VERSION, so its settings are production's (DEBUG off, tasks sent through the broker); its emails
    go to files in `workdir/mail`, where the test counts them.
    """

    broker_url: str
    database_url: str
    workdir: Path
    concurrency: int = 2
    beat: bool = False
    env: dict[str, str] = field(default_factory=dict)
    name: str = field(default_factory=lambda: f"edc-test-{uuid.uuid4().hex[:8]}@localhost")
    process: subprocess.Popen | None = None

    @property
    def mail_folder(self) -> Path:
        return self.workdir / "mail"

    @property
    def log_path(self) -> Path:
        return self.workdir / "worker.log"

    def environment(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.workdir),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(PROJECT),
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "0",
            "SECRET_KEY": f"worker-test-{uuid.uuid4().hex}",
            # The test's own audit key and anchor folder: the worker's audit records join the test's chain.
            "AUDIT_HMAC_KEYS": ",".join(f"{k}:{v.decode()}" for k, v in settings.AUDIT_HMAC_KEYRING.items()),
            "AUDIT_HMAC_KEY_ID": settings.AUDIT_HMAC_KEY_ID,
            "AUDIT_ANCHOR_DIR": str(settings.AUDIT_ANCHOR_DIR),
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.broker_url,
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(self.mail_folder),
            "SITE_URL": "https://edc.example.org",
            **self.env,
        }

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=prefork"]
        command += [f"--concurrency={self.concurrency}", "--loglevel=INFO", "--hostname", self.name]
        command += ["--without-mingle", "--without-gossip"]  # no other workers to meet: start at once
        if self.beat:
            command += ["--beat", "--schedule", str(self.workdir / "celerybeat-schedule")]
        return command

    def start(self) -> CeleryWorker:
        if app.conf.broker_url != self.broker_url:
            raise RuntimeError("Start a worker inside publishing_to(its broker): the tests ping it through the app.")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.mail_folder.mkdir(exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=PROJECT,
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so that stop() ends the pool and beat with it
            )
        wait_for(self.answers_ping, f"worker {self.name} to answer a ping", log=self.log_tail)
        return self

    def answers_ping(self) -> bool:
        """Asked as /healthz asks, through the app's broker (kombu broadcasts on the app's own connections)."""
        if self.process.poll() is not None:
            raise AssertionError(f"The worker exited with {self.process.returncode}.\n{self.log()}")
        return bool(app.control.ping(destination=[self.name], timeout=1.0))

    def stop(self) -> None:
        """Warm shutdown (SIGTERM, as `docker stop`), then kill whatever of its process group is left."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        self.process = None

    def kill(self) -> None:
        """SIGKILL the main process and its pool at once, as when the machine or the container dies."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        wait_for(lambda: not _group_alive(self.process.pid), "the worker's processes to end", timeout=30)

    def pool_processes(self) -> list[int]:
        """The prefork pool's child processes (and beat's, with --beat): children of the main process."""
        return [pid for pid, parent, _group in _living_processes() if parent == self.process.pid]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 80) -> str:
        return "Worker log (last lines):\n" + "\n".join(self.log().splitlines()[-lines:])

    def task_lines(self, task: str, event: str) -> list[str]:
        """The log's lines of a task's `event`: ("safety.tasks.lab_grade_task", "received"), "succeeded"..."""
        return re.findall(rf"Task {re.escape(task)}\[[0-9a-f-]+\] {event}\b.*", self.log())

    def task_ids(self, task: str, event: str) -> list[str]:
        return re.findall(rf"Task {re.escape(task)}\[([0-9a-f-]+)\] {event}\b", self.log())

    def wait_idle(self) -> None:
        """Until every task sent so far has run and been acknowledged (acks_late: only when it ended).

        Looked at twice, a moment apart: the worker takes a message off the queue just before it records it
        as unacknowledged.
        """

        def idle() -> bool:
            if broker_backlog(self.broker_url):
                return False
            time.sleep(0.3)
            return broker_backlog(self.broker_url) == 0

        wait_for(idle, "the worker to run every task sent", log=self.log_tail)


def _group_alive(group: int) -> bool:
    return any(process_group == group for _pid, _parent, process_group in _living_processes())


def _living_processes() -> list[tuple[int, int, int]]:
    """(pid, parent pid, process group) of every process but zombies, whichever init reaps them (or not)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            state, parent, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
            if state != "Z":
                found.append((int(stat.parent.name), int(parent), int(group)))
    return sorted(found)


@contextlib.contextmanager
def running_worker(broker_url: str, workdir: Path, **options: object) -> Iterator[CeleryWorker]:
    """A started worker (it answers a ping), stopped on leaving; its log is printed, which pytest shows on failure."""
    worker = CeleryWorker(broker_url=broker_url, database_url=database_url_of_tests(), workdir=workdir, **options)
    try:
        yield worker.start()
    finally:
        worker.stop()
        print(worker.log_tail(200))
