"""GET /deployments (list, filter, pages, P&L day boundary, statement count) and one
deployment. Logs and wait are in test_deployment_logs_and_wait.py."""

import json
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event

from .helpers import new_id, settle

# -- helpers -------------------------------------------------------------------------------


def listed(api, token, query=""):
    response = api.get(f"deployments{query}", token)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def post_trades(api, deployment_id, trades):
    response = api.post(
        f"agent/deployments/{deployment_id}/trades", api.default_agent, {"trades": trades}
    )
    assert response.status_code == 200, response.get_json()


def trade(ticket, profit, closed_at, swap=0, commission=0):
    return {
        "ticket": ticket,
        "symbol": "EURUSD",
        "volume": 0.1,
        "profit": profit,
        "swap": swap,
        "commission": commission,
        "closed_at": closed_at.isoformat(),
    }


def utc_midnight() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def assert_invalid_query(api, token, path):
    before = api.row_counts()
    response = api.get(path, token)
    assert response.status_code == 422, (path, response.get_json())
    assert response.get_json()["detail"] == "validation_error", path
    assert response.get_json()["errors"], path
    assert api.row_counts() == before, path


@contextmanager
def counted_statements(engine):
    statements = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


# -- the list ------------------------------------------------------------------------------

ALL_STATUSES = ("running", "error", "stopped", "stopping", "starting", "deploying")


def test_the_list_shows_only_my_deployments_newest_first(api, owner):
    token, version_id, connection_id = owner
    mine = [settle(api, token, version_id, connection_id, s)[0] for s in ALL_STATUSES]
    stranger = api.user()
    theirs = api.deployment(stranger, "running")

    assert [item["id"] for item in listed(api, token)] == mine[::-1]
    assert [item["id"] for item in listed(api, stranger)] == [theirs["id"]]
    assert listed(api, api.user()) == []


def test_each_item_shows_its_own_status_names_and_trades(api, owner):
    token, version_id, connection_id = owner
    grid_master = api.create_ea(token, "Grid Master")
    version_id_2 = api.compiled_version(token, grid_master["id"], "3.1")["id"]
    plans = [
        # status, version, symbol, trades as (profit, swap, commission, closed today?)
        ("running", version_id, "EURUSD", [(10, 0, 0, True), (2.5, -0.5, -0.25, True)]),
        ("error", version_id_2, "XAUUSD.m", []),
        ("stopped", version_id_2, "US30.cash", [(-4, 0, -1, True), (100, 0, 0, False)]),
        ("starting", version_id, "GBPJPY", [(0.01, 0, 0, True)]),
    ]
    today, yesterday = utc_midnight() + timedelta(minutes=1), utc_midnight() - timedelta(hours=1)
    expected = {}
    for ticket_base, (status, version, symbol, trades) in enumerate(plans):
        deployment_id, _ = settle(api, token, version, connection_id, status, symbol=symbol)
        sent = [
            trade(ticket_base * 10 + n, profit, today if recent else yesterday, swap, commission)
            for n, (profit, swap, commission, recent) in enumerate(trades, start=1)
        ]
        if sent:
            post_trades(api, deployment_id, sent)
        pnl = sum(
            profit + swap + commission for profit, swap, commission, recent in trades if recent
        )
        expected[deployment_id] = (status, symbol, len(trades), round(pnl, 2))

    items = listed(api, token)

    names = {version_id: ("Scalper", "1.0"), version_id_2: ("Grid Master", "3.1")}
    assert len(items) == len(plans)
    for item in items:
        status, symbol, trade_count, pnl_today = expected[item["id"]]
        assert (item["status"], item["symbol"]) == (status, symbol)
        assert (item["trade_count"], item["pnl_today"]) == (trade_count, pnl_today)
        assert (item["ea_name"], item["version"]) == names[item["ea_version_id"]]
        assert item == api.get(f"deployments/{item['id']}", token).get_json()


def test_the_status_filter_keeps_only_that_status(api, owner):
    token, version_id, connection_id = owner
    ids = {s: settle(api, token, version_id, connection_id, s)[0] for s in ALL_STATUSES}
    for status in ALL_STATUSES:
        matches = listed(api, token, f"?status={status}")
        assert [(item["id"], item["status"]) for item in matches] == [(ids[status], status)]


def test_the_list_is_paginated_with_an_x_pagination_header(api, owner):
    token, version_id, connection_id = owner
    ids = [settle(api, token, version_id, connection_id, "running")[0] for _ in range(5)][::-1]
    pages = []
    for page in (1, 2, 3):
        response = api.get(f"deployments?page={page}&page_size=2", token)
        assert response.status_code == 200
        pagination = json.loads(response.headers["X-Pagination"])
        assert (pagination["total"], pagination["total_pages"], pagination["page"]) == (5, 3, page)
        pages.append([item["id"] for item in response.get_json()])
    assert pages == [ids[:2], ids[2:4], ids[4:]]
    filtered = api.get("deployments?status=error&page_size=2", token)
    assert json.loads(filtered.headers["X-Pagination"])["total"] == 0


def test_the_statement_count_does_not_grow_with_the_page_size(api, owner, engine):
    token, version_id, connection_id = owner
    closed_at = datetime.now(UTC)
    for ticket in range(1, 102):
        deployment_id, _ = settle(api, token, version_id, connection_id, "deploying")
        post_trades(
            api,
            deployment_id,
            [trade(ticket, 1.25, closed_at), trade(ticket + 1000, -0.5, closed_at)],
        )

    counts = {}
    for page_size in (1, 100):
        with counted_statements(engine) as statements:
            response = api.get(f"deployments?page_size={page_size}", token)
        assert response.status_code == 200
        items = response.get_json()
        assert len(items) == page_size
        assert {(i["trade_count"], i["pnl_today"]) for i in items} == {(2, 0.75)}
        counts[page_size] = len(statements)
    assert counts[1] == counts[100]

    # The default page is 100 items; a page of up to 1000 may be asked for.
    default = api.get("deployments", token)
    assert len(default.get_json()) == 100
    assert json.loads(default.headers["X-Pagination"])["total"] == 101
    assert len(listed(api, token, "?page_size=1000")) == 101


# -- the day boundary of pnl_today ---------------------------------------------------------


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "America/New_York", "Asia/Kolkata", "UTC"])
def test_tz_moves_the_start_of_the_day(api, owner, zone):
    token, version_id, connection_id = owner
    deployment_id, _ = settle(api, token, version_id, connection_id, "running")
    local_now = datetime.now(ZoneInfo(zone))
    zone_start = local_now.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    utc_start = utc_midnight()
    closings = [
        zone_start - timedelta(minutes=1),
        zone_start + timedelta(minutes=1),
        utc_start - timedelta(minutes=30),  # 23:30 UTC yesterday
        utc_start + timedelta(minutes=1),
    ]
    profits = [1, 10, 100, 1000]
    post_trades(
        api,
        deployment_id,
        [trade(n, p, at) for n, (p, at) in enumerate(zip(profits, closings, strict=True), 1)],
    )

    def expected_since(start):
        return sum(p for p, at in zip(profits, closings, strict=True) if at >= start)

    zone_query = f"?tz={zone}"
    item = api.get(f"deployments/{deployment_id}{zone_query}", token).get_json()
    assert item["pnl_today"] == expected_since(zone_start)
    assert listed(api, token, zone_query)[0]["pnl_today"] == expected_since(zone_start)
    assert listed(api, token)[0]["pnl_today"] == expected_since(utc_start)
    assert item["trade_count"] == 4
    if zone != "UTC":
        assert expected_since(zone_start) != expected_since(utc_start)


# -- invalid queries ----------------------------------------------------------------------

INVALID_QUERIES = {
    "": [
        *("status=paused", "status=RUNNING", "status="),
        *("page_size=1001", "page_size=0", "page=0", "page=x"),
        *("tz=Mars/Olympus_Mons", "tz=", "tz=+09:00", "tz=../etc/passwd"),
    ],
    "/{id}": ["tz=Nowhere/Land", "tz="],
    "/{id}/logs": ["limit=0", "limit=101", "limit=-1", "limit=ten", "limit=1.5"],
    "/{id}/wait": [
        *("status=running&timeout=0", "status=running&timeout=61", "status=running&timeout=x"),
        *("status=paused", "status=", "timeout=5", "status=running&tz=Nowhere/Land"),
    ],
}


@pytest.mark.parametrize("route", list(INVALID_QUERIES))
def test_an_invalid_query_is_a_validation_error_and_writes_nothing(api, owner, route):
    token, version_id, connection_id = owner
    deployment_id, _ = settle(api, token, version_id, connection_id, "running")
    path = "deployments" + route.format(id=deployment_id)
    for query in INVALID_QUERIES[route]:
        assert_invalid_query(api, token, f"{path}?{query}")


# -- one deployment ------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["", "/logs", "/wait?status=running&timeout=1"])
def test_another_users_or_an_unknown_deployment_is_not_found(api, owner, route):
    token, version_id, connection_id = owner
    deployment_id, _ = settle(api, token, version_id, connection_id, "running")
    for asker, asked in ((api.user(), deployment_id), (token, new_id())):
        response = api.get(f"deployments/{asked}{route}", asker)
        assert (response.status_code, response.get_json()["detail"]) == (404, "not_found")
