from marshmallow import Schema, fields, validate

from ..services.job_effects import JOB_TYPES
from .fields import strict_int, text

JOB_STATUSES = ("pending", "running", "completed", "failed")
MAX_ATTEMPT = 2**31 - 1


class JobSchema(Schema):
    id = fields.UUID(required=True)
    job_type = fields.String(required=True, validate=validate.OneOf(JOB_TYPES))
    status = fields.String(required=True, validate=validate.OneOf(JOB_STATUSES))
    input_data = fields.Dict(required=True)
    output_data = fields.Dict(allow_none=True)
    error_message = fields.String(allow_none=True)
    attempts = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)
    started_at = fields.DateTime(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)


class ClaimRequestSchema(Schema):
    job_types = fields.List(
        fields.String(validate=validate.OneOf(JOB_TYPES)),
        validate=validate.Length(1, len(JOB_TYPES)),
        metadata={"description": "Only claim jobs of these types (default: any)."},
    )


class ClaimedJobSchema(Schema):
    id = fields.UUID(required=True)
    job_type = fields.String(required=True, validate=validate.OneOf(JOB_TYPES))
    input_data = fields.Dict(required=True)
    attempt = fields.Integer(required=True, attribute="attempts")
    lease_expires_at = fields.DateTime(required=True)


class AttemptSchema(Schema):
    attempt = strict_int(
        1, MAX_ATTEMPT, metadata={"description": "The `attempt` the claim returned."}
    )


class LeaseSchema(Schema):
    lease_expires_at = fields.DateTime(required=True)


class JobResultSchema(AttemptSchema):
    status = fields.String(required=True, validate=validate.OneOf(("completed", "failed")))
    output_data = fields.Dict(
        keys=fields.String(),
        allow_none=True,
        metadata={
            "description": "Any JSON object; no key or string in it may contain NUL (else 422)."
        },
    )
    error_message = text(1, 10000, allow_none=True)


class AgentSchema(Schema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    last_seen_at = fields.DateTime(allow_none=True)
    jobs_in_flight = fields.Integer(required=True)
