from flask.views import MethodView

from ..schemas.catalog import (
    EACreateSchema,
    EASchema,
    EAVersionCreatedSchema,
    EAVersionCreateSchema,
    EAVersionSchema,
)
from ..services import catalog
from .auth import principal, requires
from .common import BEARER_AUTH, ApiBlueprint, current_uow, error_responses
from .idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent

blp = ApiBlueprint("eas", __name__, description="Expert Advisors and their versions.")
blp.before_request(requires("user"))
versions_blp = ApiBlueprint("ea_versions", __name__, description="Compiled (or not) EA versions.")
versions_blp.before_request(requires("user"))


@blp.route("")
class EAs(MethodView):
    @blp.doc(security=BEARER_AUTH)
    @blp.response(200, EASchema(many=True))
    @error_responses(blp, 401, 403)
    def get(self):
        """List my EAs, newest first."""
        return catalog.list_eas(current_uow(), principal().id)

    @idempotent
    @blp.doc(security=BEARER_AUTH, parameters=[IDEMPOTENCY_KEY_PARAMETER])
    @blp.arguments(EACreateSchema)
    @blp.response(201, EASchema)
    @error_responses(blp, 400, 401, 403, 409, 413, 422)
    def post(self, body):
        """Create an EA."""
        return catalog.create_ea(current_uow(), principal().id, body["name"])


@blp.route("/<uuid:ea_id>/versions")
class EAVersions(MethodView):
    @idempotent
    @blp.doc(security=BEARER_AUTH, parameters=[IDEMPOTENCY_KEY_PARAMETER])
    @blp.arguments(EAVersionCreateSchema)
    @blp.response(201, EAVersionCreatedSchema)
    @error_responses(blp, 400, 401, 403, 404, 409, 413, 422)
    def post(self, body, ea_id):
        """Upload a version; a compile job is queued for it."""
        version, job = catalog.create_version(
            current_uow(), principal().id, ea_id, body["version"], body.get("source_storage_path")
        )
        return {**_version_fields(version), "compile_job_id": job.id}


def _version_fields(version) -> dict:
    return {
        "id": version.id,
        "ea_id": version.ea_id,
        "version": version.version,
        "status": version.status,
        "artifact_storage_path": version.artifact_storage_path,
        "error_message": version.error_message,
        "created_at": version.created_at,
    }


@versions_blp.route("/<uuid:version_id>")
class EAVersionDetail(MethodView):
    @versions_blp.doc(security=BEARER_AUTH)
    @versions_blp.response(200, EAVersionSchema)
    @error_responses(versions_blp, 401, 403, 404)
    def get(self, version_id):
        """One version with its compile status."""
        version, ea = catalog.get_version(current_uow(), principal().id, version_id)
        return {**_version_fields(version), "ea_name": ea.name}


BLUEPRINTS = [
    (blp, {"url_prefix": "/api/v1/eas"}),
    (versions_blp, {"url_prefix": "/api/v1/ea-versions"}),
]
