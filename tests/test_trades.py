"""POST /agent/deployments/{id}/trades: validation, upsert by ticket, exact pnl_today."""

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from deployments_api.models import Trade

from .helpers import new_id

INT64_MAX = 2**63 - 1
OMIT = object()


def utc_midnight() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def closed_today() -> str:
    # A minute past midnight, or now if that is earlier: always "today" and never future.
    return min(utc_midnight() + timedelta(minutes=1), datetime.now(UTC)).isoformat()


def trade(ticket=1, /, **fields) -> dict:
    body = {
        "ticket": ticket,
        "symbol": "EURUSD",
        "volume": 0.1,
        "profit": 1.0,
        "swap": 0,
        "commission": 0,
        "closed_at": closed_today(),
        **fields,
    }
    return {name: value for name, value in body.items() if value is not OMIT}


def send(api, deployment_id, trades, token=None):
    body = {"trades": trades}
    return api.post(f"agent/deployments/{deployment_id}/trades", token or api.default_agent, body)


def accepted(api, deployment_id, trades) -> int:
    response = send(api, deployment_id, trades)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["accepted"]


def totals(api, token, deployment_id) -> tuple[int, float]:
    shown = api.get(f"deployments/{deployment_id}", token).get_json()
    return shown["trade_count"], shown["pnl_today"]


@pytest.fixture
def running(api):
    token = api.user()
    return token, api.deployment(token, "running")["id"]


def test_trades_are_accepted_and_counted(api, running):
    token, deployment_id = running
    assert accepted(api, deployment_id, [trade(1), trade(2, profit=-0.5), trade(3)]) == 3
    assert totals(api, token, deployment_id) == (3, 1.5)


# -- validation ----------------------------------------------------------------------------

INVALID_TRADE_FIELDS = {
    "ticket": [0, -1, INT64_MAX + 1, 1.5, "1", True, None, OMIT],
    "volume": [0, -0.1, "0.1", True, None, OMIT],
    "profit": ["1.00", True, None, [], OMIT],
    "swap": ["0", True],
    "commission": ["-0.7", False],
    "closed_at": ["2026-01-01T10:00:00", "2026-01-01", "yesterday", 1767261600, None, OMIT],
    "symbol": ["", "EUR USD", "X" * 33, OMIT],
}


@pytest.mark.parametrize("field", list(INVALID_TRADE_FIELDS))
def test_an_invalid_trade_field_is_refused_and_nothing_is_stored(api, running, field):
    _token, deployment_id = running
    before = api.row_counts()
    for value in INVALID_TRADE_FIELDS[field]:
        # The bad trade is second, behind a good one: the whole request is refused.
        response = send(api, deployment_id, [trade(1), trade(2, **{field: value})])
        assert response.status_code == 422, (field, value, response.get_json())
        body = response.get_json()
        assert body["detail"] == "validation_error"
        assert any(field in name for name in body["errors"]), (value, body["errors"])
    assert api.row_counts() == before


@pytest.mark.parametrize(
    "body",
    [{"trades": []}, {"trades": [trade(n) for n in range(1, 1002)]}, {}, {"trades": "x"}],
    ids=["none", "1001", "missing", "not-a-list"],
)
def test_a_request_must_carry_1_to_1000_trades(api, running, body):
    _token, deployment_id = running
    before = api.row_counts()
    response = api.post(f"agent/deployments/{deployment_id}/trades", api.default_agent, body)
    assert (response.status_code, response.get_json()["detail"]) == (422, "validation_error")
    assert "trades" in response.get_json()["errors"]
    assert api.row_counts() == before


def test_the_limits_themselves_are_accepted(api, running):
    token, deployment_id = running
    batch = [trade(n, profit=0.1, swap=0.01, commission=-0.005) for n in range(1, 1001)]
    assert accepted(api, deployment_id, batch) == 1000
    assert accepted(api, deployment_id, [trade(INT64_MAX, volume=0.01, profit=0)]) == 1
    # 1000 x 0.105 is exactly 105: no float drift over a thousand rows.
    assert totals(api, token, deployment_id) == (1001, 105.0)


def test_swap_and_commission_default_to_zero(api, running):
    token, deployment_id = running
    assert accepted(api, deployment_id, [trade(7, profit=2.5, swap=OMIT, commission=OMIT)]) == 1
    assert totals(api, token, deployment_id) == (1, 2.5)


def test_an_unknown_deployment_is_not_found(api):
    agent = api.default_agent
    before = api.row_counts()
    response = send(api, new_id(), [trade(1)], token=agent)
    assert (response.status_code, response.get_json()["detail"]) == (404, "not_found")
    assert api.row_counts() == before


def test_only_agent_tokens_may_report_trades(api, running):
    token, deployment_id = running
    before = api.row_counts()
    forbidden = send(api, deployment_id, [trade(1)], token=token)
    assert (forbidden.status_code, forbidden.get_json()["detail"]) == (403, "forbidden")
    anonymous = api.post(f"agent/deployments/{deployment_id}/trades", None, {"trades": [trade(1)]})
    assert (anonymous.status_code, anonymous.get_json()["detail"]) == (401, "not_authenticated")
    assert api.row_counts() == before


# -- upsert by ticket ----------------------------------------------------------------------


def test_resending_the_same_tickets_never_counts_them_twice(api, running):
    token, deployment_id = running
    batch = [trade(101, profit=12.5), trade(102, profit=-3.1)]
    for _ in range(3):
        assert accepted(api, deployment_id, batch) == 2
        assert totals(api, token, deployment_id) == (2, 9.4)
    assert api.row_counts()["trades"] == 2


def test_resending_a_ticket_with_a_new_profit_updates_it(api, running):
    token, deployment_id = running
    accepted(api, deployment_id, [trade(101, profit=12.5), trade(102, profit=-3.1)])
    accepted(api, deployment_id, [trade(102, profit=-1.1, commission=-0.2)])
    assert totals(api, token, deployment_id) == (2, 11.2)


def test_a_ticket_repeated_in_one_request_is_stored_once_with_its_last_values(api, running):
    token, deployment_id = running
    response = send(api, deployment_id, [trade(5, profit=1), trade(6), trade(5, profit=4)])
    assert response.status_code == 200, response.get_json()
    assert totals(api, token, deployment_id) == (2, 5.0)


def test_the_same_ticket_on_two_deployments_is_two_trades(api, running):
    token, first = running
    second = api.deployment(token, "running")["id"]
    accepted(api, first, [trade(555, profit=3)])
    accepted(api, second, [trade(555, profit=-2)])
    assert totals(api, token, first) == (1, 3.0)
    assert totals(api, token, second) == (1, -2.0)
    assert api.row_counts()["trades"] == 2


# -- exact money and the day boundary ------------------------------------------------------


def test_pnl_today_is_exact_to_the_cent(api, running, engine):
    token, deployment_id = running
    accepted(
        api,
        deployment_id,
        [trade(1, profit=12.50, swap=-0.25, commission=-0.70), trade(2, profit=-3.10)],
    )
    # As floats this is 8.450000000000001; the service must answer 8.45 exactly.
    assert totals(api, token, deployment_id) == (2, 8.45)
    with engine.connect() as connection:
        stored = connection.execute(
            select(Trade.profit, Trade.swap, Trade.commission)
            .where(Trade.deployment_id == uuid.UUID(deployment_id))
            .order_by(Trade.ticket)
        ).all()
    assert [tuple(row) for row in stored] == [
        (Decimal("12.5"), Decimal("-0.25"), Decimal("-0.7")),
        (Decimal("-3.1"), Decimal("0"), Decimal("0")),
    ]


def test_large_amounts_stay_exact(api, running):
    token, deployment_id = running
    accepted(api, deployment_id, [trade(1, profit=999999999.99), trade(2, profit=-999999999.98)])
    assert totals(api, token, deployment_id) == (2, 0.01)


def test_trades_closed_before_todays_utc_midnight_count_but_are_not_today(api, running):
    token, deployment_id = running
    midnight = utc_midnight()
    tokyo = timezone(timedelta(hours=9))

    def closed(offset: timedelta, zone=UTC) -> str:
        return (midnight + offset).astimezone(zone).isoformat()

    accepted(
        api,
        deployment_id,
        [
            trade(1, profit=1, closed_at=closed(timedelta(0))),
            trade(2, profit=10, closed_at=closed(-timedelta(microseconds=1))),
            trade(3, profit=100, closed_at=closed(-timedelta(days=3))),
            # 23:30 UTC yesterday, written with a +09:00 offset: still yesterday in UTC.
            trade(4, profit=1000, closed_at=closed(-timedelta(minutes=30), tokyo)),
            # 00:30 UTC today written as Tokyo time; and midnight written with "Z".
            trade(5, profit=0.25, closed_at=closed(timedelta(minutes=30), tokyo)),
            trade(6, profit=0.5, closed_at=closed(timedelta(0)).replace("+00:00", "Z")),
        ],
    )
    assert totals(api, token, deployment_id) == (6, 1.75)
