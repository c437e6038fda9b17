"""Routes for agents: claim work, keep a lease alive, report results and trades."""

from flask.views import MethodView

from ..schemas.deployments import TradesAcceptedSchema, TradesSchema
from ..schemas.jobs import (
    AttemptSchema,
    ClaimedJobSchema,
    ClaimRequestSchema,
    JobResultSchema,
    JobSchema,
    LeaseSchema,
)
from ..services import deployments, jobs
from .auth import principal, requires
from .common import BEARER_AUTH, ApiBlueprint, current_uow, error_responses, queue_settings

blp = ApiBlueprint("agent", __name__, description="For MT5 agents (agent tokens only).")
blp.before_request(requires("agent"))


@blp.route("/jobs/claim")
class Claim(MethodView):
    @blp.doc(security=BEARER_AUTH)
    @blp.arguments(ClaimRequestSchema, required=False)  # every field is optional
    @blp.response(200, ClaimedJobSchema)
    @blp.alt_response(204, description="No pending job.")
    @error_responses(blp, 400, 401, 403, 413, 422)
    def post(self, body):
        """Take the oldest pending job (FIFO) and a lease on it."""
        job = jobs.claim_job(current_uow(), principal().id, body.get("job_types"), queue_settings())
        if job is None:
            return None, 204
        return job


@blp.route("/jobs/<uuid:job_id>/heartbeat")
class Heartbeat(MethodView):
    @blp.doc(security=BEARER_AUTH)
    @blp.arguments(AttemptSchema, required=False)  # `attempt` is optional
    @blp.response(200, LeaseSchema)
    @error_responses(blp, 400, 401, 403, 404, 409, 413, 422)
    def post(self, body, job_id):
        """Renew the lease on a job this agent holds."""
        return jobs.heartbeat(
            current_uow(), job_id, principal().id, body.get("attempt"), queue_settings()
        )


@blp.route("/jobs/<uuid:job_id>/result")
class Result(MethodView):
    @blp.doc(security=BEARER_AUTH)
    @blp.arguments(JobResultSchema)
    @blp.response(200, JobSchema)
    @error_responses(blp, 400, 401, 403, 404, 409, 413, 422)
    def post(self, body, job_id):
        """Report a job's outcome; its effect is applied in the same transaction."""
        return jobs.report_result(current_uow(), job_id, principal().id, body)


@blp.route("/deployments/<uuid:deployment_id>/trades")
class Trades(MethodView):
    @blp.doc(security=BEARER_AUTH)
    @blp.arguments(TradesSchema)
    @blp.response(200, TradesAcceptedSchema)
    @error_responses(blp, 400, 401, 403, 404, 413, 422)
    def post(self, body, deployment_id):
        """Store closed trades; a ticket sent again updates it and is never counted twice."""
        accepted = deployments.record_trades(current_uow(), deployment_id, body["trades"])
        return {"accepted": accepted}


BLUEPRINTS = [(blp, {"url_prefix": "/api/v1/agent"})]
