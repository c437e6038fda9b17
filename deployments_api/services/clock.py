from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def day_start_in(zone: str) -> datetime:
    """Midnight of today in `zone` (an IANA name, validated by the schema), as UTC."""
    local_now = datetime.now(ZoneInfo(zone))
    midnight = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.astimezone(UTC)
