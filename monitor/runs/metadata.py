"""What is known about a call besides its audio, from wherever it comes: a file-name
pattern, a JSON sidecar beside the recording, a manifest row, an upload form. One parser
(``metadata_from_fields``) turns any of them into CallMetadata plus the extra fields
(phone numbers, team …) that are kept with the call as given.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from monitor.errors import InputError, MonitorError
from monitor.models import DIRECTIONS
from monitor.times import parse_started_at

METADATA_FIELDS = ("call_id", "started_at", "collector_id", "debtor_id", "direction", "caller_number", "callee_number")
_KNOWN = ("path", "call_id", "started_at", "collector_id", "debtor_id", "direction")


@dataclass(frozen=True)
class CallMetadata:
    """What is known about a call besides its audio (from a manifest, a form, a file)."""

    call_id: str | None = None
    started_at: datetime | None = None
    collector_id: str | None = None
    debtor_id: str | None = None
    direction: str = "outbound"


@dataclass(frozen=True)
class Job:
    """One recording to analyse and what is known about it."""

    path: str
    metadata: CallMetadata = CallMetadata()
    extra: dict = field(default_factory=dict)  # phone numbers and other fields, kept as given
    sha256: str | None = None


def metadata_from_fields(fields: dict, zone: ZoneInfo, where: str) -> tuple[CallMetadata, dict]:
    """Known fields as CallMetadata, the rest (phone numbers …) as extra. Raises
    InputError naming ``where`` and the field."""
    started = fields.get("started_at")
    direction = fields.get("direction") or "outbound"
    if direction not in DIRECTIONS:
        raise InputError(f"{where}: direction must be outbound or inbound, not {direction!r}")
    started_at = parse_started_at(str(started), zone, f"{where}: started_at") if started else None
    if started_at is not None and not 1900 <= started_at.year <= 2200:
        # A year 1 start overflows every UTC conversion downstream; refuse it here, named.
        raise InputError(f"{where}: started_at {started!r} is not a plausible call time")
    metadata = CallMetadata(
        call_id=str(fields["call_id"]) if fields.get("call_id") else None,
        started_at=started_at,
        collector_id=str(fields["collector_id"]) if fields.get("collector_id") else None,
        debtor_id=str(fields["debtor_id"]) if fields.get("debtor_id") else None,
        direction=direction,
    )
    extra = {k: v for k, v in fields.items() if k not in _KNOWN and v not in (None, "")}
    return metadata, extra


def fields_from_filename(name: str, pattern: str | re.Pattern | None) -> dict:
    """The named groups a file-name pattern (``MONITOR_FILENAME_PATTERN``) finds in a name."""
    if not pattern:
        return {}
    match = re.compile(pattern).search(Path(name).name)
    return {k: v for k, v in match.groupdict().items() if v} if match else {}


def metadata_from_form(fields: dict, zone: ZoneInfo, filename_pattern: str | None, filename: str) -> tuple[CallMetadata, dict]:
    """CallMetadata and extra fields from a form (empty values ignored), over what the
    file name tells. Raises InputError."""
    given = {k: v.strip() if isinstance(v, str) else v for k, v in fields.items()}
    given = {k: v for k, v in given.items() if v not in (None, "")}
    return metadata_from_fields({**fields_from_filename(filename, filename_pattern), **given}, zone, "form")


def sidecar_of(path: Path) -> Path | None:
    """The JSON file beside a recording (``call.wav.json`` or ``call.json``), if any."""
    for candidate in (path.with_name(path.name + ".json"), path.with_suffix(".json")):
        if candidate.is_file() and candidate != path:
            return candidate
    return None


def read_sidecar(sidecar: Path) -> dict:
    try:
        loaded = json.loads(sidecar.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{sidecar}: not valid JSON ({error})") from None
    if not isinstance(loaded, dict):
        raise InputError(f"{sidecar}: expected a JSON object")
    return loaded


def manifest_rows(source: Path) -> list[tuple[str, dict]]:
    """``(where, fields)`` per manifest row (CSV with a header, or JSON Lines); a row that
    cannot be used has ``{"error": reason}`` as its fields."""
    rows: list[tuple[str, dict]] = []
    try:
        text = source.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise MonitorError(f"{source}: not UTF-8 text ({error.reason})") from None
    if source.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or "path" not in reader.fieldnames:
            raise MonitorError(f"{source}:1: a manifest needs a 'path' column (and may have {', '.join(METADATA_FIELDS)})")
        for number, row in enumerate(reader, start=2):
            rows.append((f"{source}:{number}", row if row.get("path") else {"error": "missing path"}))
        return rows
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            rows.append((where, {"error": f"not valid JSON ({error.msg})"}))
            continue
        rows.append((where, row if isinstance(row, dict) and row.get("path") else {"error": "missing path"}))
    return rows


def metadata_to_json(metadata: CallMetadata, extra: dict) -> str:
    """Metadata kept with a queued upload, read back by ``metadata_from_json``."""
    return json.dumps(
        {
            "call_id": metadata.call_id,
            "started_at": metadata.started_at.isoformat() if metadata.started_at else None,
            "collector_id": metadata.collector_id,
            "debtor_id": metadata.debtor_id,
            "direction": metadata.direction,
            "extra": extra,
        },
        ensure_ascii=False,
    )


def metadata_from_json(text: str | None) -> tuple[CallMetadata, dict]:
    data = json.loads(text or "{}")
    started = data.get("started_at")
    return (
        CallMetadata(
            call_id=data.get("call_id"),
            started_at=datetime.fromisoformat(started) if started else None,
            collector_id=data.get("collector_id"),
            debtor_id=data.get("debtor_id"),
            direction=data.get("direction") or "outbound",
        ),
        data.get("extra") or {},
    )
