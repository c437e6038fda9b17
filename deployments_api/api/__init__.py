"""The HTTP layer: flask-smorest Api, one Blueprint per resource."""

from flask_smorest import Api
from flask_smorest.pagination import PaginationMetadataSchema

from ..errors import detail_for_status, error_response, flatten_errors
from ..schemas.common import ErrorSchema
from ..schemas.fields import range_exclusivity

WEBARGS_LOCATIONS = {"json", "query", "headers", "view_args"}


class DeploymentsApi(Api):
    """flask-smorest's Api, answering every HTTP error in the contract's one shape."""

    ERROR_SCHEMA = ErrorSchema

    def _register_pagination_header(self):
        # The header's value is JSON text, which OpenAPI 3 describes with `content`
        # (a bare object `schema` would mean the `k,v,k,v` style of simple headers).
        self.spec.components.header(
            "PAGINATION",
            {
                "description": "Pagination metadata, as a JSON object.",
                "content": {"application/json": {"schema": PaginationMetadataSchema}},
            },
            lazy=True,
        )

    def handle_http_exception(self, error):
        status = error.code or 500
        data = getattr(error, "data", None) or {}
        messages = data.get("messages") or data.get("errors")
        errors = None
        if messages:
            # webargs keys messages by location ({"json": {...}, "query": {...}}).
            if isinstance(messages, dict) and set(messages) <= WEBARGS_LOCATIONS:
                merged = {}
                for part in messages.values():
                    merged.update(flatten_errors(part))
                errors = merged
            else:
                errors = flatten_errors(messages)
        detail = detail_for_status(status)
        if status == 422 and errors and set(errors) == {"_schema"}:
            status, detail = 400, "invalid_json"  # a JSON value that is not an object
            errors = None
        message = data.get("message") or (None if status >= 500 else error.description)
        # Keep the exception's own headers (405's `Allow`, RFC 9110); the body is ours.
        headers = {
            name: value for name, value in error.get_headers() if name.lower() != "content-type"
        }
        headers.update(data.get("headers") or {})
        return error_response(status, detail, message=message, errors=errors, headers=headers)


def register_api(app) -> DeploymentsApi:
    from . import agent_jobs, agents, broker_connections, deployments, eas, health, jobs

    api = DeploymentsApi(
        app,
        spec_kwargs={
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer"},
                }
            }
        },
    )
    api.ma_plugin.converter.add_attribute_function(range_exclusivity)
    for module in (health, eas, broker_connections, deployments, jobs, agents, agent_jobs):
        for blueprint, options in module.BLUEPRINTS:
            api.register_blueprint(blueprint, **options)
    return api
