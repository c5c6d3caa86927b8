"""Load test of the deployed stack: simulated coordinators of the six sites against gunicorn, Celery and Redis.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/5 \\
        .venv/bin/python bench/load.py                       # 50, then 200 users, 3 minutes each
    ... bench/load.py --users 20 --duration 20               # a short check

The stack is tests/stack.py's, as docker-compose.yml runs it (gunicorn, here with 4 sync workers, DEBUG off; a
Celery worker; beat) on a benchmark database of its own (`--database`, default edc_stack_load; DATABASE_URL's role
must create databases and roles), kept between runs (`--fresh` rebuilds it): the demo plus enrolled participants
up to `--per-site` per site. The Redis database of REDIS_URL is emptied first: give it one of its own.

For each number of users, locust (bench/load_users.py) starts the users over `--ramp` seconds; each logs in (page
and token, a slow password hash each); once the last has, it measures for `--duration` seconds and prints:
requests per second; outcomes by kind (5xx, connection errors and other unexpected statuses are errors; 409 stale
versions and 423 locks are expected refusals, counted apart); p50, p95 and p99 per endpoint; and p95(save) /
p95(/healthz) and p95(save) / p95(/healthz/live) (/healthz waits for the workers' ping; /healthz/live does not, so
the second is the honest one). Locust runs on this machine too: the machine's load average is printed beside the
figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.stack import PROJECT, ProductionStack  # noqa: E402

LOCUSTFILE = PROJECT / "bench" / "load_users.py"
CLAIM_KEY = "edc-tests:claimed-by"  # tests/safety/worker.py's mark of a Redis database a test session uses
DEMO_PASSWORD = "demo-password"  # settings.DEMO_PASSWORD, which seed_demo gives every demo account

# Run by `manage.py shell` in the stack's environment, as the app role: the demo once, then enrolled participants
# up to PER_SITE per site (through the services, as users would), then the plan the simulated users follow.
SEED = """
import json, random
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone
from tests.factories import enrolled
from trial.models import Participant, ParticipantStatus, Site

PER_SITE = {per_site}
LAB_VISITS = ("M0", "M3", "M6", "M9", "M12")
if not Participant.objects.exists():
    call_command("seed_demo", "--force")
rng = random.Random(1573923)
today = timezone.localdate()
plan = {{}}
for site in Site.objects.order_by("number"):
    coordinator = get_user_model().objects.get(username=f"coordinator{{site.number}}")
    enrolled_here = Participant.objects.filter(site=site, status=ParticipantStatus.ENROLLED)
    for _ in range(enrolled_here.count(), PER_SITE):
        initials = "".join(rng.choice("ZWLCYHGSXMJ") for _ in range(2))
        enrolled(coordinator, site, arm=rng.choice(["MSC", "CONV"]), days_ago=rng.randint(95, 400), initials=initials)
    participants = []
    for participant in enrolled_here.order_by("pk").prefetch_related("visits__definition"):
        visits = [
            {{"id": visit.pk, "code": visit.definition.code,
              "sample_date": max(visit.window_start, min(visit.target_date, today)).isoformat()}}
            for visit in participant.visits.all()
            if visit.definition.code in LAB_VISITS and visit.window_start <= today
        ]
        if visits:
            participants.append({{"id": participant.pk, "visits": visits}})
    plan[str(site.number)] = {{"username": coordinator.username, "participants": participants}}
print("PLAN=" + json.dumps(plan))
"""


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, nargs="+", default=[50, 200], help="simulated users, one run each")
    parser.add_argument("--duration", type=int, default=180, help="seconds measured per run, once all are logged in")
    parser.add_argument("--ramp", type=int, default=20, help="seconds over which the users start (and log in)")
    parser.add_argument("--wait", type=float, nargs=2, default=[1.0, 3.0], help="a user's pause between requests")
    parser.add_argument("--overlap", type=float, default=0.1, help="share of actions on another user's participant")
    parser.add_argument("--per-site", type=int, default=40, help="enrolled participants per site in the data set")
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn's sync workers")
    parser.add_argument("--worker-concurrency", type=int, default=2, help="the Celery worker's processes")
    parser.add_argument("--database", default="edc_stack_load", help="the benchmark database (kept between runs)")
    parser.add_argument("--fresh", action="store_true", help="drop and rebuild the benchmark database first")
    parser.add_argument("--drop", action="store_true", help="drop the benchmark database at the end")
    return parser.parse_args()


def environment_or_exit(name: str, prefix: tuple[str, ...]) -> str:
    value = os.environ.get(name, "")
    if not value.startswith(prefix):
        sys.exit(f"Set {name} ({prefix[0]}...): see the docstring.")
    return value


def load_average() -> str:
    return "/".join(f"{figure:.1f}" for figure in os.getloadavg())


def run_locust(stack: ProductionStack, plan: dict, users: int, args: argparse.Namespace, workdir: Path) -> dict:
    plan_path, results_path = workdir / f"plan-{users}.json", workdir / f"results-{users}.json"
    plan_path.write_text(json.dumps({**plan, "users": users, "duration": args.duration}))
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        stack.base_url,
        "--users",
        str(users),
        "--spawn-rate",
        str(max(1.0, users / max(1, args.ramp))),
        # A cap only: the users stop themselves `duration` seconds after the last of them logged in.
        "--run-time",
        f"{args.ramp + args.duration + 900}s",
        "--only-summary",
        "--stop-timeout",
        "10",
        "--loglevel",
        "WARNING",
    ]
    environment = {**os.environ, "EDC_LOAD_PLAN": str(plan_path), "EDC_LOAD_RESULTS": str(results_path)}
    samples = []
    with open(workdir / f"locust-{users}.log", "wb") as log:
        process = subprocess.Popen(command, cwd=PROJECT, env=environment, stdout=log, stderr=subprocess.STDOUT)
        while process.poll() is None:
            samples.append(os.getloadavg()[0])
            time.sleep(5)
    if not results_path.exists():
        sys.exit(f"locust wrote no results ({process.returncode}):\n{(workdir / f'locust-{users}.log').read_text()}")
    results = json.loads(results_path.read_text())
    results["load"] = {"mean": sum(samples) / len(samples) if samples else 0, "max": max(samples, default=0)}
    return results


def report(results: dict, stack: ProductionStack, args: argparse.Namespace) -> None:
    users, seconds = results["users"], results["seconds"]
    print(
        f"\n=== {users} users, {seconds:.0f} s measured, {args.web_workers} gunicorn workers, "
        f"{args.worker_concurrency} Celery processes; machine load (1 min) mean {results['load']['mean']:.1f}, "
        f"max {results['load']['max']:.1f} on {os.cpu_count()} cores ==="
    )
    print(f"requests: {results['requests']}, {results['rps']:.1f}/s; failures: {results['failures']}")
    outcomes = results["outcomes"]
    errors = {kind: n for kind, n in outcomes.items() if kind != "ok" and "expected" not in kind}
    expected = {kind: n for kind, n in outcomes.items() if "expected" in kind}
    print("errors by kind:", ", ".join(f"{kind} {n}" for kind, n in sorted(errors.items())) or "none")
    print("expected refusals:", ", ".join(f"{kind} {n}" for kind, n in sorted(expected.items())) or "none")
    print(f"{'endpoint':<24}{'requests':>9}{'failed':>8}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for name, entry in results["endpoints"].items():
        if name.endswith("(setup)") or name == "login page":
            continue
        print(
            f"{name:<24}{entry['requests']:>9}{entry['failures']:>8}{entry['rps']:>8.1f}"
            f"{entry['p50']:>9.0f}{entry['p95']:>9.0f}{entry['p99']:>9.0f}"
        )
    save, health = results["save"], results["endpoints"].get("/healthz", {})
    print(f"{'save (both)':<24}{save['requests']:>9}{'':>16}{save['p50']:>9.0f}{save['p95']:>9.0f}{save['p99']:>9.0f}")
    if health.get("p95"):
        print(f"p95(save) / p95(/healthz) = {save['p95']} / {health['p95']} = {save['p95'] / health['p95']:.2f}")
    # /healthz waits up to 0.5 s for the workers' ping, which flatters the ratio; /healthz/live reads only the
    # database, so it shows the server's own queueing: the honest baseline.
    live = results["endpoints"].get("/healthz/live", {})
    if live.get("p95"):
        print(f"p95(save) / p95(/healthz/live) = {save['p95']} / {live['p95']} = {save['p95'] / live['p95']:.2f}")
    for error in results["errors"][:10]:
        print(f"  {error['occurrences']:>5} x {error['name']}: {error['error']}")
    web_log = stack.log("web")
    print(
        f"server side: {web_log.count('Traceback')} tracebacks and {web_log.count('[CRITICAL] WORKER TIMEOUT')} "
        f"worker timeouts in gunicorn's log; {stack.log('worker').count('raised unexpected')} task failures"
    )


def main() -> None:
    args = arguments()
    admin_url = environment_or_exit("DATABASE_URL", ("postgres://", "postgresql://"))
    redis_url = environment_or_exit("REDIS_URL", ("redis://",))
    broker = redis.Redis.from_url(redis_url)
    if broker.exists(CLAIM_KEY):
        sys.exit(f"{redis_url} is claimed by a test session: give the benchmark a Redis database of its own.")
    broker.flushdb()  # leftovers of an earlier run would reach the new worker
    workdir = Path(tempfile.mkdtemp(prefix="edc-load-"))
    # The audit key, anchors and media live as long as the kept database (var/ is not in git); a database kept
    # without them cannot be verified again: rebuilt.
    state_dir = PROJECT / "var" / "bench" / args.database
    fresh = args.fresh or not (state_dir / "audit-hmac-key").exists()
    stack = ProductionStack(
        admin_url=admin_url,
        database=args.database,
        redis_url=redis_url,
        workdir=workdir,
        web_workers=args.web_workers,
        worker_concurrency=args.worker_concurrency,
        state_dir=state_dir,
    )
    plan: dict = {}

    def seed(stack: ProductionStack) -> None:
        started = time.monotonic()
        output = stack.manage("shell", "-c", SEED.format(per_site=args.per_site), broker=False, timeout=7200)
        sites = json.loads(output.rpartition("PLAN=")[2])
        plan.update(sites=sites, password=DEMO_PASSWORD, wait=args.wait, overlap=args.overlap)
        counted = sum(len(site["participants"]) for site in sites.values())
        print(f"data set ready in {time.monotonic() - started:.0f} s: {counted} enrolled participants with lab visits")

    print(f"stack in {workdir} (logs in {workdir / 'logs'}), database {args.database}; load {load_average()}")
    started = time.monotonic()
    with stack.running(seed=seed, fresh=fresh, keep_database=not args.drop):
        print(f"stack healthy {time.monotonic() - started:.0f} s after the start: {stack.health()}")
        for users in args.users:
            report(run_locust(stack, plan, users, args, workdir), stack, args)
            stack.wait_healthy()  # the worker's backlog is its own; the stack must still answer between runs
    print(f"\nlogs and locust's output: {workdir}")


if __name__ == "__main__":
    main()
