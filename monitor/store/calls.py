"""Calls, their turns and findings, and reviewers' decisions.

A call is known by the SHA-256 of its recording, so storing the same recording twice is
a no-op: that is what makes a batch idempotent and resumable. Call status:
``transcribed`` (turns stored, rules not yet run), ``done`` (findings stored),
``failed`` (the recording could not be analysed; ``error`` says why).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from monitor.audit import Action
from monitor.models import Call, CallResult, Finding, Turn
from monitor.store.database import StoreError, iso as _iso, now
from monitor.store.schema import LATEST_DECISION
from monitor.store.signals import SignalRecords

SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}


@dataclass(frozen=True)
class StoredFinding:
    id: str
    call_id: str
    finding: Finding
    rules_version: str
    active: bool
    decision: str | None = None  # latest review: confirmed | dismissed | None


class CallRecords(SignalRecords):
    # -- calls --------------------------------------------------------------------------

    def status_of(self, sha256: str) -> str | None:
        row = self.db.execute("SELECT status FROM calls WHERE sha256 = ?", [sha256]).fetchone()
        return row[0] if row else None

    def known_hashes(self) -> dict[str, str]:
        """sha256 → status for every stored call."""
        return dict(self.db.execute("SELECT sha256, status FROM calls").fetchall())

    def _unique_id(self, wanted: str, sha256: str) -> str:
        row = self.db.execute("SELECT sha256 FROM calls WHERE id = ?", [wanted]).fetchone()
        if row is None or row[0] == sha256:
            return wanted
        return f"{wanted}-{sha256[:8]}"  # two different recordings with the same name

    def save_transcript(self, call: Call, origin: str = "batch", extra: dict | None = None) -> str:
        """Store a transcribed call (status ``transcribed``) and its turns. Storing the
        same recording again replaces nothing and returns the stored id."""
        with self._write():
            existing = self.db.execute("SELECT id, status FROM calls WHERE sha256 = ?", [call.sha256]).fetchone()
            if existing and existing[1] in ("transcribed", "done"):
                return existing[0]
            call_id = existing[0] if existing else self._unique_id(call.id, call.sha256)
            extra = extra or {}
            self.db["calls"].upsert(
                {
                    "id": call_id, "sha256": call.sha256, "source": call.source, "origin": origin,
                    "status": "transcribed", "error": None, "duration": call.duration,
                    "started_at": _iso(call.started_at),
                    "started_utc": _iso(call.started_at.astimezone(timezone.utc)) if call.started_at else None,
                    "collector_id": call.collector_id, "debtor_id": call.debtor_id, "direction": call.direction,
                    "caller_number": extra.get("caller_number"), "callee_number": extra.get("callee_number"),
                    "metadata": json.dumps(extra, ensure_ascii=False) if extra else None,
                    "created_at": now(), "updated_at": now(),
                },
                pk="id",
            )
            self.db["turns"].delete_where("call_id = ?", [call_id])
            self.db["turns"].insert_all(
                {"call_id": call_id, "idx": i, "speaker": t.speaker, "text": t.text, "start": t.start,
                 "end": t.end, "confidence": t.confidence}
                for i, t in enumerate(call.turns)
            )
            self._save_speakers(call_id, call)
            return call_id

    def save_failure(self, sha256: str, source: str, error: str, origin: str = "batch", call_id: str | None = None) -> str:
        """Record a recording that could not be analysed, with the reason."""
        with self._write():
            existing = self.db.execute("SELECT id, status FROM calls WHERE sha256 = ?", [sha256]).fetchone()
            if existing and existing[1] in ("transcribed", "done"):
                return existing[0]
            wanted = call_id or Path(source).stem
            stored_id = existing[0] if existing else self._unique_id(wanted, sha256)
            self.db["calls"].upsert(
                {"id": stored_id, "sha256": sha256, "source": source, "origin": origin, "status": "failed",
                 "error": error, "created_at": now(), "updated_at": now()},
                pk="id",
            )
            return stored_id

    def save_findings(self, call_id: str, result: CallResult, rules_version: str) -> None:
        """Store the findings of one scan; findings no longer raised are kept but marked
        inactive (a reviewer may have decided on them). Sets the call ``done``."""
        with self._write():
            current = {}
            for finding in result.findings:
                finding_id = f"{call_id}:{'call' if finding.turn is None else finding.turn}:{finding.rule}"
                current[finding_id] = finding
            # A finding a reviewer recorded from a suspected line (rule "reviewer") is not
            # the rules' to withdraw: it stays active, and counts in the call's categories.
            self.db.execute(
                "UPDATE findings SET active = 0, updated_at = ? WHERE call_id = ? AND active = 1 AND rule != 'reviewer'",
                [now(), call_id],
            )
            kept = self.db.execute(
                "SELECT category, severity FROM findings WHERE call_id = ? AND active = 1 AND rule = 'reviewer'", [call_id]
            ).fetchall()
            for finding_id, f in current.items():
                self.db["findings"].upsert(
                    {
                        "id": finding_id, "call_id": call_id, "turn": f.turn, "rule": f.rule, "category": f.category,
                        "severity": f.severity, "start": f.start, "end": f.end, "evidence": f.evidence,
                        "matched": f.matched, "speaker_verified": int(f.speaker_verified),
                        "legal_basis": json.dumps(list(f.legal_basis), ensure_ascii=False),
                        "rules_version": rules_version, "active": 1, "created_at": now(), "updated_at": now(),
                    },
                    pk="id",
                )
            severities = [f.severity for f in current.values()] + [severity for _, severity in kept]
            self.db["calls"].update(
                call_id,
                {
                    "status": "done", "rules_version": rules_version, "updated_at": now(),
                    "categories": json.dumps(sorted({f.category for f in current.values()} | {c for c, _ in kept})),
                    "max_severity": max(severities, key=SEVERITY_RANK.get) if severities else None,
                },
            )

    def call(self, call_id: str) -> Call:
        row = self.call_row(call_id)
        if row is None:
            raise StoreError(f"no call with id {call_id!r}")
        return self._call_from_row(row)

    def call_row(self, call_id: str) -> dict | None:
        rows = list(self.db.query("SELECT * FROM calls WHERE id = ?", [call_id]))
        return rows[0] if rows else None

    def _call_from_row(self, row: dict) -> Call:
        turns = tuple(
            Turn(r["speaker"], r["text"], r["start"], r["end"], r["confidence"], **self._turn_fields(r))
            for r in self.db.query("SELECT * FROM turns WHERE call_id = ? ORDER BY idx", [row["id"]])
        )
        return Call(
            id=row["id"], turns=turns,
            started_at=datetime.fromisoformat(row["started_at"]) if row["started_at"] else None,
            collector_id=row["collector_id"], debtor_id=row["debtor_id"], direction=row["direction"] or "outbound",
            sha256=row["sha256"], duration=row["duration"], source=row["source"],
            **self._speaker_fields(row),
        )

    def calls_with_status(self, *statuses: str) -> list[Call]:
        marks = ", ".join("?" for _ in statuses)
        rows = self.db.query(f"SELECT * FROM calls WHERE status IN ({marks}) ORDER BY started_utc, id", list(statuses))
        return [self._call_from_row(r) for r in rows]

    def earlier_calls(self, call: Call) -> list[Call]:
        """Stored calls to the same debtor that started before ``call`` (or at the same
        moment with a smaller id): the history the frequency rule counts."""
        if not (call.debtor_id and call.started_at):
            return []
        moment = _iso(call.started_at.astimezone(timezone.utc))
        rows = self.db.query(
            "SELECT id, started_at, debtor_id, direction FROM calls WHERE debtor_id = ? AND status != 'failed'"
            " AND started_utc IS NOT NULL AND (started_utc < ? OR (started_utc = ? AND id < ?))",
            [call.debtor_id, moment, moment, call.id],
        )
        return [
            Call(id=r["id"], turns=(), started_at=datetime.fromisoformat(r["started_at"]),
                 debtor_id=r["debtor_id"], direction=r["direction"] or "outbound")
            for r in rows
        ]

    def counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT status, count(*) FROM calls GROUP BY status").fetchall())

    # -- findings, reviews, audit -------------------------------------------------------

    def findings(self, call_id: str | None = None, active_only: bool = True) -> list[StoredFinding]:
        where, params = [], []
        if call_id is not None:
            where.append("f.call_id = ?")
            params.append(call_id)
        if active_only:
            where.append("f.active = 1")
        sql = (
            f"SELECT f.*, {LATEST_DECISION} AS decision"
            " FROM findings f" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY f.call_id, f.turn, f.rule"
        )
        return [self._finding_from_row(r) for r in self.db.query(sql, params)]

    @staticmethod
    def _finding_from_row(row: dict) -> StoredFinding:
        finding = Finding(
            rule=row["rule"], category=row["category"], severity=row["severity"], turn=row["turn"],
            start=row["start"], end=row["end"], evidence=row["evidence"],
            speaker_verified=bool(row["speaker_verified"]), legal_basis=tuple(json.loads(row["legal_basis"] or "[]")),
            matched=row["matched"],
        )
        return StoredFinding(row["id"], row["call_id"], finding, row["rules_version"], bool(row["active"]), row.get("decision"))

    def latest_review(self, finding_id: str) -> dict | None:
        """The latest decision on a finding (reviewer, decided_at, note, decision)."""
        rows = list(self.db.query("SELECT * FROM reviews WHERE finding_id = ? ORDER BY id DESC LIMIT 1", [finding_id]))
        return rows[0] if rows else None

    def first_detected(self, finding_ids: list[str]) -> str | None:
        """When the earliest of these findings was stored."""
        marks = ", ".join("?" for _ in finding_ids)
        row = self.db.execute(f"SELECT min(created_at) FROM findings WHERE id IN ({marks})", finding_ids).fetchone()
        return row[0] if row else None

    def count_calls_to_debtor(self, debtor_id: str, since: datetime, until: datetime) -> int:
        """Stored calls (not failed) to one debtor that started in [since, until)."""
        return self.db.execute(
            "SELECT count(*) FROM calls WHERE debtor_id = ? AND status != 'failed' AND started_utc >= ? AND started_utc < ?",
            [debtor_id, since.astimezone(timezone.utc).isoformat(), until.astimezone(timezone.utc).isoformat()],
        ).fetchone()[0]

    def review(self, finding_id: str, decision: str, reviewer: str, note: str = "") -> None:
        if decision not in ("confirmed", "dismissed"):
            raise StoreError(f"decision must be confirmed or dismissed, not {decision!r}")
        with self._write():
            if self.db.execute("SELECT 1 FROM findings WHERE id = ?", [finding_id]).fetchone() is None:
                raise StoreError(f"no finding with id {finding_id!r}")
            self.db["reviews"].insert(
                {"finding_id": finding_id, "decision": decision, "note": note, "reviewer": reviewer, "decided_at": now()}
            )
            self._audit(reviewer, Action(f"finding.{decision}"), finding_id, {"note": note})

