"""Fixtures: one fresh database per test run (SQLite file, or a new Postgres database),
migrated once, emptied after every test; an app and a test client over it.

TEST_DB=sqlite (default) or TEST_DB=postgres (needs TEST_DATABASE_URL).
"""

import os
import secrets

import pytest
from sqlalchemy import create_engine, text

from deployments_api import create_app
from deployments_api.db import normalize_database_url
from deployments_api.migrations import upgrade_to_head
from deployments_api.models import Base

from .helpers import ApiClient

BACKEND = os.environ.get("TEST_DB", "sqlite")

TEST_CONFIG = {
    "RATE_LIMIT_PER_MINUTE": 0,
    "JOB_LEASE_SECONDS": 60,
    "JOB_MAX_ATTEMPTS": 3,
    "JOB_PENDING_TIMEOUT": 600,
}


def pytest_report_header(config):
    return f"database backend: {BACKEND}"


def pytest_collection_modifyitems(config, items):
    """On SQLite, Postgres-only tests are deselected (listed as such), never skipped."""
    if BACKEND == "postgres":
        return
    postgres_only = [item for item in items if item.get_closest_marker("postgres_only")]
    if postgres_only:
        config.hook.pytest_deselected(items=postgres_only)
        items[:] = [item for item in items if not item.get_closest_marker("postgres_only")]


def _create_postgres_database() -> tuple[str, callable]:
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        raise pytest.UsageError("TEST_DB=postgres needs TEST_DATABASE_URL")
    base_url = normalize_database_url(base)
    name = f"deployments_test_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return base_url.set(database=name).render_as_string(hide_password=False), drop


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    if BACKEND == "postgres":
        url, drop = _create_postgres_database()
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"

        def drop():
            return None

    upgrade_to_head(url)
    yield url
    drop()


@pytest.fixture(scope="session")
def session_app(database_url):
    return create_app({"DATABASE_URL": database_url, "TESTING": True, **TEST_CONFIG})


def empty_all_tables(engine) -> None:
    # DELETE, children first: on tables this small it is far cheaper than TRUNCATE, which
    # makes Postgres allocate new files for every table and index.
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture
def app(session_app):
    saved = dict(session_app.config)
    yield session_app
    session_app.config.clear()
    session_app.config.update(saved)
    session_app.extensions["rate_limiter"].per_minute = 0
    empty_all_tables(session_app.extensions["deployments_db"].engine)


@pytest.fixture
def engine(app):
    return app.extensions["deployments_db"].engine


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def api(app, client):
    return ApiClient(app, client)


@pytest.fixture
def live_url(app):
    """The test app served over real HTTP by a threaded werkzeug server."""
    from .servers import threaded_server

    with threaded_server(app) as base_url:
        yield base_url


@pytest.fixture
def owner(api):
    """A trader with a compiled version and a broker connection: (token, version, conn)."""
    token = api.user()
    version = api.compiled_version(token)
    return token, version["id"], api.connection(token)["id"]
