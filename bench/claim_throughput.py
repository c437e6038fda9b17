"""Claim throughput: N concurrent agents drain a queue of deploy jobs over HTTP.

Each agent claims (`POST /agent/jobs/claim`) and reports the job completed, until the
queue answers 204. gunicorn serves the app against a throwaway Postgres database.

    .venv/bin/python -m bench.claim_throughput [--agents 1,4,16,32] [--jobs 1000]
"""

import threading
import time
from collections import Counter

from tests.soak.harness import Http, create_accounts, seed_catalog

from .common import (
    arguments,
    create_deployments,
    milliseconds,
    print_setup,
    print_table,
    served,
    throwaway_database,
)


def drain_queue(base_url: str, tokens: list[str]) -> dict:
    """Run one agent thread per token until the queue is empty; time every call."""
    claims, reports, handled, errors = [], [], Counter(), []
    lock = threading.Lock()

    def agent(token: str) -> None:
        try:
            work(token)
        except Exception as exc:
            errors.append(exc)

    def work(token: str) -> None:
        http = Http(base_url, token)
        while True:
            claimed = http.post("agent/jobs/claim", {})
            if claimed.status == 204:
                break
            if claimed.status != 200:
                raise RuntimeError(claimed.describe())
            job = claimed.body
            report = {"status": "completed", "attempt": job["attempt"], "output_data": {}}
            reported = http.post(f"agent/jobs/{job['id']}/result", report)
            if reported.status != 200:
                raise RuntimeError(reported.describe())
            with lock:
                claims.append(claimed.seconds)
                reports.append(reported.seconds)
                handled[job["id"]] += 1
        http.close()

    threads = [threading.Thread(target=agent, args=(token,)) for token in tokens]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return {
        "seconds": time.perf_counter() - started,
        "jobs": len(handled),
        "handed_out_twice": sum(1 for n in handled.values() if n > 1),
        "claim": milliseconds(claims),
        "report": milliseconds(reports),
    }


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--agents", default="1,4,16,32", help="comma-separated agent counts")
    parser.add_argument("--jobs", type=int, default=1000, help="jobs queued for each run")
    args = parser.parse_args()
    agent_counts = [int(n) for n in args.agents.split(",")]

    rows = []
    with throwaway_database(args.database_url) as database_url:
        print_setup(f"claim throughput, {args.jobs} jobs per run", args, database_url)
        user, agents = create_accounts(database_url, agents=max(agent_counts))
        with served(database_url, args.workers, args.threads) as base_url:
            version_id, connection_ids = seed_catalog(base_url, user, agents[0], connections=20)
            for count in agent_counts:
                create_deployments(base_url, user, version_id, connection_ids, args.jobs)
                run = drain_queue(base_url, agents[:count])
                rows.append([
                    count, run["jobs"], run["seconds"], run["jobs"] / run["seconds"],
                    run["claim"]["p50"], run["claim"]["p95"], run["claim"]["p99"],
                    run["report"]["p50"], run["report"]["p95"], run["handed_out_twice"],
                ])  # fmt: skip
    print_table(
        ["agents", "jobs", "seconds", "jobs/s", "claim p50 ms", "claim p95 ms", "claim p99 ms",
         "report p50 ms", "report p95 ms", "handed out twice"],
        rows,
    )  # fmt: skip


if __name__ == "__main__":
    main()
