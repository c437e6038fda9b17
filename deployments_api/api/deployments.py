from flask.views import MethodView

from ..schemas.deployments import (
    DeploymentCreatedSchema,
    DeploymentCreateSchema,
    DeploymentListQuerySchema,
    DeploymentSchema,
    EventSchema,
    LogEntrySchema,
    LogsQuerySchema,
    MoveAcceptedSchema,
    WaitQuerySchema,
)
from ..schemas.fields import INT64_MAX, TimeZoneQuerySchema
from ..services import deployments
from ..services.clock import day_start_in
from .auth import principal, requires
from .common import BEARER_AUTH, ApiBlueprint, current_uow, error_responses
from .idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent

blp = ApiBlueprint("deployments", __name__, description="EA deployments and their lifecycle.")
blp.before_request(requires("user"))

PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def deployment_fields(view) -> dict:
    d = view.deployment
    return {
        "id": d.id,
        "status": d.status,
        "ea_id": view.ea_id,
        "ea_name": view.ea_name,
        "ea_version_id": d.ea_version_id,
        "version": view.version,
        "broker_connection_id": d.broker_connection_id,
        "symbol": d.symbol,
        "timeframe": d.timeframe,
        "magic_number": d.magic_number,
        "trade_count": view.trade_count,
        "pnl_today": view.pnl_today,
        "last_error": d.last_error,
        "created_at": d.created_at,
        "updated_at": d.updated_at,
    }


def _offset(pagination) -> int:
    # `page` has no upper bound; past the last row every page is empty, and the
    # database's OFFSET is a signed 64-bit integer.
    return min((pagination.page - 1) * pagination.page_size, INT64_MAX)


@blp.route("")
class Deployments(MethodView):
    @blp.doc(security=BEARER_AUTH)
    @blp.arguments(DeploymentListQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, DeploymentSchema(many=True))
    @blp.paginate(page_size=PAGE_SIZE, max_page_size=MAX_PAGE_SIZE)
    @error_responses(blp, 401, 403, 422)
    def get(self, pagination_parameters, tz, status=None):
        """List my deployments, newest first, with trade count and today's P&L."""
        total, views = deployments.list_views(
            current_uow(),
            principal().id,
            status,
            day_start_in(tz),
            _offset(pagination_parameters),
            pagination_parameters.page_size,
        )
        pagination_parameters.item_count = total
        return [deployment_fields(v) for v in views]

    @idempotent
    @blp.doc(security=BEARER_AUTH, parameters=[IDEMPOTENCY_KEY_PARAMETER])
    @blp.arguments(DeploymentCreateSchema)
    @blp.response(201, DeploymentCreatedSchema)
    @error_responses(blp, 400, 401, 403, 404, 409, 413, 422)
    def post(self, body):
        """Deploy a compiled EA version; a deploy job is queued in the same transaction."""
        deployment, job = deployments.create_deployment(current_uow(), principal().id, body)
        return {"deployment_id": deployment.id, "job_id": job.id}


@blp.route("/<uuid:deployment_id>")
class DeploymentDetail(MethodView):
    @blp.doc(security=BEARER_AUTH)
    @blp.arguments(TimeZoneQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, DeploymentSchema)
    @error_responses(blp, 401, 403, 404, 422)
    def get(self, deployment_id, tz):
        """One deployment."""
        view = deployments.get_view(current_uow(), principal().id, deployment_id, day_start_in(tz))
        return deployment_fields(view)


def _move_view(trigger: str, summary: str):
    @idempotent
    @blp.doc(security=BEARER_AUTH, parameters=[IDEMPOTENCY_KEY_PARAMETER], summary=summary)
    @blp.response(202, MoveAcceptedSchema)
    @error_responses(blp, 401, 403, 404, 409, 422)
    def post(self, deployment_id):
        deployment, job = deployments.request_move(
            current_uow(), principal().id, deployment_id, trigger
        )
        return {"status": deployment.status, "job_id": job.id}

    return post


@blp.route("/<uuid:deployment_id>/run")
class DeploymentRun(MethodView):
    post = _move_view("run", "Start a stopped deployment (stopped -> starting).")


@blp.route("/<uuid:deployment_id>/stop")
class DeploymentStop(MethodView):
    post = _move_view("stop", "Stop a running deployment (running -> stopping).")


@blp.route("/<uuid:deployment_id>/wait")
class DeploymentWait(MethodView):
    @blp.doc(security=BEARER_AUTH)
    @blp.arguments(WaitQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, DeploymentSchema)
    @error_responses(blp, 401, 403, 404, 408, 409, 422)
    def get(self, deployment_id, status, timeout, tz):
        """Block until the deployment reaches `status` (408 on timeout, 409 if in error)."""
        view = deployments.wait_for_status(
            current_uow(), principal().id, deployment_id, status, timeout, day_start_in(tz)
        )
        return deployment_fields(view)


@blp.route("/<uuid:deployment_id>/events")
class DeploymentEvents(MethodView):
    @blp.doc(security=BEARER_AUTH)
    @blp.response(200, EventSchema(many=True))
    @blp.paginate(page_size=PAGE_SIZE, max_page_size=MAX_PAGE_SIZE)
    @error_responses(blp, 401, 403, 404, 422)
    def get(self, deployment_id, pagination_parameters):
        """The deployment's history, newest first."""
        total, events = deployments.events_page(
            current_uow(),
            principal().id,
            deployment_id,
            _offset(pagination_parameters),
            pagination_parameters.page_size,
        )
        pagination_parameters.item_count = total
        return events


@blp.route("/<uuid:deployment_id>/logs")
class DeploymentLogs(MethodView):
    @blp.doc(security=BEARER_AUTH)
    @blp.arguments(LogsQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, LogEntrySchema(many=True))
    @error_responses(blp, 401, 403, 404, 422)
    def get(self, deployment_id, limit):
        """Output and errors of every job of the deployment, newest first."""
        return deployments.logs(current_uow(), principal().id, deployment_id, limit)


BLUEPRINTS = [(blp, {"url_prefix": "/api/v1/deployments"})]
