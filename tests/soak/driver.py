"""The crashed-agents soak: simulated agents work thousands of deployment jobs over HTTP.

A user deploys (two threads), then stops and runs deployments (four threads, each owning
its share of the deployments, so the user's moves never race each other) until `jobs`
jobs exist. Sixteen agents claim them; on each claim an agent may die silently (never
report), report twice, or report only after its lease has run out. Every claim, every
report and every answer is recorded so the test can prove afterwards what happened to
each job.
"""

import itertools
import os
import queue
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from deployments_api.models import Job
from deployments_api.services.jobs import QueueSettings, reap
from deployments_api.unit_of_work import UnitOfWork

from .harness import Answer, Http, completed_or_failed

FATES = ("report", "die", "double", "late")


@dataclass(frozen=True)
class SoakSettings:
    jobs: int = 2000
    agents: int = 16
    lease_seconds: int = 2
    max_attempts: int = 3
    # Per claim: how often the agent dies, reports twice, or reports after its lease.
    die_rate: float = 0.08
    double_rate: float = 0.05
    late_rate: float = 0.05
    fail_rate: float = 0.1
    broker_connections: int = 16
    creator_threads: int = 2
    mover_threads: int = 4
    idle_pause: float = 0.5
    reap_every: float = 0.5
    seed: int = 20261204

    @classmethod
    def from_env(cls) -> "SoakSettings":
        """`SOAK_JOBS=10000` turns the CI-size run into the long one."""
        return cls(jobs=int(os.environ.get("SOAK_JOBS", cls.jobs)))

    @property
    def deployments(self) -> int:
        return self.jobs // 2

    @property
    def moves(self) -> int:
        return self.jobs - self.deployments

    @property
    def deadline_seconds(self) -> float:
        return max(600.0, self.jobs * 0.3)

    def gunicorn_env(self) -> dict:
        return {
            "JOB_LEASE_SECONDS": str(self.lease_seconds),
            "JOB_MAX_ATTEMPTS": str(self.max_attempts),
        }

    def queue_settings(self) -> QueueSettings:
        return QueueSettings(self.lease_seconds, self.max_attempts, pending_timeout=600)


@dataclass
class ClaimRecord:
    """One claim an agent received, and what it then did with the job."""

    agent: str
    job_id: str
    job_type: str
    attempt: int
    lease_expires_at: datetime
    claimed_at: datetime  # server time: the lease's start
    fate: str
    report: dict
    answers: list[Answer] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        """The first report answered 200: this claim finished the job."""
        return bool(self.answers) and self.answers[0].status == 200


class SimulatedAgent(threading.Thread):
    def __init__(self, soak: "SoakRun", name: str, token: str, seed: int):
        super().__init__(name=name, daemon=True)
        self.soak = soak
        self.token = token
        self.http = Http(soak.base_url, token)
        self.rng = random.Random(seed)

    def _fate(self) -> str:
        s = self.soak.settings
        rates = (
            1 - s.die_rate - s.double_rate - s.late_rate,
            s.die_rate,
            s.double_rate,
            s.late_rate,
        )
        return self.rng.choices(FATES, weights=rates)[0]

    def _report(self, record: ClaimRecord) -> None:
        answer = self.http.post(f"agent/jobs/{record.job_id}/result", record.report)
        record.answers.append(answer)

    def _work_one(self) -> None:
        claimed = self.http.post("agent/jobs/claim", {})
        if claimed.status == 204:
            time.sleep(self.soak.settings.idle_pause)
            return
        if claimed.status != 200:
            self.soak.unexpected.append(claimed)
            time.sleep(self.soak.settings.idle_pause)
            return
        job = claimed.body
        lease_expires_at = datetime.fromisoformat(job["lease_expires_at"])
        record = ClaimRecord(
            agent=self.name,
            job_id=job["id"],
            job_type=job["job_type"],
            attempt=job["attempt"],
            lease_expires_at=lease_expires_at,
            claimed_at=lease_expires_at - timedelta(seconds=self.soak.settings.lease_seconds),
            fate=self._fate(),
            report={
                **completed_or_failed(self.rng, self.soak.settings.fail_rate, job),
                "attempt": job["attempt"],
            },
        )
        self.soak.claims.append(record)
        if record.fate == "die":
            return  # a crashed agent says nothing more about the job
        if record.fate == "late":
            self.soak.late_reporter.hand_over(record, self.token)
            return
        self._report(record)
        if record.fate == "double":
            self._report(record)

    def run(self) -> None:
        while not self.soak.finished.is_set():
            self._work_one()
        self.http.close()


class LateReporter(threading.Thread):
    """Sends the reports of agents that were too slow, each just after its lease ran out.

    Just after, so that the lease has passed but expiry has often not been applied yet:
    the report must be refused on the clock alone.
    """

    def __init__(self, soak: "SoakRun"):
        super().__init__(name="late-reporter", daemon=True)
        self.soak = soak
        self.rng = random.Random(soak.settings.seed - 1)
        self.queue: queue.PriorityQueue = queue.PriorityQueue()
        self.clients: dict[str, Http] = {}
        self._order = itertools.count()

    def hand_over(self, record: ClaimRecord, token: str) -> None:
        due = record.lease_expires_at + timedelta(seconds=self.rng.uniform(0.001, 0.05))
        self.queue.put((due, next(self._order), record, token))

    @property
    def pending(self) -> int:
        return self.queue.unfinished_tasks

    def run(self) -> None:
        while not self.soak.finished.is_set():
            try:
                due, _, record, token = self.queue.get(timeout=0.1)
            except queue.Empty:
                continue
            time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
            client = self.clients.setdefault(token, Http(self.soak.base_url, token))
            record.answers.append(client.post(f"agent/jobs/{record.job_id}/result", record.report))
            self.queue.task_done()
        for client in self.clients.values():
            client.close()


class SoakRun:
    def __init__(
        self, base_url, engine, session_factory, user_token, agent_tokens, seed_data, settings
    ):
        self.base_url = base_url
        self.engine = engine
        self.session_factory = session_factory
        self.user_token = user_token
        self.agent_tokens = agent_tokens
        self.version_id = seed_data["version_id"]
        self.connection_ids = seed_data["connection_ids"]
        self.settings = settings
        self.claims: list[ClaimRecord] = []
        self.user_answers: list[Answer] = []
        self.unexpected: list[Answer] = []
        self.reaped = {"leases_expired": 0, "unclaimed_failed": 0}
        self.finished = threading.Event()
        self._created = itertools.count()
        self.moves_made = 0
        self._quota = threading.Lock()
        self.late_reporter = LateReporter(self)

    # -- the user ---------------------------------------------------------------------

    def _create_deployments(self) -> None:
        http = Http(self.base_url, self.user_token)
        while (n := next(self._created)) < self.settings.deployments:
            body = {
                "ea_version_id": self.version_id,
                "broker_connection_id": self.connection_ids[n % len(self.connection_ids)],
                "symbol": "EURUSD",
                "timeframe": "M15",
            }
            self.user_answers.append(http.post("deployments", body))
        http.close()

    def _reserve_move(self) -> bool:
        with self._quota:
            if self.moves_made >= self.settings.moves:
                return False
            self.moves_made += 1
            return True

    def _move_deployments(self, share: int) -> None:
        """Stop running deployments and run stopped ones until the job quota is reached.

        Each mover thread owns the deployments whose id falls in its share, so the user's
        own moves never race each other and every one of them must answer 202.
        """
        http = Http(self.base_url, self.user_token)
        while self.moves_made < self.settings.moves and not self.finished.is_set():
            moved = 0
            for status, move in (("running", "stop"), ("stopped", "run")):
                listed = http.get("deployments", params={"status": status, "page_size": 1000})
                self.user_answers.append(listed)
                for deployment in listed.body if listed.status == 200 else []:
                    if uuid.UUID(deployment["id"]).int % self.settings.mover_threads != share:
                        continue
                    if not self._reserve_move():
                        break
                    self.user_answers.append(http.post(f"deployments/{deployment['id']}/{move}"))
                    moved += 1
            if not moved:
                time.sleep(0.1)
        http.close()

    # -- the reaper (what `flask reap-jobs` from cron does) -----------------------------

    def _reap(self) -> None:
        uow = UnitOfWork(self.session_factory())
        while not self.finished.wait(self.settings.reap_every):
            counts = reap(uow, self.settings.queue_settings())
            for name in self.reaped:
                self.reaped[name] += counts[name]
        uow.session.close()

    # -- the run ----------------------------------------------------------------------

    def unfinished_jobs(self) -> int:
        with self.engine.connect() as connection:
            return connection.scalar(
                select(func.count())
                .select_from(Job)
                .where(Job.deployment_id.is_not(None), Job.status.not_in(("completed", "failed")))
            )

    def run(self) -> dict:
        started = time.monotonic()
        agents = [
            SimulatedAgent(self, f"agent-{i:02}", token, self.settings.seed + i)
            for i, token in enumerate(self.agent_tokens)
        ]
        user = [
            threading.Thread(target=self._create_deployments, daemon=True)
            for _ in range(self.settings.creator_threads)
        ]
        user += [
            threading.Thread(target=self._move_deployments, args=(share,), daemon=True)
            for share in range(self.settings.mover_threads)
        ]
        helpers = [threading.Thread(target=self._reap, daemon=True), self.late_reporter]
        for thread in (*agents, *user, *helpers):
            thread.start()
        deadline = started + self.settings.deadline_seconds
        try:
            while time.monotonic() < deadline:
                time.sleep(0.25)
                if any(t.is_alive() for t in user) or self.late_reporter.pending:
                    continue
                if self.unfinished_jobs() == 0:
                    break
            else:
                raise AssertionError(f"soak did not finish in {self.settings.deadline_seconds}s")
        finally:
            self.finished.set()
            for thread in (*agents, *user, *helpers):
                thread.join(timeout=60)
        return {"seconds": round(time.monotonic() - started, 1)}
