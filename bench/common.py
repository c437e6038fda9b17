"""What every benchmark needs: a throwaway database, gunicorn on it, seed data, percentiles."""

import argparse
import os
import platform
import secrets
import statistics
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from sqlalchemy import create_engine, text

from deployments_api.db import normalize_database_url
from deployments_api.migrations import upgrade_to_head
from tests.servers import gunicorn_server
from tests.soak.harness import Http, drain_output

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="a Postgres server where a throwaway database may be created and dropped",
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    return parser


@contextmanager
def throwaway_database(server_url: str):
    """A new, migrated database on `server_url`, dropped afterwards."""
    base = normalize_database_url(server_url)
    name = f"bench_{secrets.token_hex(4)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade_to_head(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def served(database_url: str, workers: int, threads: int):
    with gunicorn_server(database_url, workers=workers, threads=threads) as (base_url, process):
        drain_output(process)
        yield base_url


def create_deployments(base_url, user, version_id, connection_ids, count, threads=8) -> list:
    """`count` deployments over HTTP (each with its deploy job), spread over the connections."""

    def create(n: int) -> dict:
        http = Http(base_url, user)
        body = {
            "ea_version_id": version_id,
            "broker_connection_id": connection_ids[n % len(connection_ids)],
            "symbol": "EURUSD",
            "timeframe": "M5",
        }
        answer = http.post("deployments", body)
        http.close()
        if answer.status != 201:
            raise RuntimeError(answer.describe())
        return answer.body

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(create, range(count)))


def milliseconds(samples: list[float]) -> dict:
    """p50 / p95 / p99 / max of durations in seconds, as milliseconds."""
    ordered = sorted(samples)

    def at(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000

    return {
        "p50": statistics.median(ordered) * 1000,
        "p95": at(0.95),
        "p99": at(0.99),
        "max": ordered[-1] * 1000,
    }


def print_setup(title: str, args, database_url: str) -> None:
    engine = create_engine(normalize_database_url(database_url))
    with engine.connect() as connection:
        server = connection.scalar(text("SHOW server_version"))
    engine.dispose()
    print(
        f"# {title}; gunicorn {args.workers} workers x {args.threads} threads (gthread); "
        f"PostgreSQL {server}; {os.cpu_count()} CPUs; Python {platform.python_version()}"
    )


def print_table(headers: list[str], rows: list[list]) -> None:
    print("| " + " | ".join(headers) + " |")
    print("|" + "---|" * len(headers))
    for row in rows:
        cells = [f"{c:.1f}" if isinstance(c, float) else str(c) for c in row]
        print("| " + " | ".join(cells) + " |")
