from marshmallow import Schema, fields, validate

from .fields import text

VERSION_STATUSES = ("pending", "compiled", "failed")


class EACreateSchema(Schema):
    name = text(1, 100, required=True)


class EASchema(Schema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    created_at = fields.DateTime(required=True)


class EAVersionCreateSchema(Schema):
    version = text(1, 50, required=True)
    source_storage_path = text(1, 1024, allow_none=True)


class EAVersionCreatedSchema(Schema):
    id = fields.UUID(required=True)
    ea_id = fields.UUID(required=True)
    version = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(VERSION_STATUSES))
    compile_job_id = fields.UUID(required=True)
    created_at = fields.DateTime(required=True)


class EAVersionSchema(Schema):
    id = fields.UUID(required=True)
    ea_id = fields.UUID(required=True)
    ea_name = fields.String(required=True)
    version = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(VERSION_STATUSES))
    artifact_storage_path = fields.String(allow_none=True)
    error_message = fields.String(allow_none=True)
    created_at = fields.DateTime(required=True)


class BrokerConnectionCreateSchema(Schema):
    """No password field, on purpose: broker credentials live on the agent."""

    name = text(1, 100, required=True)
    server = text(1, 100, required=True)
    login = text(1, 64, required=True)


class BrokerConnectionSchema(Schema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    server = fields.String(required=True)
    login = fields.String(required=True)
    created_at = fields.DateTime(required=True)
