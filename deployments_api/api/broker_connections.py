from flask.views import MethodView

from ..schemas.catalog import BrokerConnectionCreateSchema, BrokerConnectionSchema
from ..services import catalog
from .auth import principal, requires
from .common import BEARER_AUTH, ApiBlueprint, current_uow, error_responses

blp = ApiBlueprint(
    "broker_connections", __name__, description="Broker accounts (no passwords stored)."
)
blp.before_request(requires("user"))


@blp.route("")
class BrokerConnections(MethodView):
    @blp.doc(security=BEARER_AUTH)
    @blp.response(200, BrokerConnectionSchema(many=True))
    @error_responses(blp, 401, 403)
    def get(self):
        """List my broker connections, newest first."""
        return catalog.list_broker_connections(current_uow(), principal().id)

    @blp.doc(security=BEARER_AUTH)
    @blp.arguments(BrokerConnectionCreateSchema)
    @blp.response(201, BrokerConnectionSchema)
    @error_responses(blp, 400, 401, 403, 413, 422)
    def post(self, body):
        """Add a broker connection."""
        return catalog.create_broker_connection(current_uow(), principal().id, body)


BLUEPRINTS = [(blp, {"url_prefix": "/api/v1/broker-connections"})]
