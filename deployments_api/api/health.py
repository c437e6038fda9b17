from flask.views import MethodView

from ..errors import DatabaseUnavailable
from ..schemas.common import HealthSchema
from .common import ApiBlueprint, current_uow, error_responses

blp = ApiBlueprint("health", __name__, description="Liveness and readiness (no auth).")


@blp.route("/healthz")
class Liveness(MethodView):
    @blp.doc(security=[])
    @blp.response(200, HealthSchema)
    def get(self):
        """The process is serving."""
        return {"status": "ok"}


@blp.route("/readyz")
class Readiness(MethodView):
    @blp.doc(security=[])
    @blp.response(200, HealthSchema)
    @error_responses(blp, 503)
    def get(self):
        """The database answers."""
        if not current_uow().probe.ping():
            raise DatabaseUnavailable("the database did not answer")
        return {"status": "ok"}


BLUEPRINTS = [(blp, {"url_prefix": "/"})]
