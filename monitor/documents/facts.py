"""What both documents read from the store about one call: its record, its findings as
facts, and the incidents they form (one sentence that breaks several rules is one
incident, with one clip)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from monitor.errors import MonitorError
from monitor.labels import CATEGORY_LABELS, SEVERITY_LABELS
from monitor.models import Call, Finding
from monitor.store import Store, StoredFinding

from .clauses import cited_clauses, rule_texts
from .formatting import time_range, to_local


class ReportError(MonitorError):
    """A report cannot be made from what the store holds, or cannot be rendered."""


@dataclass(frozen=True)
class CallRecord:
    call: Call
    row: dict
    metadata: dict  # the JSON sidecar / manifest fields kept as given (numbers, agency …)

    def meta(self, *keys: str) -> str | None:
        for key in keys:
            value = self.row.get(key) if key in self.row else self.metadata.get(key)
            if value not in (None, ""):
                return str(value)
        return None

    @property
    def started(self) -> datetime | None:
        """The call's start in the debtor's local time: the parsed start, else the
        stored column, else a started_at in the metadata."""
        if self.call.started_at is not None:
            return to_local(self.call.started_at)
        for value in (self.row.get("started_at"), self.metadata.get("started_at")):
            if value:
                try:
                    return to_local(datetime.fromisoformat(str(value)))
                except ValueError:
                    continue
        return None

    @property
    def recording_name(self) -> str:
        return Path(self.row["source"]).name if self.row.get("source") else f"{self.call.id}（原始文件名未知）"


def load_call(store: Store, call_id: str) -> CallRecord:
    row = store.call_row(call_id)
    if row is None:
        raise ReportError(f"no call with id {call_id!r} in {store.path}")
    if row["status"] != "done":
        state = f"failed ({row['error']})" if row["status"] == "failed" else "not scanned by the rules yet"
        raise ReportError(f"call {call_id!r} is {state}: there are no findings to report")
    try:
        metadata = json.loads(row["metadata"]) if row["metadata"] else {}
    except json.JSONDecodeError:
        metadata = {}
    return CallRecord(store.call(call_id), row, metadata if isinstance(metadata, dict) else {})


def sorted_findings(findings: list[StoredFinding]) -> list[StoredFinding]:
    # Call-level findings (night call, frequency) first: they describe the whole call.
    return sorted(findings, key=lambda s: (s.finding.start is not None, s.finding.start or 0.0, s.finding.rule))


def _turn_confidence(call: Call, finding: Finding) -> float | None:
    if finding.turn is None or not 0 <= finding.turn < len(call.turns):
        return None
    return call.turns[finding.turn].confidence


def finding_facts(record: CallRecord, stored: StoredFinding, number: int, lender_type: str | None = None) -> dict:
    """What both reports say about one finding; its clauses are chosen for this call's
    date and this lender (clauses.py)."""
    finding = stored.finding
    started = record.started
    said = started + timedelta(seconds=finding.start or 0.0) if started else None
    text = rule_texts().get(finding.rule)
    basis = text.legal_basis if text and text.legal_basis else tuple(finding.legal_basis)
    return {
        "no": number,
        "id": stored.id,
        "rule": finding.rule,
        "title": text.title if text else finding.rule,
        "category": finding.category,
        "category_label": CATEGORY_LABELS.get(finding.category, finding.category),
        "severity": finding.severity,
        "severity_label": SEVERITY_LABELS.get(finding.severity, finding.severity),
        "decision": stored.decision,
        "quote": finding.evidence,
        "matched": finding.matched,
        "turn": finding.turn,
        "is_call_level": finding.start is None,
        "start": finding.start,
        "end": finding.end,
        "at": time_range(finding.start, finding.end),
        "date": said.strftime("%Y-%m-%d") if said else None,
        "time": said.strftime("%H:%M:%S") if said else None,
        "speaker_verified": finding.speaker_verified,
        "confidence": _turn_confidence(record.call, finding),
        "clauses": cited_clauses(basis, call_date=started.date() if started else None,
                                 lender_type=lender_type, matched=finding.matched),
    }


def clip_file_name(number: int, rule: str, start: float) -> str:
    """Where the evidence package stores the clip of the ``number``-th incident; the
    documents name the same file."""
    return f"clips/{number:02d}-{rule}-{start:.2f}s.wav"


def group_incidents(facts: list[dict]) -> list[dict]:
    """Facts grouped into incidents, numbered from 1: findings on the same transcript
    turn (one sentence) form one incident; each call-level finding is its own. Each
    incident lists its facts, the span they cover and its clip file name."""
    incidents: list[dict] = []
    by_turn: dict[int, dict] = {}
    for fact in facts:
        key = fact["turn"] if not fact["is_call_level"] else None
        if key is not None and key in by_turn:
            incident = by_turn[key]
            incident["facts"].append(fact)
            incident["start"] = min(incident["start"], fact["start"])
            incident["end"] = max(incident["end"] if incident["end"] is not None else fact["start"],
                                  fact["end"] if fact["end"] is not None else fact["start"])
            continue
        incident = {"facts": [fact], "start": fact["start"], "end": fact["end"], "is_call_level": fact["is_call_level"]}
        incidents.append(incident)
        if key is not None:
            by_turn[key] = incident
    for number, incident in enumerate(incidents, start=1):
        first = incident["facts"][0]
        incident.update(
            no=number,
            finding_ids=[f["id"] for f in incident["facts"]],
            at=time_range(incident["start"], incident["end"]),
            clip=None if incident["is_call_level"] else clip_file_name(number, first["rule"], incident["start"]),
        )
        for fact in incident["facts"]:
            fact["incident"] = number
            fact["clip"] = incident["clip"]
    return incidents
