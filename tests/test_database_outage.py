"""Database outage: the database dies under load and comes back; the service rides it out.

The test runs its own throwaway PostgreSQL (initdb + pg_ctl from this machine's server
binaries, in a temp folder, on a free port) so it can kill and restart it without
touching anybody else's database. gunicorn serves the app against it while clients
create deployments, run and stop them, agents work jobs and a probe polls /readyz.

What must hold: during the outage every request gets `503 database_unavailable` within
5 s; after it the service answers again within 5 s with no restart; no write that was
acknowledged with a 2xx is lost; nothing is ever half-applied.
"""

import glob
import os
import random
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import select

from deployments_api.db import Database
from deployments_api.migrations import upgrade_to_head
from deployments_api.models import Deployment, DeploymentEvent, Job

from .servers import free_port, gunicorn_server
from .soak.harness import (
    Answer,
    Http,
    create_accounts,
    drain_output,
    seed_catalog,
    server_trouble,
)
from .soak.invariants import assert_database_consistent

pytestmark = [pytest.mark.postgres_only, pytest.mark.slow]

WORKERS = 4
PROMISE = timedelta(seconds=5)  # 503 within 5 s during the outage; service back within 5 s
LOAD_BEFORE = 3.0
OUTAGE = 4.0
LOAD_AFTER = 7.0
RETRY_PAUSE = 0.1
# A client gives up retrying one request after this long (far longer than the outage).
RETRY_DEADLINE = 60.0


def postgres_bin_dir() -> Path:
    """Where initdb and pg_ctl live: on PATH, or Debian's versioned folder (newest)."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if not candidates:
        pytest.fail("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    return Path(candidates[-1])


class ThrowawayPostgres:
    """A private PostgreSQL server in a temp folder.

    initdb and pg_ctl refuse to run as root, so as root (CI) they run as `postgres`.
    """

    def __init__(self):
        self.bin_dir = postgres_bin_dir()
        as_root = os.geteuid() == 0
        # /tmp itself, so the postgres user can reach the folder (pytest's are root-only).
        self.dir = Path(tempfile.mkdtemp(prefix="outage-pg-", dir="/tmp" if as_root else None))
        if as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        self.as_user = ["runuser", "-u", "postgres", "--"] if as_root else []
        self.data = self.dir / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        command = [*self.as_user, str(self.bin_dir / program), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.dir / "server.log"
            tail = log.read_text()[-3000:] if log.exists() else ""
            raise RuntimeError(f"{command} failed:\n{done.stdout}\n{done.stderr}\n{tail}")

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        # -l: the server must not inherit our pipes, or waiting for pg_ctl never ends.
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.dir / "server.log"),
                  "-w", "-t", "60", "start")  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with suppress(RuntimeError):
                self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def throwaway_postgres():
    server = ThrowawayPostgres()
    try:
        server.init()
        server.start()
        upgrade_to_head(server.url)
        yield server
    finally:
        server.remove()


# -- clients --------------------------------------------------------------------------


def until_answered(send, answers: list, stop_retrying: threading.Event) -> Answer:
    """Send, and while the answer is a 5xx or none at all, send the same request again."""
    deadline = time.monotonic() + RETRY_DEADLINE
    while True:
        answer = send()
        answers.append(answer)
        if answer.status is not None and answer.status < 500:
            return answer
        if time.monotonic() > deadline or stop_retrying.is_set():
            return answer
        time.sleep(RETRY_PAUSE)


class Load:
    """Users creating, running and stopping deployments; agents working jobs; a probe."""

    def __init__(self, base_url, user, agents, version_id, connection_ids):
        self.base_url = base_url
        self.user = user
        self.agents = agents
        self.version_id = version_id
        self.connection_ids = connection_ids
        self.answers: list[Answer] = []
        self.acked_creates: list[dict] = []
        self.acked_moves: list[dict] = []
        self.acked_reports: list[tuple[str, dict]] = []
        self.create_keys: dict[str, Answer] = {}
        self.stopping = threading.Event()
        self.abandon = threading.Event()

    def _creator(self, seed: int) -> None:
        http, rng = Http(self.base_url, self.user), random.Random(seed)
        while not self.stopping.is_set():
            key = str(uuid.uuid4())
            body = {
                "ea_version_id": self.version_id,
                "broker_connection_id": rng.choice(self.connection_ids),
                "symbol": "XAUUSD.m",
                "timeframe": "H1",
            }
            headers = {"Idempotency-Key": key}
            send = partial(http.post, "deployments", body, headers)
            final = until_answered(send, self.answers, self.abandon)
            self.create_keys[key] = final
            if final.status == 201:
                self.acked_creates.append(final.body)

    def _mover(self, seed: int) -> None:
        http, rng = Http(self.base_url, self.user), random.Random(seed)
        while not self.stopping.is_set():
            if not self.acked_creates:
                time.sleep(RETRY_PAUSE)
                continue
            deployment_id = rng.choice(self.acked_creates)["deployment_id"]
            move = rng.choice(("run", "stop"))
            headers = {"Idempotency-Key": str(uuid.uuid4())}
            path = f"deployments/{deployment_id}/{move}"
            send = partial(http.post, path, None, headers)
            final = until_answered(send, self.answers, self.abandon)
            if final.status == 202:
                self.acked_moves.append(
                    {"deployment_id": deployment_id, "move": move, **final.body}
                )

    def _agent(self, token: str, seed: int) -> None:
        http, rng = Http(self.base_url, token), random.Random(seed)
        while not self.stopping.is_set():
            claimed = http.post("agent/jobs/claim", {})
            self.answers.append(claimed)
            if claimed.status != 200:
                time.sleep(RETRY_PAUSE)
                continue
            job = claimed.body
            report = {"status": "completed", "attempt": job["attempt"], "output_data": {"ok": 1}}
            if rng.random() < 0.2:
                report = {"status": "failed", "attempt": job["attempt"], "error_message": "boom"}
            path = f"agent/jobs/{job['id']}/result"
            send = partial(http.post, path, report)
            final = until_answered(send, self.answers, self.abandon)
            if final.status == 200:
                self.acked_reports.append((job["id"], report))

    def _probe(self) -> None:
        http = Http(self.base_url)
        while not self.stopping.is_set():
            self.answers.append(http.get("/readyz"))
            time.sleep(0.1)

    @contextmanager
    def running(self):
        threads = [
            *(threading.Thread(target=self._creator, args=(seed,)) for seed in range(2)),
            threading.Thread(target=self._mover, args=(2,)),
            *(
                threading.Thread(target=self._agent, args=(token, 3 + i))
                for i, token in enumerate(self.agents)
            ),
            threading.Thread(target=self._probe),
        ]
        for thread in threads:
            thread.start()
        try:
            yield self
        finally:
            self.stopping.set()
            for thread in threads:
                thread.join(timeout=RETRY_DEADLINE + 15)
            self.abandon.set()


# -- checks ---------------------------------------------------------------------------


def check_outage_answers(answers: list[Answer], down_at, restart_at, up_at) -> dict:
    """503 within 5 s during the outage, never a 500 or a hang, back within 5 s after."""
    assert [a.describe() for a in answers if a.status is None] == [], "a request got no answer"
    assert [a.describe() for a in answers if a.status == 500] == []
    slow = [a.describe() for a in answers if a.seconds >= PROMISE.total_seconds()]
    assert slow == [], "an answer took 5 s or more"
    unavailable = [a for a in answers if a.status == 503]
    assert {a.detail for a in unavailable} <= {"database_unavailable"}
    during = [a for a in answers if a.sent_at >= down_at and a.received_at <= restart_at]
    assert len(during) >= 20, "too few requests fell inside the outage to prove anything"
    assert [a.describe() for a in during if a.status != 503] == []
    after = [a for a in answers if a.sent_at >= up_at]
    first_success = min(a.received_at for a in after if a.status < 500)
    assert first_success - up_at < PROMISE, f"service back only after {first_success - up_at}"
    late_failures = [a.describe() for a in after if a.status >= 500 and a.sent_at > up_at + PROMISE]
    assert late_failures == [], "503s more than 5 s after the database was back"
    return {
        "requests": len(answers),
        "answered_503": len(unavailable),
        "inside_outage": len(during),
        "slowest_503_seconds": round(max(a.seconds for a in unavailable), 3),
        "recovered_after_seconds": round((first_success - up_at).total_seconds(), 3),
    }


def check_no_acked_write_lost(engine, load: Load) -> int:
    """Every 2xx write is in the database; every create key made exactly one deployment."""
    with engine.connect() as connection:
        jobs = {str(r["id"]): r for r in connection.execute(select(Job.__table__)).mappings()}
        deployments = {str(d) for d in connection.scalars(select(Deployment.id))}
        moved_jobs = {
            str(j)
            for j in connection.scalars(
                select(DeploymentEvent.job_id).where(DeploymentEvent.kind == "transition")
            )
        }
    for created in load.acked_creates:
        assert created["deployment_id"] in deployments, created
        assert jobs[created["job_id"]]["job_type"] == "deploy", created
    for moved in load.acked_moves:
        job = jobs[moved["job_id"]]
        assert (job["job_type"], str(job["deployment_id"])) == (
            moved["move"],
            moved["deployment_id"],
        )
        assert moved["job_id"] in moved_jobs, moved
    for job_id, report in load.acked_reports:
        assert jobs[job_id]["status"] == report["status"], (job_id, report)
    # Retried with the same Idempotency-Key, a create whose first try got a 503 after
    # its commit landed is replayed, never applied twice.
    assert {a.status for a in load.create_keys.values()} == {201}
    assert len(deployments) == len(load.create_keys)
    return len(load.acked_creates) + len(load.acked_moves) + len(load.acked_reports)


def test_the_service_rides_out_a_database_outage():
    with throwaway_postgres() as database:
        user, agents = create_accounts(database.url, agents=2)
        with gunicorn_server(database.url, workers=WORKERS, threads=4) as (base_url, process):
            output = drain_output(process)
            version_id, connection_ids = seed_catalog(base_url, user, agents[0], connections=3)
            load = Load(base_url, user, agents, version_id, connection_ids)
            with load.running():
                time.sleep(LOAD_BEFORE)
                database.stop("immediate")
                down_at = datetime.now(UTC)
                time.sleep(OUTAGE)
                restart_at = datetime.now(UTC)
                database.start()
                up_at = datetime.now(UTC)
                time.sleep(LOAD_AFTER)
            assert process.poll() is None, "gunicorn died"
            assert not server_trouble(output, WORKERS), "\n".join(output)

        figures = check_outage_answers(load.answers, down_at, restart_at, up_at)
        verifier = Database.from_url(database.url)
        try:
            acked = check_no_acked_write_lost(verifier.engine, load)
            consistent = assert_database_consistent(verifier.engine)
        finally:
            verifier.engine.dispose()
    replayed = sum(1 for a in load.answers if a.headers.get("Idempotent-Replayed") == "true")
    print(
        "outage figures:",
        {
            **figures,
            "outage_seconds": round((up_at - down_at).total_seconds(), 2),
            "acked_writes": acked,
            "acked_writes_lost": 0,
            "retries_replayed": replayed,
            **consistent,
        },
    )
