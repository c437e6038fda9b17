"""The deployment state machine, declared once as data and shared by every deployment.

One `transitions.Machine` with `model=None` serves all deployments: firing an event
reads and writes only the model's `status` attribute, so nothing is attached to ORM
objects (SQLAlchemy does not call `__init__` on loaded rows) and no per-row machine is
built. Without `queued=True` the shared machine keeps no per-call state, so threads may
share it; the row lock taken by the service is what serializes racing requests.
"""

from transitions import Machine, MachineError

DEPLOYING = "deploying"
RUNNING = "running"
STOPPING = "stopping"
STOPPED = "stopped"
STARTING = "starting"
ERROR = "error"

STATUSES = (DEPLOYING, RUNNING, STOPPING, STOPPED, STARTING, ERROR)

# trigger, source, destination — the contract's diagram, line for line.
TRANSITIONS = (
    ("deploy_succeeded", DEPLOYING, RUNNING),
    ("deploy_failed", DEPLOYING, ERROR),
    ("stop", RUNNING, STOPPING),
    ("stop_succeeded", STOPPING, STOPPED),
    ("stop_failed", STOPPING, RUNNING),
    ("run", STOPPED, STARTING),
    ("run_succeeded", STARTING, RUNNING),
    ("run_failed", STARTING, STOPPED),
)

TRIGGERS = tuple(dict.fromkeys(t[0] for t in TRANSITIONS))
INITIAL_STATUS = DEPLOYING
TERMINAL_STATUSES = frozenset({ERROR})

DEPLOYMENT_MACHINE = Machine(
    model=None,
    states=list(STATUSES),
    transitions=[{"trigger": t, "source": s, "dest": d} for t, s, d in TRANSITIONS],
    initial=None,
    auto_transitions=False,
    model_attribute="status",
    send_event=True,
)


class IllegalTransition(Exception):
    def __init__(self, trigger: str, status: str):
        super().__init__(f"cannot {trigger} from {status}")
        self.trigger = trigger
        self.status = status


def fire(model, trigger: str) -> tuple[str, str]:
    """Move `model.status` by `trigger`; return (from, to) or raise IllegalTransition."""
    before = model.status
    try:
        moved = DEPLOYMENT_MACHINE.events[trigger].trigger(model)
    except (MachineError, KeyError) as exc:
        raise IllegalTransition(trigger, before) from exc
    if not moved:
        raise IllegalTransition(trigger, before)
    return before, model.status


def allowed_triggers(status: str) -> list[str]:
    return [t for t, source, _ in TRANSITIONS if source == status]
