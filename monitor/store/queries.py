"""The read-only questions the review app, exports and documents ask of the store:
the review queue, dashboard counts, the violations export, transcript search."""

from __future__ import annotations

import json
from typing import Iterator

from monitor.store.calls import SEVERITY_RANK
from monitor.store.database import Database, StoreError
from monitor.store.schema import LATEST_DECISION


class Queries(Database):
    # -- search and export --------------------------------------------------------------

    def search_turns(self, query: str, limit: int = 50) -> list[dict]:
        """Full-text search over transcripts (trigram index: any 3+ character substring)."""
        return list(self.db["turns"].search(query, limit=limit))

    def export_rows(
        self,
        since: str | None = None,
        until: str | None = None,
        category: str | None = None,
        collector: str | None = None,
        review_status: str | None = None,
    ) -> Iterator[dict]:
        """Active findings with their call's metadata, filtered. ``review_status`` is
        confirmed, dismissed or unreviewed; dates compare with the call's local start."""
        where, params = ["f.active = 1"], []
        if since:
            where.append("substr(c.started_at, 1, 10) >= ?")
            params.append(since)
        if until:
            where.append("substr(c.started_at, 1, 10) <= ?")
            params.append(until)
        if category:
            where.append("f.category = ?")
            params.append(category)
        if collector:
            where.append("c.collector_id = ?")
            params.append(collector)
        sql = f"""
            SELECT c.id AS call_id, c.started_at, c.collector_id, c.debtor_id, c.direction, c.source, c.sha256,
                   f.id AS finding_id, f.rule, f.category, f.severity, f.turn, f.start, f.end, f.evidence,
                   f.speaker_verified, f.legal_basis, f.rules_version,
                   {LATEST_DECISION} AS decision,
                   t.speaker, t.speaker_source, t.raised_voice, t.overtalk,
                   c.overtalk_share, c.collector_talk_share
            FROM findings f JOIN calls c ON c.id = f.call_id
            LEFT JOIN turns t ON t.call_id = f.call_id AND t.idx = f.turn
            WHERE {' AND '.join(where)}
            ORDER BY c.started_utc, c.id, f.turn, f.rule"""
        for row in self.db.query(sql, params):
            status = row["decision"] or "unreviewed"
            if review_status and status != review_status:
                continue
            row["review_status"] = status
            yield row


    def finding_counts(self, since: str | None = None, until: str | None = None) -> list[dict]:
        """Active findings counted by category, collector, day (the call's local start,
        else when it was stored) and latest decision (None: unreviewed)."""
        day = "substr(coalesce(c.started_at, c.created_at), 1, 10)"
        where, params = ["f.active = 1"], []
        if since:
            where.append(f"{day} >= ?")
            params.append(since)
        if until:
            where.append(f"{day} <= ?")
            params.append(until)
        return list(self.db.query(
            f"SELECT f.category, c.collector_id, {day} AS day,"
            f" {LATEST_DECISION} AS decision,"
            f" count(*) AS n FROM findings f JOIN calls c ON c.id = f.call_id WHERE {' AND '.join(where)}"
            " GROUP BY 1, 2, 3, 4 ORDER BY 3, 1",
            params,
        ))

    def collectors(self) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT DISTINCT collector_id FROM calls WHERE collector_id IS NOT NULL ORDER BY collector_id"
        ).fetchall()]

    def review_queue(
        self,
        category: str | None = None,
        collector: str | None = None,
        since: str | None = None,
        until: str | None = None,
        review_status: str | None = None,
        assignee: str | None = None,
        origin: str | None = None,
        limit: int = 500,
    ) -> list[dict]:
        """Calls with active findings, most severe first, then newest. ``review_status``
        (unreviewed, confirmed, dismissed) and ``category`` keep calls with at least one
        such finding; ``assignee`` is a username, or "" for unassigned calls; ``origin``
        "debtor" keeps debtor evidence."""
        where, params = [], []
        matching = ["f.call_id = c.id", "f.active = 1"]
        if category:
            matching.append("f.category = ?")
            params.append(category)
        if review_status == "unreviewed":
            matching.append(f"{LATEST_DECISION} IS NULL")
        elif review_status in ("confirmed", "dismissed"):
            matching.append(f"{LATEST_DECISION} = ?")
            params.append(review_status)
        elif review_status:
            raise StoreError(f"review status must be unreviewed, confirmed or dismissed, not {review_status!r}")
        where.append(f"EXISTS (SELECT 1 FROM findings f WHERE {' AND '.join(matching)})")
        if collector:
            where.append("c.collector_id = ?")
            params.append(collector)
        if since:
            where.append("substr(coalesce(c.started_at, c.created_at), 1, 10) >= ?")
            params.append(since)
        if until:
            where.append("substr(coalesce(c.started_at, c.created_at), 1, 10) <= ?")
            params.append(until)
        if assignee == "":
            where.append("a.reviewer IS NULL")
        elif assignee:
            where.append("a.reviewer = ?")
            params.append(assignee)
        debtor = "(c.origin = 'debtor' OR EXISTS (SELECT 1 FROM uploads u WHERE u.call_id = c.id AND u.origin = 'debtor'))"
        if origin == "debtor":
            where.append(debtor)
        rank = " ".join(f"WHEN '{name}' THEN {value}" for name, value in SEVERITY_RANK.items())
        sql = f"""
            SELECT c.id, c.started_at, c.created_at, c.duration, c.collector_id, c.debtor_id, c.direction, c.origin,
                   c.max_severity, c.categories, a.reviewer AS assignee, {debtor} AS debtor_evidence,
                   (SELECT count(*) FROM findings f WHERE f.call_id = c.id AND f.active = 1) AS findings,
                   (SELECT count(*) FROM findings f WHERE f.call_id = c.id AND f.active = 1 AND {LATEST_DECISION} IS NULL) AS unreviewed,
                   (SELECT count(*) FROM findings f WHERE f.call_id = c.id AND f.active = 1 AND {LATEST_DECISION} = 'confirmed') AS confirmed,
                   (SELECT count(*) FROM findings f WHERE f.call_id = c.id AND f.active = 1 AND {LATEST_DECISION} = 'dismissed') AS dismissed
            FROM calls c LEFT JOIN assignments a ON a.call_id = c.id
            WHERE {' AND '.join(where)}
            ORDER BY CASE c.max_severity {rank} ELSE -1 END DESC, coalesce(c.started_utc, c.created_at) DESC, c.id
            LIMIT ?"""
        rows = list(self.db.query(sql, [*params, limit]))
        for row in rows:
            row["categories"] = json.loads(row["categories"] or "[]")
            row["debtor_evidence"] = bool(row["debtor_evidence"])
        return rows

