"""The deployment state machine alone: every (status, trigger) pair, legal or not."""

import itertools
import threading

import pytest
import transitions

from deployments_api import states
from deployments_api.states import (
    DEPLOYMENT_MACHINE,
    STATUSES,
    TRIGGERS,
    IllegalTransition,
    fire,
)

from .helpers import CONTRACT_DIAGRAM

ALL_STATUSES = ("deploying", "running", "stopping", "stopped", "starting", "error")
ALL_TRIGGERS = (
    "run",
    "stop",
    "deploy_succeeded",
    "deploy_failed",
    "run_succeeded",
    "run_failed",
    "stop_succeeded",
    "stop_failed",
)
EVERY_PAIR = list(itertools.product(ALL_STATUSES, ALL_TRIGGERS))


class Row:
    """A plain object with only the attribute the machine reads and writes."""

    def __init__(self, status):
        self.status = status


def test_the_module_knows_exactly_the_contract_statuses_and_triggers():
    assert set(STATUSES) == set(ALL_STATUSES)
    assert set(TRIGGERS) == set(ALL_TRIGGERS)
    initial, terminal = states.INITIAL_STATUS, states.TERMINAL_STATUSES
    assert (initial, terminal) == ("deploying", {"error"})


@pytest.mark.parametrize(("status", "trigger"), EVERY_PAIR)
def test_every_status_and_trigger_pair_moves_as_the_diagram_says(status, trigger):
    row = Row(status)
    expected = CONTRACT_DIAGRAM.get((status, trigger))
    if expected is None:
        with pytest.raises(IllegalTransition) as refused:
            fire(row, trigger)
        assert refused.value.status == status
        assert refused.value.trigger == trigger
        assert row.status == status
    else:
        assert fire(row, trigger) == (status, expected)
        assert row.status == expected


@pytest.mark.parametrize("status", ALL_STATUSES)
def test_allowed_triggers_lists_exactly_the_legal_ones(status):
    legal = {trigger for (source, trigger) in CONTRACT_DIAGRAM if source == status}
    assert set(states.allowed_triggers(status)) == legal


@pytest.mark.parametrize("trigger", ALL_TRIGGERS)
def test_error_is_terminal(trigger):
    row = Row("error")
    with pytest.raises(IllegalTransition):
        fire(row, trigger)
    assert row.status == "error"


def test_an_unknown_trigger_is_refused_like_an_illegal_one():
    row = Row("running")
    with pytest.raises(IllegalTransition) as refused:
        fire(row, "explode")
    assert refused.value.status == "running"
    assert row.status == "running"


def test_firing_on_one_object_leaves_another_alone():
    first, second = Row("running"), Row("running")
    fire(first, "stop")
    assert (first.status, second.status) == ("stopping", "running")
    fire(second, "stop")
    fire(second, "stop_failed")
    assert (first.status, second.status) == ("stopping", "running")


def test_firing_attaches_nothing_and_builds_no_machine(monkeypatch):
    built = []
    original_init = transitions.Machine.__init__

    def counting_init(self, *args, **kwargs):
        built.append(self)
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(transitions.Machine, "__init__", counting_init)
    models_before = list(DEPLOYMENT_MACHINE.models)
    rows = [Row("deploying") for _ in range(3)]
    for row in rows:
        fire(row, "deploy_succeeded")
        fire(row, "stop")

    assert built == []
    assert DEPLOYMENT_MACHINE.models == models_before
    # No trigger methods or machine state were bound onto the objects.
    assert all(vars(row) == {"status": "stopping"} for row in rows)


def test_threads_sharing_the_machine_do_not_disturb_each_other():
    cycle = [("stop", "stopping"), ("stop_succeeded", "stopped"), ("run", "starting")]
    cycle += [("run_succeeded", "running")]
    rows = [Row("running") for _ in range(8)]
    start = threading.Barrier(len(rows))
    wrong = []

    def spin(row):
        start.wait()
        for _ in range(200):
            for trigger, expected in cycle:
                fire(row, trigger)
                if row.status != expected:
                    wrong.append((trigger, row.status))

    threads = [threading.Thread(target=spin, args=(row,)) for row in rows]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    assert {row.status for row in rows} == {"running"}
