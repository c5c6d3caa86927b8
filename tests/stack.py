"""The production stack on this machine, started as docker-compose.yml starts it, without a Docker engine.

PostgreSQL and Redis are the machine's; everything else follows the compose file, read at run time: a database of
its own with the three roles of least privilege (the superuser only creates the owner and the app role, the owner
migrates, loads the protocol and grants, web, worker and beat connect as the app role), the `environment` of each
service (interpolated as Compose does, `${NAME:-default}`), and the `command` of `web` (gunicorn), `worker` and
`beat`, with only what a container has and this machine has not changed: the address gunicorn binds, the folders
(media, anchors, static files, Prometheus), the database and Redis URLs, and plain http on localhost
(SECURE_SSL_REDIRECT, SECURE_COOKIES and SECURE_HSTS_SECONDS off, as README says for a test over http).

Standard library, psycopg, redis and PyYAML only, and no Django: both tests/browser/test_production_stack.py (pytest)
and bench/load.py (a script) use it. Every process runs in its own process group and from an environment built
from scratch (no PYTEST_VERSION, so the settings are production's); `stop()` ends every group.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, urlsplit

import psycopg
import yaml
from psycopg import sql

PROJECT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = PROJECT / "docker-compose.yml"
PROCESSES = ("web", "worker", "beat")
T = TypeVar("T")
COLLECTSTATIC_AS_THE_IMAGE = (
    "import whitenoise.compress; whitenoise.compress.brotli_installed = False; "
    "from django.core.management import execute_from_command_line; "
    "execute_from_command_line(['manage.py', 'collectstatic', '--noinput'])"
)


class StackError(RuntimeError):
    """A step of the stack failed; the message carries the step's output or the processes' logs."""


def wait_for(condition: Callable[[], T], what: str, timeout: float, log: Callable[[], str] = str) -> T:
    """Poll `condition()` until it is truthy and return it; at the deadline, fail naming `what` with `log()`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise StackError(f"Gave up after {timeout:.0f} s waiting for {what}.\n{log()}")
        time.sleep(0.25)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- docker-compose.yml -----------------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def compose_interpolate(text: str, variables: dict[str, str]) -> str:
    """Compose's interpolation: `$$` is a dollar, `${X}`, `${X:-default}`, `${X-default}`, `${X:?error}`."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg") or ""
        value = variables.get(name)
        empty = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in (":-", "-") and empty:
            return compose_interpolate(arg, variables)
        if op in (":?", "?") and empty:
            raise StackError(f"docker-compose.yml needs {name}: {arg}")
        return value or ""

    return _VARIABLE.sub(replace, text)


def compose_services() -> dict[str, dict]:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def compose_environment(service: dict, variables: dict[str, str]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):  # the list form, NAME=value
        environment = dict(item.split("=", 1) for item in environment)
    return {name: compose_interpolate(str(value), variables) for name, value in environment.items()}


def compose_command(service: dict, variables: dict[str, str]) -> list[str]:
    """The service's command as an argv; of a `sh -c "a && b && exec c"` wrapper, the program it execs (c)."""
    command = service["command"]
    argv = shlex.split(command) if isinstance(command, str) else [str(part) for part in command]
    if argv[:2] == ["sh", "-c"]:
        last = argv[2].split("&&")[-1].strip()
        argv = shlex.split(last.removeprefix("exec "))
    return [compose_interpolate(part, variables) for part in argv]


def compose_steps(service: dict, variables: dict[str, str]) -> list[list[str]]:
    """A one-shot service's command as the argvs it runs in turn (`sh -c "a && b"`: a, then b)."""
    command = service["command"]
    argv = shlex.split(command) if isinstance(command, str) else [str(part) for part in command]
    scripts = argv[2].split("&&") if argv[:2] == ["sh", "-c"] else [shlex.join(argv)]
    return [[compose_interpolate(part, variables) for part in shlex.split(script)] for script in scripts]


def with_option(argv: list[str], option: str, value: str) -> list[str]:
    """`argv` with `option` (`--name`, in either `--name value` or `--name=value` form) set to `value`."""
    result, index, found = [], 0, False
    while index < len(argv):
        part = argv[index]
        if part == option:
            result += [option, value]
            index += 2
            found = True
            continue
        if part.startswith(option + "="):
            result.append(f"{option}={value}")
            found = True
        else:
            result.append(part)
        index += 1
    return result if found else [*result, option, value]


def python_program(argv: list[str]) -> list[str]:
    """Run the command's program with this interpreter (gunicorn, celery: their modules; python: itself)."""
    program = argv[0]
    if program in {"python", "python3"}:
        return [sys.executable, *argv[1:]]
    return [sys.executable, "-m", program, *argv[1:]]


# --- The stack --------------------------------------------------------------------------------------------------


@dataclass
class ProductionStack:
    """One database, its roles, and web, worker and beat as docker-compose.yml runs them, on this machine.

    `admin_url`: a PostgreSQL URL of a role that may create databases and roles (the compose file's `postgres`).
    `web_workers` and `worker_concurrency`: None keeps the compose file's numbers.
    """

    admin_url: str
    database: str
    redis_url: str
    workdir: Path
    web_workers: int | None = None
    worker_concurrency: int | None = None
    beat: bool = True
    extra_environment: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    owner_password: str = field(default_factory=lambda: secrets.token_hex(16))
    app_password: str = field(default_factory=lambda: secrets.token_hex(16))
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    state_dir: Path | None = None  # where the key, anchors and media of a kept database live; None: in workdir
    seeded: dict[str, str] = field(default_factory=dict)  # what the seed step reports (ids, names), for the caller

    # -- names and places

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def owner_role(self) -> str:
        return f"{self.database}_owner"

    @property
    def app_role(self) -> str:
        return f"{self.database}_app"

    @property
    def state(self) -> Path:
        """What lives as long as the database: the audit key, the anchor log, the media (reports' files)."""
        return self.state_dir or self.workdir

    @property
    def media_root(self) -> Path:
        return self.state / "media"

    @property
    def mail_folder(self) -> Path:
        return self.workdir / "mail"

    def log_path(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def database_url(self, as_: str) -> str:
        """The stack's database as `superuser` (admin_url's role), `owner` or `app`."""
        admin = urlsplit(self.admin_url)
        if as_ == "superuser":
            credentials = admin.netloc.rpartition("@")[0]
        else:
            role, password = (self.owner_role, self.owner_password) if as_ == "owner" else (self.app_role, "")
            password = password or self.app_password
            credentials = f"{quote(role, safe='')}:{quote(password, safe='')}"
        host = f"{admin.hostname or '127.0.0.1'}:{admin.port or 5432}"
        return f"postgres://{credentials}@{host}/{quote(self.database, safe='')}"

    def compose_variables(self) -> dict[str, str]:
        """What the compose file is interpolated with: this machine's answers to its `${...}`."""
        variables = {
            "SECRET_KEY": f"stack-{secrets.token_hex(24)}",
            "DB_APP_PASSWORD": self.app_password,
            "DB_OWNER_PASSWORD": self.owner_password,
            "POSTGRES_PASSWORD": "unused-the-admin-url-says",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CSRF_TRUSTED_ORIGINS": self.base_url,
            "SITE_URL": self.base_url,
            # Plain http on localhost (README, Configuration): no redirect to https, cookies over http, no HSTS.
            "SECURE_SSL_REDIRECT": "0",
            "SECURE_COOKIES": "0",
            "SECURE_HSTS_SECONDS": "0",
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        }
        if self.worker_concurrency is not None:
            variables["WORKER_CONCURRENCY"] = str(self.worker_concurrency)
        return variables

    def environment(self, service: str, variables: dict[str, str]) -> dict[str, str]:
        """The service's compose environment, with the container's paths and hosts replaced by this machine's."""
        environment = compose_environment(compose_services()[service], variables)
        environment.update(
            {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": str(self.workdir),
                "LANG": "C.UTF-8",
                "PYTHONPATH": str(PROJECT),
                "PYTHONUNBUFFERED": "1",
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "DATABASE_URL": self.database_url("app"),
                # setup_database_roles's names for the two roles (this stack's own, beside other databases' roles)
                "DB_OWNER_ROLE": self.owner_role,
                "DB_APP_ROLE": self.app_role,
                "REDIS_URL": self.redis_url,
                "MEDIA_ROOT": str(self.media_root),
                "STATIC_ROOT": str(self.workdir / "static"),
                "AUDIT_HMAC_KEY_FILE": str(self.state / "audit-hmac-key"),
                "AUDIT_ANCHOR_DIR": str(self.state / "audit-anchors"),
                "EMAIL_FILE_PATH": str(self.mail_folder),
                **self.extra_environment,
            }
        )
        if "PROMETHEUS_MULTIPROC_DIR" in environment:
            environment["PROMETHEUS_MULTIPROC_DIR"] = str(self.workdir / "prometheus")
        return environment

    # -- set-up

    def _admin(self) -> psycopg.Connection:
        admin = urlsplit(self.admin_url)
        return psycopg.connect(
            host=admin.hostname or "127.0.0.1",
            port=admin.port or 5432,
            user=admin.username or "postgres",
            password=admin.password or None,
            dbname="postgres",
            autocommit=True,
        )

    def _drop(self, connection: psycopg.Connection) -> None:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.database)))
        for role in (self.app_role, self.owner_role):
            connection.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))

    def create(self, fresh: bool = True) -> bool:
        """The compose file's `roles` and `migrate` services and the image's collectstatic: a database (a leftover of
        a killed run is dropped first), its roles, migrations, the protocol, the grants, the static files.

        `fresh=False` keeps a database that exists (a benchmark's data set), migrated and granted again; returns
        whether the database was created anew.
        """
        with self._admin() as connection:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.database]).fetchone()
            created = fresh or not exists
            if created:
                self._drop(connection)
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        if created and self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)  # an older database's key, anchors and files
        for folder in ("logs", "mail", "prometheus", "static"):
            (self.workdir / folder).mkdir(parents=True, exist_ok=True)
        for folder in ("media", "audit-anchors"):
            (self.state / folder).mkdir(parents=True, exist_ok=True)
        key = self.state / "audit-hmac-key"
        if not key.exists():  # one key for the database's life: records written under another would not verify
            key.write_text(f"stack:{secrets.token_hex(32)}\n")
            key.chmod(0o600)
        self.one_shot("roles", as_="superuser")
        self.one_shot("migrate", as_="owner")
        # The image collects the static files at build time (Dockerfile); here into the stack's own folder. The
        # image has no brotli (a dependency of the dev extras' locust only), so whitenoise writes only .gz files.
        self.run(["python", "-c", COLLECTSTATIC_AS_THE_IMAGE], as_="app")
        return created

    def destroy(self) -> None:
        with contextlib.suppress(psycopg.OperationalError), self._admin() as connection:
            self._drop(connection)
        if self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def one_shot(self, service: str, as_: str) -> None:
        """A one-shot service of the compose file (`roles`, `migrate`): each step of its command, in order."""
        for argv in compose_steps(compose_services()[service], self.compose_variables()):
            self.run(argv, as_=as_, service=service)

    def manage(self, *args: str, as_: str = "app", broker: bool = True, timeout: float = 600) -> str:
        """`python manage.py *args` in the migrate service's environment, as the given database role.

        `broker=False`: without REDIS_URL, so the command's tasks run on its own thread (seed_demo drains them).
        """
        return self.run(["python", "manage.py", *args], as_=as_, broker=broker, timeout=timeout)

    def run(
        self, argv: list[str], *, as_: str, service: str = "migrate", broker: bool = True, timeout: float = 600
    ) -> str:
        """Run a command to its end in a service's environment, connected as `as_`; its output, or StackError."""
        environment = self.environment(service, self.compose_variables())
        environment["DATABASE_URL"] = self.database_url(as_)
        if not broker:
            environment.pop("REDIS_URL")
        started = time.monotonic()
        done = subprocess.run(
            python_program(argv),
            cwd=PROJECT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        took = time.monotonic() - started
        shown = " ".join(argv)[:200]
        with open(self.log_path("manage"), "a") as log:
            log.write(f"$ {shown} ({service}, as {as_}, {took:.1f} s)\n{done.stdout}{done.stderr}\n")
        if done.returncode:
            raise StackError(f"{shown} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
        return done.stdout

    # -- the processes

    def commands(self) -> dict[str, list[str]]:
        variables = self.compose_variables()
        services = compose_services()
        web = compose_command(services["web"], variables)
        web = with_option(web, "--bind", f"127.0.0.1:{self.port}")
        if self.web_workers is not None:
            web = with_option(web, "--workers", str(self.web_workers))
        beat = with_option(compose_command(services["beat"], variables), "--pidfile", str(self.workdir / "beat.pid"))
        commands = {"web": web, "worker": compose_command(services["worker"], variables), "beat": beat}
        return {name: python_program(argv) for name, argv in commands.items() if name != "beat" or self.beat}

    def start(self) -> None:
        variables = self.compose_variables()
        for name, argv in self.commands().items():
            with open(self.log_path(name), "ab") as log:
                self.processes[name] = subprocess.Popen(
                    argv,
                    cwd=PROJECT,
                    env=self.environment(name, variables),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: stop() ends gunicorn's or the pool's children
                )

    def health(self) -> dict:
        """GET /healthz as JSON (with its status code under "status"), or {} while the server does not answer."""
        try:
            with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=5) as response:
                return {**json.load(response), "status": response.status}
        except urllib.error.HTTPError as error:
            return {**json.load(error), "status": error.code}
        except (OSError, ValueError):
            return {}

    def healthy(self) -> dict:
        """The health answer once the database and the broker are ok and a worker answers; {} before."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise StackError(f"{name} exited with {process.returncode}.\n{self.log_tail()}")
        health = self.health()
        ok = health.get("database") == "ok" and health.get("broker") == "ok"
        return health if ok and isinstance(health.get("workers"), int) and health["workers"] >= 1 else {}

    def wait_healthy(self, timeout: float = 120) -> dict:
        started = time.monotonic()
        health = wait_for(self.healthy, "/healthz to report database, broker and a worker", timeout, self.log_tail)
        with open(self.log_path("manage"), "a") as log:
            log.write(f"healthy {time.monotonic() - started:.1f} s after the start: {health}\n")
        return health

    def stop(self) -> None:
        """SIGTERM to each process group (gunicorn and Celery shut down warmly), then SIGKILL what is left."""
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        self.processes.clear()

    def log(self, name: str) -> str:
        path = self.log_path(name)
        return path.read_text(errors="replace") if path.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        parts = []
        for name in ("manage", *PROCESSES):
            text = self.log(name)
            if text:
                parts.append(f"--- {name} log (last {lines} lines) ---\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(parts)

    @contextlib.contextmanager
    def running(
        self, seed: Callable[[ProductionStack], None] | None = None, *, fresh: bool = True, keep_database: bool = False
    ) -> Iterator[ProductionStack]:
        """Created, seeded, started and healthy; on leaving, every process stopped and (unless kept) the database
        and its roles dropped."""
        try:
            self.create(fresh=fresh)
            if seed is not None:
                seed(self)
            self.start()
            self.wait_healthy()
            yield self
        finally:
            self.stop()
            if not keep_database:
                self.destroy()
