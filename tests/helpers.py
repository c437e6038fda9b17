"""A thin client over the Flask test client that speaks the contract, plus use-case steps."""

import itertools
import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from deployments_api.models import Base, Job
from deployments_api.services.accounts import create_agent_token, create_user_token
from deployments_api.types import utcnow
from deployments_api.unit_of_work import UnitOfWork

API = "/api/v1"
_counter = itertools.count(1)

# The contract's diagram, written out by hand (not taken from the app's states.py):
# (status, trigger) -> new status. Every pair not listed here must be refused.
CONTRACT_DIAGRAM = {
    ("deploying", "deploy_succeeded"): "running",
    ("deploying", "deploy_failed"): "error",
    ("running", "stop"): "stopping",
    ("stopping", "stop_succeeded"): "stopped",
    ("stopping", "stop_failed"): "running",
    ("stopped", "run"): "starting",
    ("starting", "run_succeeded"): "running",
    ("starting", "run_failed"): "stopped",
}

# Which agent results take a deployment from `deploying` to each status.
PATH_TO_STATUS = {
    "deploying": [],
    "running": [("deploy", "completed")],
    "error": [("deploy", "failed")],
    "stopping": [("deploy", "completed"), ("stop", None)],
    "stopped": [("deploy", "completed"), ("stop", None), ("stop", "completed")],
    "starting": [("deploy", "completed"), ("stop", None), ("stop", "completed"), ("run", None)],
}


class ApiClient:
    def __init__(self, app, client):
        self.app = app
        self.client = client
        self._agent = None

    # -- accounts -------------------------------------------------------------------

    def _uow(self) -> UnitOfWork:
        return UnitOfWork(self.app.extensions["deployments_db"].session_factory())

    def user(self, email: str | None = None) -> str:
        email = email or f"user{next(_counter)}@example.com"
        return create_user_token(self._uow(), email)[1]

    def agent(self, name: str | None = None) -> str:
        return create_agent_token(self._uow(), name or f"agent-{next(_counter)}")[1]

    @property
    def default_agent(self) -> str:
        if self._agent is None:
            self._agent = self.agent("default-agent")
        return self._agent

    # -- HTTP -----------------------------------------------------------------------

    def request(self, method, path, token=None, json=None, headers=None, **kwargs):
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        # "eas" means /api/v1/eas; a path starting with "/" is taken as it is.
        url = path if path.startswith("/") else f"{API}/{path}"
        return self.client.open(url, method=method, json=json, headers=headers, **kwargs)

    def get(self, path, token=None, **kwargs):
        return self.request("GET", path, token, **kwargs)

    def post(self, path, token=None, json=None, **kwargs):
        return self.request("POST", path, token, json=json, **kwargs)

    # -- use-case steps -------------------------------------------------------------

    def create_ea(self, token, name="Scalper"):
        response = self.post("eas", token, {"name": name})
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def create_version(self, token, ea_id=None, version=None):
        ea_id = ea_id or self.create_ea(token)["id"]
        response = self.post(f"eas/{ea_id}/versions", token, {"version": version or "1.0"})
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def claim(self, agent_token=None, job_types=None):
        body = {"job_types": job_types} if job_types else {}
        return self.post("agent/jobs/claim", agent_token or self.default_agent, body)

    def claim_job(self, job_id, agent_token=None):
        """Claim and check that the job handed out is `job_id` (tests queue one at a time)."""
        response = self.claim(agent_token)
        assert response.status_code == 200, response.status_code
        claimed = response.get_json()
        assert claimed["id"] == str(job_id), "another job was pending first"
        return claimed

    def report(self, job, status="completed", agent_token=None, **fields):
        body = {"status": status, "attempt": job["attempt"], **fields}
        return self.post(f"agent/jobs/{job['id']}/result", agent_token or self.default_agent, body)

    def finish_job(self, job_id, status="completed", agent_token=None, **fields):
        job = self.claim_job(job_id, agent_token)
        response = self.report(job, status, agent_token, **fields)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def compiled_version(self, token, ea_id=None, version=None):
        created = self.create_version(token, ea_id, version)
        self.finish_job(
            created["compile_job_id"],
            output_data={"artifact_storage_path": f"artifacts/{created['id']}.ex5"},
        )
        return created

    def connection(self, token, name="ICMarkets demo"):
        response = self.post(
            "broker-connections",
            token,
            {"name": name, "server": "ICMarkets-Demo", "login": "5012345"},
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def deploy(self, token, version_id=None, connection_id=None, **fields):
        body = {
            "ea_version_id": version_id or self.compiled_version(token)["id"],
            "broker_connection_id": connection_id or self.connection(token)["id"],
            "symbol": "EURUSD",
            "timeframe": "H1",
            **fields,
        }
        return self.post("deployments", token, body)

    def drive(self, token, status, **deploy_fields) -> tuple[str, str | None]:
        """Create a deployment and drive it to `status` through agent results and run/stop
        calls. Returns its id and the id of the job it is waiting on, if any (unclaimed)."""
        response = self.deploy(token, **deploy_fields)
        assert response.status_code == 201, response.get_json()
        deployment_id, job_id = response.get_json()["deployment_id"], response.get_json()["job_id"]
        for step, outcome in PATH_TO_STATUS[status]:
            if outcome is None:
                moved = self.post(f"deployments/{deployment_id}/{step}", token)
                assert moved.status_code == 202, moved.get_json()
                job_id = moved.get_json()["job_id"]
            else:
                extra = {"error_message": f"{step} broke"} if outcome == "failed" else {}
                self.finish_job(job_id, outcome, **extra)
                job_id = None
        return deployment_id, job_id

    def deployment(self, token, status="running", **fields):
        """A deployment driven to `status`, as GET /deployments/{id} shows it."""
        deployment_id, _waiting_on = self.drive(token, status, **fields)
        shown = self.get(f"deployments/{deployment_id}", token).get_json()
        assert shown["status"] == status
        return shown

    # -- database -------------------------------------------------------------------

    def row_counts(self) -> dict[str, int]:
        engine = self.app.extensions["deployments_db"].engine
        with engine.connect() as connection:
            return {
                table.name: connection.scalar(select(func.count()).select_from(table))
                for table in Base.metadata.sorted_tables
            }


def settle(api, token, version_id, connection_id, status, **fields) -> tuple[str, dict | None]:
    """A deployment on an existing version and connection, driven to `status`.

    A job the status waits on is claimed (not reported), so it blocks no later FIFO claim.
    Returns the deployment id and that claimed job, if any.
    """
    deployment_id, waiting_on = api.drive(
        token, status, version_id=version_id, connection_id=connection_id, **fields
    )
    return deployment_id, api.claim_job(waiting_on) if waiting_on else None


def assert_error(response, status: int, detail: str) -> dict:
    """The contract's error shape: `status`, JSON, and the stable `detail` code."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    body = response.get_json()
    assert body["detail"] == detail
    return body


ARTIFACT = {"artifact_storage_path": "artifacts/scalper-1.0.ex5"}


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def compile_jobs(api, user, count) -> list[dict]:
    """`count` new versions of one EA, each with its pending compile job, oldest first."""
    ea_id = api.create_ea(user)["id"]
    return [api.create_version(user, ea_id, f"1.{n}") for n in range(count)]


def heartbeat(api, job, agent=None, attempt=None):
    body = {"attempt": job["attempt"] if attempt is None else attempt}
    return api.post(f"agent/jobs/{job['id']}/heartbeat", agent or api.default_agent, body)


def row(engine, model, row_id) -> dict:
    """A row as the database holds it, for before/after comparisons."""
    with engine.connect() as connection:
        query = select(model.__table__).where(model.id == uuid.UUID(str(row_id)))
        return dict(connection.execute(query).mappings().one())


def set_job(engine, job_id, **values) -> None:
    """Rewrite a job's columns directly (to age it, or to build a situation)."""
    with engine.begin() as connection:
        connection.execute(update(Job).where(Job.id == uuid.UUID(str(job_id))).values(**values))


def expire_lease(engine, job_id) -> None:
    """Let a job's lease pass without waiting for it."""
    set_job(engine, job_id, lease_expires_at=utcnow() - timedelta(seconds=1))


def new_id() -> str:
    return str(uuid.uuid4())
