"""`monitor scan`: run the rules over transcripts given as JSON Lines (see the contract in
shared/contract/scan.md). One output line per input line, in the same order."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Iterator
from zoneinfo import ZoneInfo

from monitor.detection.engine import Engine
from monitor.errors import InputError
from monitor.learning.suspects import with_suspected
from monitor.times import parse_time
from monitor.models import DIRECTIONS, SPEAKERS, Call, CallResult, Turn



@dataclass(frozen=True)
class ParsedLine:
    """One input line: a call to scan, or the error that stopped it being one."""

    number: int
    call: Call | None
    id: object = None
    error: str | None = None


def _text(value, field: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{field}: expected a string")
    return value


def _speaker(value, field: str) -> str:
    if value is None:
        return "unknown"
    if value not in SPEAKERS:
        raise InputError(f"{field}: must be one of {', '.join(SPEAKERS)}, not {value!r}")
    return value


def _seconds(value, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{field}: expected a number of seconds")
    return float(value)


def _optional_str(record: dict, field: str) -> str | None:
    value = record.get(field)
    if value is None:
        return None
    if not isinstance(value, (str, int)):
        raise InputError(f"{field}: expected a string")
    return str(value)


def call_from_record(record, zone: ZoneInfo) -> Call:
    """A scan input record (utterance or call) as a Call. Raises InputError naming the
    field at fault."""
    if not isinstance(record, dict):
        raise InputError("expected a JSON object")
    if "id" not in record or record["id"] is None:
        raise InputError("missing required field 'id'")
    call_id = str(record["id"])
    if "turns" not in record:
        if "text" not in record:
            raise InputError("missing required field 'text' (or 'turns' for a whole call)")
        turn = Turn(_speaker(record.get("speaker"), "speaker"), _text(record["text"], "text"))
        return Call(id=call_id, turns=(turn,), is_utterance=True)
    turns_value = record["turns"]
    if not isinstance(turns_value, list):
        raise InputError("turns: expected a list")
    turns = []
    for i, item in enumerate(turns_value):
        where = f"turns[{i}]"
        if not isinstance(item, dict):
            raise InputError(f"{where}: expected an object")
        if "text" not in item:
            raise InputError(f"{where}: missing required field 'text'")
        turns.append(
            Turn(
                speaker=_speaker(item.get("speaker"), f"{where}.speaker"),
                text=_text(item["text"], f"{where}.text"),
                start=_seconds(item.get("start"), f"{where}.start"),
                end=_seconds(item.get("end"), f"{where}.end"),
            )
        )
    direction = record.get("direction") or "outbound"
    if direction not in DIRECTIONS:
        raise InputError(f"direction: must be outbound or inbound, not {direction!r}")
    started = record.get("started_at")
    return Call(
        id=call_id,
        turns=tuple(turns),
        started_at=parse_time(started, zone, "started_at") if started is not None else None,
        collector_id=_optional_str(record, "collector_id"),
        debtor_id=_optional_str(record, "debtor_id"),
        direction=direction,
    )


def parse_lines(lines: Iterable[str], zone: ZoneInfo) -> Iterator[ParsedLine]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            yield ParsedLine(number, None, None, "empty line")
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield ParsedLine(number, None, None, f"line {number}: not valid JSON: {exc.msg} (column {exc.colno})")
            continue
        record_id = record.get("id") if isinstance(record, dict) else None
        try:
            yield ParsedLine(number, call_from_record(record, zone), record_id)
        except InputError as exc:
            yield ParsedLine(number, None, record_id, f"line {number}: {exc}")


def earlier_calls_by_call(calls: list[Call], history: Iterable[Call] = ()) -> dict[int, list[Call]]:
    """For each call (by position), the calls to the same debtor that came before it:
    earlier start, or the same start and earlier in the input. ``history`` holds calls
    stored before this input (they all count as earlier when they started earlier)."""
    by_debtor: dict[str, list[tuple[datetime, int, Call]]] = defaultdict(list)
    for call in history:
        if call.debtor_id and call.started_at:
            by_debtor[call.debtor_id].append((call.started_at, -1, call))
    for index, call in enumerate(calls):
        if call.debtor_id and call.started_at:
            by_debtor[call.debtor_id].append((call.started_at, index, call))
    result: dict[int, list[Call]] = {}
    for index, call in enumerate(calls):
        if not (call.debtor_id and call.started_at):
            continue
        key = (call.started_at, index)
        result[index] = [c for t, i, c in by_debtor[call.debtor_id] if (t, i) < key and c is not call]
    return result


def result_line(result: CallResult) -> dict:
    return {
        "id": result.call.id,
        "categories": result.categories,
        "findings": [f.to_contract() for f in result.findings],
    }


def scan_lines(engine: Engine, lines: Iterable[str], zone: ZoneInfo, model=None) -> Iterator[dict]:
    """Output records for the input lines, in order. A bad line yields {"id", "error"}.
    With a risk ``model`` each record also gets ``suspected`` (see learning.suspects)."""
    records = _scanned(engine, lines, zone)
    if model is None:
        return (record for record, _result in records)
    return with_suspected(records, model)


def _scanned(engine: Engine, lines: Iterable[str], zone: ZoneInfo) -> Iterator[tuple[dict, CallResult | None]]:
    parsed = list(parse_lines(lines, zone))
    calls = [p.call for p in parsed if p.call is not None]
    earlier = earlier_calls_by_call(calls)
    position = 0
    for item in parsed:
        if item.call is None:
            yield {"id": item.id, "error": item.error}, None
            continue
        result = engine.scan(item.call, earlier.get(position, ()))
        position += 1
        yield result_line(result), result
