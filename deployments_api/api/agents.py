from flask.views import MethodView

from ..schemas.jobs import AgentSchema
from ..services.accounts import list_agents
from .auth import requires
from .common import BEARER_AUTH, ApiBlueprint, current_uow, error_responses

blp = ApiBlueprint("agents", __name__, description="The operator's agent fleet (read-only).")
blp.before_request(requires("user"))


@blp.route("")
class Agents(MethodView):
    @blp.doc(security=BEARER_AUTH)
    @blp.response(200, AgentSchema(many=True))
    @error_responses(blp, 401, 403)
    def get(self):
        """Agents with when they were last seen and how many jobs they hold."""
        return [
            {
                "id": agent.id,
                "name": agent.name,
                "last_seen_at": agent.last_seen_at,
                "jobs_in_flight": in_flight,
            }
            for agent, in_flight in list_agents(current_uow())
        ]


BLUEPRINTS = [(blp, {"url_prefix": "/api/v1/agents"})]
