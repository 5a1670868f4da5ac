"""Small formatting helpers the documents share: recording offsets, local times with
their time zone, masked account numbers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from monitor import settings
from monitor.times import clock

# A blank the debtor fills in by hand, and one the compliance team completes.
BLANK = "〔请填写〕"
TO_COMPLETE = "〔待填写〕"


def time_range(start: float | None, end: float | None) -> str:
    return "全程" if start is None else f"{clock(start)}–{clock(end)}"


def mask(value: str | None, keep_start: int = 0, keep_end: int = 4) -> str | None:
    """``6222021234567890`` → ``************7890``. Values already masked (holding a
    ``*``) or too short to hide anything are returned as given."""
    if not value:
        return None
    value = str(value).strip()
    if "*" in value or len(value) <= keep_start + keep_end:
        return value
    hidden = len(value) - keep_start - keep_end
    return value[:keep_start] + "*" * hidden + (value[-keep_end:] if keep_end else "")


def mask_id_number(value: str | None) -> str | None:
    """A resident ID keeps its first 3 and last 4 characters: the birth date is hidden."""
    return mask(value, keep_start=3, keep_end=4)


def local_zone() -> ZoneInfo:
    return ZoneInfo(settings.get("timezone"))


def to_local(moment: datetime | None) -> datetime | None:
    """A stored start time in the debtor's local time (the monitor's time-zone setting)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=local_zone())
    return moment.astimezone(local_zone())


def utc_offset(moment: datetime) -> str:
    offset = moment.utcoffset() or timedelta(0)
    sign = "+" if offset >= timedelta(0) else "-"
    minutes = int(abs(offset).total_seconds() // 60)
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def with_zone(moment: datetime, seconds: bool = False) -> str:
    """``2026-11-27 22:40（UTC+08:00，Asia/Shanghai）``: a time a reader in another zone
    cannot misread."""
    shown = moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{shown}（{utc_offset(moment)}，{local_zone().key}）"


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "未知"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} 分 {secs} 秒（{seconds:.1f} 秒）" if minutes else f"{seconds:.1f} 秒"


def years_later(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February, in a year that has none
        return moment.replace(year=moment.year + years, month=3, day=1)


def utc_text(stamp: str | None) -> str | None:
    """A stored UTC timestamp (ISO) for people: ``2026-11-28 08:23:11 UTC``."""
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return stamp


def now_local() -> datetime:
    return datetime.now(timezone.utc).astimezone(local_zone())


def or_blank(value, blank: str = BLANK) -> str:
    return blank if value in (None, "") else str(value)


def item_numbers(numbers: list[int]) -> str:
    return "第" + "、".join(str(n) for n in numbers) + "项"
