"""Real HTTP clients on real threads: timed answers, requests fired together, agents that
work the queue, and a drain that keeps a gunicorn's output pipe from filling up."""

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests

from deployments_api.db import Database
from deployments_api.services.accounts import create_agent_token, create_user_token
from deployments_api.unit_of_work import UnitOfWork

API = "/api/v1"
# Client-side limit on every request: an answer that takes longer counts as a hang.
REQUEST_TIMEOUT = 10


@dataclass
class Answer:
    """One request and what came back (`status` None: no answer at all)."""

    method: str
    path: str
    sent_at: datetime
    received_at: datetime
    seconds: float
    status: int | None
    body: object = None
    error: str | None = None
    headers: dict = field(default_factory=dict)

    @property
    def detail(self) -> str | None:
        return self.body.get("detail") if isinstance(self.body, dict) else None

    def describe(self) -> str:
        return f"{self.method} {self.path} -> {self.status} {self.body or self.error}"


class Http:
    """One client's keep-alive connection to one server, with one bearer token."""

    def __init__(self, base_url: str, token: str | None = None, timeout=REQUEST_TIMEOUT):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, json=None, params=None, headers=None) -> Answer:
        url = path if path.startswith("/") else f"{API}/{path}"
        sent_at, started = datetime.now(UTC), time.perf_counter()
        status = body = error = None
        response_headers = {}
        try:
            response = self.session.request(
                method,
                self.base_url + url,
                json=json,
                params=params,
                headers=headers,
                timeout=self.timeout,
            )
            status, response_headers = response.status_code, dict(response.headers)
            body = response.json() if response.content else None
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - started
        return Answer(
            method, url, sent_at, datetime.now(UTC), seconds, status, body, error, response_headers
        )

    def post(self, path: str, json=None, headers=None) -> Answer:
        return self.call("POST", path, json=json, headers=headers)

    def get(self, path: str, params=None) -> Answer:
        return self.call("GET", path, params=params)

    def close(self) -> None:
        self.session.close()


def run_together(calls: list[Callable[[], object]]) -> list:
    """Start one thread per call, release them all at once, and return their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        barrier.wait()
        results[index] = call()

    threads = [threading.Thread(target=run, args=item) for item in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def drain_output(process) -> list[str]:
    """Read a server's merged stdout/stderr in the background and keep the lines.

    An unread pipe fills after ~64 KiB of log lines and then blocks every worker that
    writes a warning, which would look exactly like the hang these tests look for.
    """
    lines: list[str] = []

    def read():
        for line in process.stdout:
            lines.append(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    return lines


def server_trouble(lines: list[str], workers: int) -> list[str]:
    """Log lines that mean a worker crashed, hung or was replaced while serving."""
    markers = ("Traceback", "WORKER TIMEOUT", "unhandled error", "Worker failed")
    trouble = [line for line in lines if any(marker in line for marker in markers)]
    booted = [line for line in lines if "Booting worker" in line]
    if len(booted) != workers:
        trouble.append(f"{len(booted)} workers booted for {workers}: one was restarted")
    return trouble


def completed_or_failed(rng: random.Random, fail_rate: float, job: dict) -> dict:
    """A plausible agent report for `job`: mostly completed, sometimes failed."""
    if rng.random() < fail_rate:
        return {"status": "failed", "error_message": f"{job['job_type']} failed on the terminal"}
    return {"status": "completed", "output_data": {"terminal": "soak", "job": job["id"]}}


class QueueWorker(threading.Thread):
    """A well-behaved agent: claims over HTTP and reports every job until stopped."""

    def __init__(self, base_url: str, token: str, *, fail_rate=0.2, seed=0, idle_pause=0.02):
        super().__init__(daemon=True)
        self.http = Http(base_url, token)
        self.rng = random.Random(seed)
        self.fail_rate = fail_rate
        self.idle_pause = idle_pause
        self.stopping = threading.Event()
        self.answers: list[Answer] = []

    def run(self) -> None:
        while not self.stopping.is_set():
            claimed = self.http.post("agent/jobs/claim", {})
            self.answers.append(claimed)
            if claimed.status != 200:
                time.sleep(self.idle_pause)
                continue
            job = claimed.body
            report = {
                **completed_or_failed(self.rng, self.fail_rate, job),
                "attempt": job["attempt"],
            }
            self.answers.append(self.http.post(f"agent/jobs/{job['id']}/result", report))

    def stop(self) -> list[Answer]:
        self.stopping.set()
        self.join(timeout=30)
        self.http.close()
        return self.answers


def create_accounts(database_url: str, agents: int) -> tuple[str, list[str]]:
    """A user token and `agents` agent tokens, written straight into `database_url`
    (accounts have no HTTP route: operators create them with the CLI)."""
    database = Database.from_url(database_url)
    try:
        user = create_user_token(UnitOfWork(database.session_factory()), "ops@example.com")[1]
        agent_tokens = [
            create_agent_token(UnitOfWork(database.session_factory()), f"agent-{i:02}")[1]
            for i in range(agents)
        ]
    finally:
        database.engine.dispose()
    return user, agent_tokens


def seed_catalog(base_url: str, user: str, agent: str, connections: int) -> tuple[str, list[str]]:
    """Over HTTP: a compiled EA version (through a real compile job) and broker connections."""
    as_user, as_agent = Http(base_url, user), Http(base_url, agent)
    ea = as_user.post("eas", {"name": "Trend rider"})
    version = as_user.post(f"eas/{ea.body['id']}/versions", {"version": "1.0"})
    job = as_agent.post("agent/jobs/claim", {"job_types": ["compile"]}).body
    compiled = as_agent.post(
        f"agent/jobs/{job['id']}/result",
        {"status": "completed", "attempt": job["attempt"],
         "output_data": {"artifact_storage_path": "artifacts/trend-rider.ex5"}},
    )  # fmt: skip
    assert compiled.status == 200, compiled.describe()
    created = [
        as_user.post("broker-connections", {"name": f"c{i}", "server": "Demo", "login": str(i)})
        for i in range(connections)
    ]
    assert [c.status for c in created] == [201] * connections, [c.describe() for c in created]
    as_user.close()
    as_agent.close()
    return version.body["id"], [c.body["id"] for c in created]
