"""A stand-in MT5 agent for demos, the README walkthrough and benchmarks.

It speaks only the public agent API, over HTTP, with the standard library.
"""

import json
import random
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime


class SimulatedAgent:
    def __init__(self, base_url: str, token: str, *, fail_rate=0.0, delay=0.5, poll=1.0, rng=None):
        self.base_url = base_url.rstrip("/") + "/api/v1/agent"
        self.token = token
        self.fail_rate = fail_rate
        self.delay = delay
        self.poll = poll
        self.rng = rng or random.Random()

    def _post(self, path: str, body: dict) -> tuple[int, dict | None]:
        request = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            raw = error.read()
            return error.code, json.loads(raw) if raw else None

    def _outcome(self, job: dict) -> dict:
        if self.rng.random() < self.fail_rate:
            return {"status": "failed", "error_message": f"simulated {job['job_type']} failure"}
        if job["job_type"] == "compile":
            path = f"artifacts/{job['input_data']['ea_version_id']}.ex5"
            return {"status": "completed", "output_data": {"artifact_storage_path": path}}
        return {
            "status": "completed",
            "output_data": {"terminal": "simulated-mt5", "message": f"{job['job_type']} done"},
        }

    def _report_trades(self, job: dict) -> None:
        deployment_id = job["input_data"]["deployment_id"]
        trades = [
            {
                "ticket": self.rng.randint(1, 2**62),
                "symbol": job["input_data"]["symbol"],
                "volume": 0.1,
                "profit": round(self.rng.uniform(-50, 80), 2),
                "commission": -0.7,
                "closed_at": datetime.now(UTC).isoformat(),
            }
            for _ in range(self.rng.randint(1, 3))
        ]
        self._post(f"/deployments/{deployment_id}/trades", {"trades": trades})

    def handle_one(self) -> bool:
        status, job = self._post("/jobs/claim", {})
        if status == 204:
            return False
        if status != 200:
            raise RuntimeError(f"claim answered {status}: {job}")
        time.sleep(self.delay)
        outcome = {**self._outcome(job), "attempt": job["attempt"]}
        status, _ = self._post(f"/jobs/{job['id']}/result", outcome)
        if (
            status == 200
            and outcome["status"] == "completed"
            and job["job_type"] in ("deploy", "run")
        ):
            self._report_trades(job)
        return True

    def run(self, once: bool = False) -> int:
        handled = 0
        while True:
            did_work = self.handle_one()
            handled += did_work
            if once:
                return handled
            if not did_work:
                time.sleep(self.poll)
