"""GET /deployments latency at page sizes 100 and 1000, with trades behind every row.

Seeds deployments over HTTP, and closed trades for each (half of them today, so
`pnl_today` has work to do), then times sequential list requests.

    .venv/bin/python -m bench.list_latency [--deployments 1000] [--trades 20] [--requests 50]
"""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

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

PAGE_SIZES = (100, 1000)


def add_trades(base_url: str, agent: str, deployment_ids: list[str], per_deployment: int) -> None:
    now = datetime.now(UTC)

    def send(deployment_id: str) -> None:
        trades = [
            {
                "ticket": ticket,
                "symbol": "EURUSD",
                "volume": 0.1,
                "profit": 12.34 if ticket % 3 else -7.5,
                "swap": -0.12,
                "commission": -0.7,
                # Half today, half yesterday: only today's count towards pnl_today.
                "closed_at": (now - timedelta(days=ticket % 2, minutes=1)).isoformat(),
            }
            for ticket in range(1, per_deployment + 1)
        ]
        http = Http(base_url, agent)
        answer = http.post(f"agent/deployments/{deployment_id}/trades", {"trades": trades})
        http.close()
        if answer.status != 200:
            raise RuntimeError(answer.describe())

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, deployment_ids))


def time_list(base_url: str, user: str, page_size: int, requests: int) -> dict:
    http = Http(base_url, user, timeout=60)
    for _ in range(3):  # warm the workers' connection pools and caches
        http.get("deployments", params={"page_size": page_size})
    samples, sizes = [], set()
    for _ in range(requests):
        answer = http.get("deployments", params={"page_size": page_size})
        if answer.status != 200:
            raise RuntimeError(answer.describe())
        samples.append(answer.seconds)
        sizes.add(len(answer.body))
    http.close()
    return {"rows": sizes.pop(), **milliseconds(samples)}


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--trades", type=int, default=20, help="trades per deployment")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per page size")
    args = parser.parse_args()

    rows = []
    with throwaway_database(args.database_url) as database_url:
        print_setup(
            f"GET /deployments, {args.deployments} deployments x {args.trades} trades each",
            args,
            database_url,
        )
        user, agents = create_accounts(database_url, agents=1)
        with served(database_url, args.workers, args.threads) as base_url:
            version_id, connection_ids = seed_catalog(base_url, user, agents[0], connections=20)
            created = create_deployments(
                base_url, user, version_id, connection_ids, args.deployments
            )
            add_trades(base_url, agents[0], [c["deployment_id"] for c in created], args.trades)
            for page_size in PAGE_SIZES:
                timing = time_list(base_url, user, page_size, args.requests)
                rows.append([
                    page_size, timing["rows"], args.requests,
                    timing["p50"], timing["p95"], timing["p99"], timing["max"],
                ])  # fmt: skip
    print_table(
        ["page_size", "rows returned", "requests", "p50 ms", "p95 ms", "p99 ms", "max ms"], rows
    )


if __name__ == "__main__":
    main()
