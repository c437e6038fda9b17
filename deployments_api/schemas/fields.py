"""Fields that accept exactly the JSON types the OpenAPI document promises."""

import re
from decimal import ROUND_HALF_EVEN, Decimal
from zoneinfo import available_timezones

from marshmallow import Schema, ValidationError, fields, validate

INT64_MAX = 2**63 - 1
MONEY_LIMIT = Decimal(10) ** 9
MONEY_CENT = Decimal("0.01")


class FullMatch(validate.Regexp):
    """Like `Regexp`, but the whole string must match (`$` would allow a trailing newline)."""

    def __call__(self, value):
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


# Postgres cannot store NUL in text; the request guard refuses it anywhere in a body
# (422), and the pattern says so in the document.
NO_NUL = re.compile(r"^[^\x00]*$")


def text(min_length: int, max_length: int, **kwargs) -> fields.String:
    return fields.String(
        validate=[
            validate.Length(min_length, max_length),
            FullMatch(NO_NUL, error="contains a NUL character"),
        ],
        **kwargs,
    )


def strict_int(minimum: int, maximum: int, **kwargs) -> fields.Integer:
    """A JSON integer (not a float, string or bool) within [minimum, maximum]."""
    return fields.Integer(strict=True, validate=validate.Range(minimum, maximum), **kwargs)


class JSONNumber(fields.Decimal):
    """An exact decimal read from a JSON number only (strings and bools are refused)."""

    def _validated(self, value):
        if not isinstance(value, int | float | Decimal) or isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)

    def _serialize(self, value, attr, obj, **kwargs):
        # Only the document dumps with this field (defaults, bounds): as JSON numbers.
        number = super()._serialize(value, attr, obj, **kwargs)
        if number is None:
            return None
        return int(number) if number == number.to_integral_value() else float(number)


def range_exclusivity(_converter, field, **_kwargs) -> dict:
    """apispec attribute function: say when a `Range` bound is exclusive (apispec does not)."""
    attributes = {}
    for validator in field.validators:
        if isinstance(validator, validate.Range):
            if validator.min is not None and not validator.min_inclusive:
                attributes["exclusiveMinimum"] = True
            if validator.max is not None and not validator.max_inclusive:
                attributes["exclusiveMaximum"] = True
    return attributes


def money(**kwargs) -> JSONNumber:
    return JSONNumber(
        places=6,
        rounding=ROUND_HALF_EVEN,
        validate=validate.Range(-MONEY_LIMIT, MONEY_LIMIT),
        metadata={"description": "Amount in account currency (6 decimals kept)."},
        **kwargs,
    )


class Money(fields.Float):
    """Dumps an exact Decimal as a JSON number rounded to 2 decimals (a `number` in the
    document: a Float subclass so apispec says so)."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return float(Decimal(value).quantize(MONEY_CENT, rounding=ROUND_HALF_EVEN))


# Exactly the zones ZoneInfo can load here, listed in the document as an enum so that
# it promises no zone the service would refuse.
TIME_ZONES = tuple(sorted(available_timezones()))


class TimeZoneQuerySchema(Schema):
    tz = fields.String(
        load_default="UTC",
        validate=validate.OneOf(TIME_ZONES, error="Not a known IANA time zone."),
        metadata={"description": "IANA zone whose midnight starts `pnl_today` (default UTC)."},
    )


SYMBOL_PATTERN = re.compile(r"^[A-Za-z0-9._#+\-]{1,32}$")
