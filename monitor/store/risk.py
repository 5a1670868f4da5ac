"""The risk model's records: each turn's risk per category, suspected lines and the
reviewers' decisions on them, and the decisions the model learns from.

A suspected line is never a finding. Confirming one records a finding with rule
``reviewer`` (the category, the turn, the reviewer's name and note in its review) in
the same transaction; only then does it reach exports and documents.
"""

from __future__ import annotations

import json

from monitor.audit import Action
from monitor.store.calls import SEVERITY_RANK
from monitor.store.database import Database, StoreError, now
from monitor.store.schema import LATEST_DECISION

REVIEWER_RULE = "reviewer"
# The call's risk and the category behind it, for the risk-ordered queue.
_CALL_RISK = "(SELECT max(r.score) FROM turn_risk r WHERE r.call_id = c.id)"
_CALL_RISK_CATEGORY = (
    "(SELECT r.category FROM turn_risk r WHERE r.call_id = c.id ORDER BY r.score DESC, r.idx LIMIT 1)"
)
_OPEN_SUSPECTED = "(SELECT count(*) FROM suspected s WHERE s.call_id = c.id AND s.active = 1 AND s.decision IS NULL)"
_ACTIVE_FINDINGS = "(SELECT count(*) FROM findings f WHERE f.call_id = c.id AND f.active = 1)"


class RiskRecords(Database):
    def save_assessment(self, call_id: str, model_version: str, risks, suspected) -> None:
        """Replace a call's turn risks; keep its suspected lines in step. ``risks`` are
        (turn, category, score), ``suspected`` (turn, category, score, threshold).
        Lines no longer suspected are kept inactive, with any decision on them."""
        with self._write():
            self.db["turn_risk"].delete_where("call_id = ?", [call_id])
            self.db["turn_risk"].insert_all(
                {"call_id": call_id, "idx": turn, "category": category, "score": score, "model_version": model_version}
                for turn, category, score in risks
            )
            self.db.execute("UPDATE suspected SET active = 0, updated_at = ? WHERE call_id = ? AND active = 1",
                            [now(), call_id])
            for turn, category, score, threshold in suspected:
                suspect_id = f"{call_id}:{turn}:{category}"
                row = {"id": suspect_id, "call_id": call_id, "turn": turn, "category": category, "score": score,
                       "threshold": threshold, "model_version": model_version, "active": 1, "updated_at": now()}
                if self.db.execute("SELECT 1 FROM suspected WHERE id = ?", [suspect_id]).fetchone():
                    self.db["suspected"].update(suspect_id, row)  # a decision on it stays
                else:
                    self.db["suspected"].insert(row | {"created_at": now()})

    def turn_risks(self, call_id: str) -> list[dict]:
        return list(self.db.query("SELECT * FROM turn_risk WHERE call_id = ? ORDER BY idx, category", [call_id]))

    def call_risk(self, call_id: str) -> float | None:
        """A call's risk: the highest of its turns' (None: not scored)."""
        return self.db.execute("SELECT max(score) FROM turn_risk WHERE call_id = ?", [call_id]).fetchone()[0]

    def suspected_lines(self, call_id: str | None = None, active_only: bool = True) -> list[dict]:
        """Suspected lines with their turn's speaker, text and times, highest score first."""
        where, params = [], []
        if call_id is not None:
            where.append("s.call_id = ?")
            params.append(call_id)
        if active_only:
            where.append("(s.active = 1 OR s.decision IS NOT NULL)")
        sql = ("SELECT s.*, t.speaker, t.text, t.start, t.end FROM suspected s"
               " JOIN turns t ON t.call_id = s.call_id AND t.idx = s.turn"
               + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY s.call_id, s.score DESC, s.turn")
        return list(self.db.query(sql, params))

    def suspect(self, suspect_id: str) -> dict | None:
        rows = [r for r in self.suspected_lines(active_only=False) if r["id"] == suspect_id]
        return rows[0] if rows else None

    def decide_suspected(self, suspect_id: str, decision: str, reviewer: str, note: str = "",
                         severity: str = "high", legal_basis: tuple[str, ...] = ()) -> str | None:
        """Record a reviewer's decision on a suspected line. Confirming it records a
        finding (rule ``reviewer``, with ``severity`` and ``legal_basis``) and the
        reviewer's confirmation of it; returns the finding id (None on dismissal)."""
        if decision not in ("confirmed", "dismissed"):
            raise StoreError(f"decision must be confirmed or dismissed, not {decision!r}")
        with self._write():
            row = self.suspect(suspect_id)
            if row is None:
                raise StoreError(f"no suspected line with id {suspect_id!r}")
            if row["decision"] == "confirmed":
                raise StoreError(f"suspected line {suspect_id} is already confirmed as finding {row['finding_id']}; "
                                 "decide on that finding instead")
            finding_id = None
            if decision == "confirmed":
                finding_id = f"{row['call_id']}:{row['turn']}:{REVIEWER_RULE}:{row['category']}"
                self.db["findings"].upsert(
                    {
                        "id": finding_id, "call_id": row["call_id"], "turn": row["turn"], "rule": REVIEWER_RULE,
                        "category": row["category"], "severity": severity, "start": row["start"], "end": row["end"],
                        "evidence": row["text"], "matched": None, "speaker_verified": int(row["speaker"] == "collector"),
                        "legal_basis": json.dumps(list(legal_basis), ensure_ascii=False),
                        "rules_version": f"model {row['model_version']}", "active": 1,
                        "created_at": now(), "updated_at": now(),
                    },
                    pk="id",
                )
                self.db["reviews"].insert({"finding_id": finding_id, "decision": "confirmed", "note": note,
                                           "reviewer": reviewer, "decided_at": now()})
                self._refresh_call_categories(row["call_id"])
            self.db["suspected"].update(
                suspect_id, {"decision": decision, "reviewer": reviewer, "note": note, "decided_at": now(),
                             "finding_id": finding_id, "updated_at": now()},
            )
            self._audit(reviewer, Action.SUSPECT_CONFIRMED if decision == "confirmed" else Action.SUSPECT_DISMISSED, suspect_id,
                        {"note": note, "category": row["category"], "score": row["score"], "finding_id": finding_id})
            return finding_id

    def _refresh_call_categories(self, call_id: str) -> None:
        rows = self.db.execute("SELECT category, severity FROM findings WHERE call_id = ? AND active = 1",
                               [call_id]).fetchall()
        severities = [s for _, s in rows]
        self.db["calls"].update(call_id, {
            "categories": json.dumps(sorted({c for c, _ in rows})),
            "max_severity": max(severities, key=SEVERITY_RANK.get) if severities else None,
        })

    # -- queue, learning, suggestions ---------------------------------------------------

    def risk_queue(self, suggested_only: bool = False, limit: int = 500) -> list[dict]:
        """Scored calls, highest risk first, with their open suspected lines and active
        findings. ``suggested`` (建议抽查): suspected lines but no finding at all."""
        where = ["c.status = 'done'", f"{_CALL_RISK} IS NOT NULL"]
        if suggested_only:
            where += [f"{_OPEN_SUSPECTED} > 0", f"{_ACTIVE_FINDINGS} = 0"]
        rows = list(self.db.query(
            f"""SELECT c.id, c.started_at, c.created_at, c.collector_id, c.debtor_id, c.origin, c.categories,
                       c.max_severity, {_CALL_RISK} AS risk, {_CALL_RISK_CATEGORY} AS risk_category,
                       {_OPEN_SUSPECTED} AS suspected, {_ACTIVE_FINDINGS} AS findings,
                       (SELECT count(*) FROM findings f WHERE f.call_id = c.id AND f.active = 1
                        AND {LATEST_DECISION} IS NULL) AS unreviewed
                FROM calls c WHERE {' AND '.join(where)}
                ORDER BY risk DESC, coalesce(c.started_utc, c.created_at) DESC, c.id LIMIT ?""",
            [limit],
        ))
        for row in rows:
            row["categories"] = json.loads(row["categories"] or "[]")
            row["suggested"] = bool(row["suspected"]) and not row["findings"]
        return rows

    def learning_decisions(self) -> list[dict]:
        """Every latest decision on a turn: call_id, turn, speaker, text, category and
        label (True: confirmed violation, False: dismissed). A confirmed suspected line
        appears once, as its finding."""
        found = {}
        for row in self.db.query(
            f"""SELECT f.call_id, f.turn, f.category, t.speaker, t.text, {LATEST_DECISION} AS decision
                FROM findings f JOIN turns t ON t.call_id = f.call_id AND t.idx = f.turn
                WHERE f.turn IS NOT NULL AND {LATEST_DECISION} IS NOT NULL ORDER BY f.id"""
        ):
            found[(row["call_id"], row["turn"], row["category"])] = row | {"label": row["decision"] == "confirmed"}
        for row in self.db.query(
            "SELECT s.call_id, s.turn, s.category, t.speaker, t.text, s.decision FROM suspected s"
            " JOIN turns t ON t.call_id = s.call_id AND t.idx = s.turn WHERE s.decision = 'dismissed' ORDER BY s.id"
        ):
            found.setdefault((row["call_id"], row["turn"], row["category"]), row | {"label": False})
        return list(found.values())

    def confirmed_suspected(self) -> list[dict]:
        """Suspected lines a reviewer confirmed, with the reviewer's note."""
        return [r for r in self.suspected_lines(active_only=False) if r["decision"] == "confirmed"]

    def dismissed_findings(self) -> list[dict]:
        """Rule findings whose latest decision is a dismissal, with the turn's speaker,
        the reviewer and the note."""
        return list(self.db.query(
            f"""SELECT f.id, f.call_id, f.turn, f.rule, f.category, f.evidence, t.speaker,
                       (SELECT r.reviewer FROM reviews r WHERE r.finding_id = f.id ORDER BY r.id DESC LIMIT 1) AS reviewer,
                       (SELECT r.note FROM reviews r WHERE r.finding_id = f.id ORDER BY r.id DESC LIMIT 1) AS note
                FROM findings f LEFT JOIN turns t ON t.call_id = f.call_id AND t.idx = f.turn
                WHERE f.rule != ? AND {LATEST_DECISION} = 'dismissed' ORDER BY f.rule, f.call_id, f.turn""",
            [REVIEWER_RULE],
        ))
