from flask.views import MethodView

from ..schemas.jobs import JobSchema
from ..services import jobs
from .auth import principal, requires
from .common import BEARER_AUTH, ApiBlueprint, current_uow, error_responses

blp = ApiBlueprint("jobs", __name__, description="Jobs of my EAs and deployments.")
blp.before_request(requires("user"))


@blp.route("/<uuid:job_id>")
class JobDetail(MethodView):
    @blp.doc(security=BEARER_AUTH)
    @blp.response(200, JobSchema)
    @error_responses(blp, 401, 403, 404)
    def get(self, job_id):
        """One job of my own."""
        return jobs.get_job(current_uow(), principal().id, job_id)


BLUEPRINTS = [(blp, {"url_prefix": "/api/v1/jobs"})]
