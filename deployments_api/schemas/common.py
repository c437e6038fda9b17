from marshmallow import Schema, fields


class ErrorSchema(Schema):
    detail = fields.String(required=True, metadata={"description": "Stable snake_case error code."})
    message = fields.String(metadata={"description": "Human-readable explanation."})
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Field name -> messages (validation errors)."},
    )
    status = fields.String(metadata={"description": "Current status (409/408 on deployments)."})


class HealthSchema(Schema):
    status = fields.String(required=True)
