"""Call times and recording clocks: one place that parses the times calls come with and
shows them to people.

Call start times arrive as ISO 8601 (scan input, forms, sidecars) or compact
(``20260408T231500`` in archive file names); a time without a UTC offset is in the
deployment's time zone (the ``timezone`` setting). Recording clocks are seconds into
the recording, shown as ``mm:ss.s``.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from monitor import settings
from monitor.errors import InputError

_COMPACT_TIME = ("%Y%m%dT%H%M%S", "%Y%m%d-%H%M%S", "%Y%m%d_%H%M%S", "%Y%m%d%H%M%S", "%Y%m%d-%H%M", "%Y%m%d")


def local_zone() -> ZoneInfo:
    """The deployment's time zone (``MONITOR_TIMEZONE``)."""
    return ZoneInfo(settings.get("timezone"))


def parse_time(value, zone: ZoneInfo, field: str) -> datetime:
    """An ISO 8601 date-time; without an offset it is taken to be in ``zone``. Raises
    InputError naming ``field``."""
    if not isinstance(value, str):
        raise InputError(f"{field}: expected an ISO 8601 date-time string")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{field}: not an ISO 8601 date-time: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def parse_started_at(value: str, zone: ZoneInfo, where: str) -> datetime:
    """A call's start as written in archives: compact (``20260408T231500``) or ISO 8601."""
    for pattern in _COMPACT_TIME:
        try:
            return datetime.strptime(value, pattern).replace(tzinfo=zone)
        except ValueError:
            continue
    return parse_time(value, zone, where)


def clock(seconds: float | None, missing: str = "—") -> str:
    """Seconds into the recording as ``mm:ss.s`` (``h:mm:ss.s`` past an hour)."""
    if seconds is None:
        return missing
    seconds = max(0.0, seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours >= 1:
        return f"{int(hours)}:{int(minutes):02d}:{secs:04.1f}"
    return f"{int(minutes):02d}:{secs:04.1f}"
