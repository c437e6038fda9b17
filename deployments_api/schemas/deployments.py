from marshmallow import Schema, fields, validate

from ..states import STATUSES
from .fields import (
    INT64_MAX,
    SYMBOL_PATTERN,
    FullMatch,
    JSONNumber,
    Money,
    TimeZoneQuerySchema,
    money,
    strict_int,
)

TIMEFRAMES = (
    *("M1", "M2", "M3", "M4", "M5", "M6", "M10", "M12", "M15", "M20", "M30"),
    *("H1", "H2", "H3", "H4", "H6", "H8", "H12", "D1", "W1", "MN1"),
)
EVENT_KINDS = ("created", "transition", "job_result", "lease_expired", "refused")
EVENT_SOURCES = ("api", "agent", "reaper")


def symbol(**kwargs) -> fields.String:
    return fields.String(
        validate=FullMatch(SYMBOL_PATTERN, error="1-32 letters, digits or ._#+-"),
        metadata={"example": "EURUSD"},
        **kwargs,
    )


class DeploymentCreateSchema(Schema):
    ea_version_id = fields.UUID(required=True)
    broker_connection_id = fields.UUID(required=True)
    symbol = symbol(required=True)
    timeframe = fields.String(required=True, validate=validate.OneOf(TIMEFRAMES))
    magic_number = strict_int(
        1,
        INT64_MAX,
        allow_none=True,
        metadata={"description": "Omit to get the smallest free number on the connection."},
    )


class DeploymentCreatedSchema(Schema):
    deployment_id = fields.UUID(required=True)
    job_id = fields.UUID(required=True)


class DeploymentSchema(Schema):
    id = fields.UUID(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    ea_id = fields.UUID(required=True)
    ea_name = fields.String(required=True)
    ea_version_id = fields.UUID(required=True)
    version = fields.String(required=True)
    broker_connection_id = fields.UUID(required=True)
    symbol = fields.String(required=True)
    timeframe = fields.String(required=True)
    magic_number = fields.Integer(required=True)
    trade_count = fields.Integer(required=True)
    pnl_today = Money(required=True)
    last_error = fields.String(allow_none=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class DeploymentListQuerySchema(TimeZoneQuerySchema):
    status = fields.String(validate=validate.OneOf(STATUSES))


class WaitQuerySchema(TimeZoneQuerySchema):
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    timeout = fields.Integer(load_default=30, validate=validate.Range(1, 60))


class MoveAcceptedSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    job_id = fields.UUID(required=True)


class LogsQuerySchema(Schema):
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 100))


class LogEntrySchema(Schema):
    job_id = fields.UUID(required=True, attribute="id")
    job_type = fields.String(required=True)
    status = fields.String(required=True)
    output_data = fields.Dict(allow_none=True)
    error_message = fields.String(allow_none=True)
    created_at = fields.DateTime(required=True)
    completed_at = fields.DateTime(allow_none=True)


class EventSchema(Schema):
    id = fields.UUID(required=True)
    at = fields.DateTime(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(EVENT_KINDS))
    from_status = fields.String(allow_none=True)
    to_status = fields.String(allow_none=True)
    trigger = fields.String(allow_none=True)
    source = fields.String(required=True, validate=validate.OneOf(EVENT_SOURCES))
    job_id = fields.UUID(allow_none=True)
    message = fields.String(allow_none=True)


class TradeSchema(Schema):
    ticket = strict_int(1, INT64_MAX, required=True)
    symbol = symbol(required=True)
    volume = JSONNumber(
        required=True,
        places=None,
        validate=validate.Range(0, 10**9, min_inclusive=False),
    )
    profit = money(required=True)
    swap = money(load_default=0)
    commission = money(load_default=0)
    closed_at = fields.AwareDateTime(
        required=True, format="iso", metadata={"description": "ISO 8601 with an offset."}
    )


class TradesSchema(Schema):
    trades = fields.List(
        fields.Nested(TradeSchema), required=True, validate=validate.Length(1, 1000)
    )


class TradesAcceptedSchema(Schema):
    accepted = fields.Integer(required=True)
