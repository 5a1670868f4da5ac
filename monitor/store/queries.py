"""The read-only questions the review app, exports and documents ask of the store:
the review queue, dashboard counts, the violations export, transcript search."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Iterator

from monitor.store.database import Database, StoreError
from monitor.store.schema import CALL_DAY, CALL_TEAM, LATEST_DECISION, SEVERITY_ORDER
from monitor.store.schema import LATEST_DECISION_COLUMN as DECIDED


class Queries(Database):
    # -- loading many rows at once (benches, imports) -----------------------------------

    BULK_TABLES = ("calls", "turns", "findings", "reviews", "assignments", "uploads")

    def bulk_insert(self, table: str, rows, batch_size: int = 5000) -> None:
        """Insert already-shaped rows into one of BULK_TABLES in one write transaction:
        how a bench builds a store of 50,000 calls in seconds (no audit entries, no
        checks: the caller's rows must be consistent)."""
        if table not in self.BULK_TABLES:
            raise StoreError(f"bulk_insert: not a table for bulk rows: {table!r}")
        with self._write():
            self.db[table].insert_all(rows, batch_size=batch_size)

    # -- search and export --------------------------------------------------------------

    def search_turns(self, query: str, limit: int = 50) -> list[dict]:
        """Full-text search over transcripts (trigram index: any 3+ character substring)."""
        return list(self.db["turns"].search(query, limit=limit))

    def search_transcripts(
        self,
        query: str,
        speaker: str | None = None,
        since: str | None = None,
        until: str | None = None,
        collector: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[dict], int]:
        """Turns that contain every phrase of ``query`` (space separated; "quoted words"
        stay one phrase), newest call first, one page, and how many there are in all.
        Each row has ``marked``: the text with hits between \\x01 and \\x02. Phrases of
        3+ characters use the trigram index; shorter ones fall back to a scan."""
        phrases = _phrases(query)
        if not phrases:
            return [], 0
        where, params = [], []
        indexed = [p for p in phrases if len(p) >= 3]
        for phrase in phrases:
            if len(phrase) < 3:
                where.append("instr(t.text, ?) > 0")
                params.append(phrase)
        if indexed:
            source = "turns_fts JOIN turns t ON t.rowid = turns_fts.rowid"
            where.insert(0, "turns_fts MATCH ?")
            params.insert(0, " AND ".join('"' + p.replace('"', '""') + '"' for p in indexed))
            marked = "highlight(turns_fts, 0, char(1), char(2))"
        else:
            source, marked = "turns t", "t.text"
        if speaker:
            where.append("t.speaker = ?")
            params.append(speaker)
        calls, call_params = call_filter(since=since, until=until, collector=collector)
        where, params = where + calls, params + call_params
        body = f"FROM {source} JOIN calls c ON c.id = t.call_id WHERE {' AND '.join(where)}"
        total = self.db.execute(f"SELECT count(*) {body}", params).fetchone()[0]
        rows = list(self.db.query(
            f"SELECT t.call_id, t.idx, t.speaker, t.text, t.start, t.end, {marked} AS marked, c.started_at,"
            f" c.collector_id, c.debtor_id {body}"
            " ORDER BY coalesce(c.started_utc, c.created_at) DESC, t.call_id, t.idx LIMIT ? OFFSET ?",
            [*params, limit, max(0, offset)],
        ))
        if len(indexed) < len(phrases) or not indexed:
            for row in rows:  # the index did not mark the short phrases: mark them here
                row["marked"] = _mark(row["text"], phrases)
        return rows, total

    def export_rows(
        self,
        since: str | None = None,
        until: str | None = None,
        category: str | None = None,
        collector: str | None = None,
        review_status: str | None = None,
        **signals,
    ) -> Iterator[dict]:
        """Active findings with their call's metadata and signals, filtered.
        ``review_status`` is confirmed, dismissed or unreviewed; dates compare with the
        call's local day, as in the queue; ``signals`` are the signal filters of
        ``call_filter`` (raised_voice, overtalk_at_least, collector_share_at_least)."""
        where, params = ["f.active = 1"], []
        if category:
            where.append("f.category = ?")
            params.append(category)
        calls, call_params = call_filter(since=since, until=until, collector=collector, **signals)
        where, params = where + calls, params + call_params
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
        where, params = call_filter(since=since, until=until)
        return list(self.db.query(
            f"SELECT f.category, c.collector_id, {CALL_DAY} AS day,"
            f" {LATEST_DECISION} AS decision,"
            f" count(*) AS n FROM findings f JOIN calls c ON c.id = f.call_id WHERE {' AND '.join(['f.active = 1', *where])}"
            " GROUP BY 1, 2, 3, 4 ORDER BY 3, 1",
            params,
        ))

    def collectors(self) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT DISTINCT collector_id FROM calls WHERE collector_id IS NOT NULL ORDER BY collector_id"
        ).fetchall()]

    QUEUE_SORTS = {
        "severity": f"{SEVERITY_ORDER} DESC, coalesce(c.started_utc, c.created_at) DESC",
        "newest": "coalesce(c.started_utc, c.created_at) DESC",
        "oldest": "coalesce(c.started_utc, c.created_at)",
        "collector": "c.collector_id IS NULL, c.collector_id, coalesce(c.started_utc, c.created_at) DESC, c.id",
        "findings": "(SELECT count(*) FROM findings f WHERE f.call_id = c.id AND f.active = 1) DESC, c.id",
    }

    def _queue_where(self, category=None, review_status=None, assignee=None, origin=None, second_look=None, **calls):
        """The queue's conditions: on the call's findings (category, decision, second
        look), on its assignment and origin, and ``call_filter``'s on the call itself."""
        where, params = [], []
        if review_status and review_status not in ("unreviewed", "confirmed", "dismissed"):
            raise StoreError(f"review status must be unreviewed, confirmed or dismissed, not {review_status!r}")
        if not (review_status or second_look):
            # save_findings keeps a call's max_severity and categories to its active
            # findings: no need to look at the findings themselves.
            where.append("c.max_severity IS NOT NULL")
            if category:
                where.append("c.categories LIKE ?")
                params.append(f'%"{category}"%')
        else:
            matching = ["f.call_id = c.id", "f.active = 1"]
            if category:
                matching.append("f.category = ?")
                params.append(category)
            if review_status == "unreviewed":
                matching.append(f"{DECIDED} IS NULL")
            elif review_status:
                matching.append(f"{DECIDED} = ?")
                params.append(review_status)
            if second_look:
                matching.append("EXISTS (SELECT 1 FROM second_looks s WHERE s.finding_id = f.id AND s.status = 'open'"
                                + (" AND s.reviewer = ?)" if second_look is not True else ")"))
                if second_look is not True:
                    params.append(second_look)
            where.append(f"EXISTS (SELECT 1 FROM findings f WHERE {' AND '.join(matching)})")
        conditions, values = call_filter(**calls)
        where, params = where + conditions, params + values
        if assignee == "":
            where.append("a.reviewer IS NULL")
        elif assignee:
            where.append("a.reviewer = ?")
            params.append(assignee)
        if origin == "debtor":
            where.append(_DEBTOR)
        return " AND ".join(where), params

    def review_queue(
        self,
        category: str | None = None,
        collector: str | None = None,
        since: str | None = None,
        until: str | None = None,
        review_status: str | None = None,
        assignee: str | None = None,
        origin: str | None = None,
        limit: int = 50,
        offset: int = 0,
        sort: str = "severity",
        second_look: str | bool | None = None,
        team: str | None = None,
        ids: list[str] | None = None,
        **signals,
    ) -> list[dict]:
        """One page of calls with active findings (most severe first, then newest, by
        default; ``sort`` one of QUEUE_SORTS). ``review_status`` (unreviewed, confirmed,
        dismissed) and ``category`` keep calls with at least one such finding;
        ``assignee`` is a username, or "" for unassigned calls; ``origin`` "debtor" keeps
        debtor evidence; ``second_look`` keeps calls with an open 复核 (for that reviewer,
        or any when True); ``ids`` keeps only those calls; ``signals`` are the signal
        filters of ``call_filter``. ``queue_count`` counts all."""
        where, params = self._queue_where(category, review_status, assignee, origin, second_look, collector=collector,
                                          team=team, since=since, until=until, **signals)
        if ids is not None:
            where += f" AND c.id IN ({', '.join('?' for _ in ids)})" if ids else " AND 0"
            params = [*params, *ids]
        order = self.QUEUE_SORTS.get(sort, self.QUEUE_SORTS["severity"])
        # The page's ids first (cheap columns only), then the counts for those rows alone.
        page = [r[0] for r in self.db.execute(
            f"SELECT c.id FROM calls c LEFT JOIN assignments a ON a.call_id = c.id WHERE {where}"
            f" ORDER BY {order} LIMIT ? OFFSET ?", [*params, limit, max(0, offset)]).fetchall()]
        if not page:
            return []
        marks = ", ".join("?" for _ in page)
        sql = f"""
            SELECT c.id, c.started_at, c.created_at, c.duration, c.collector_id, c.debtor_id, c.direction, c.origin,
                   c.caller_number, c.max_severity, c.categories, a.reviewer AS assignee, a.assigned_by,
                   {CALL_TEAM} AS team, {_DEBTOR} AS debtor_evidence,
                   (SELECT count(*) FROM findings f WHERE f.call_id = c.id AND f.active = 1) AS findings,
                   (SELECT count(*) FROM findings f WHERE f.call_id = c.id AND f.active = 1 AND {DECIDED} IS NULL) AS unreviewed,
                   (SELECT count(*) FROM findings f WHERE f.call_id = c.id AND f.active = 1 AND {DECIDED} = 'confirmed') AS confirmed,
                   (SELECT count(*) FROM findings f WHERE f.call_id = c.id AND f.active = 1 AND {DECIDED} = 'dismissed') AS dismissed,
                   (SELECT count(*) FROM findings f JOIN second_looks s ON s.finding_id = f.id
                     WHERE f.call_id = c.id AND s.status = 'open') AS second_looks,
                   c.overtalk_share, c.collector_talk_share,
                   (SELECT count(*) FROM turns t WHERE t.call_id = c.id AND t.raised_voice = 1) AS raised_turns
            FROM calls c LEFT JOIN assignments a ON a.call_id = c.id
            WHERE c.id IN ({marks})"""
        by_id = {row["id"]: row for row in self.db.query(sql, page)}
        rows = [by_id[i] for i in page]
        for row in rows:
            row["categories"] = json.loads(row["categories"] or "[]")
            row["debtor_evidence"] = bool(row["debtor_evidence"])
        return rows

    def queue_count(self, category=None, review_status=None, assignee=None, origin=None, second_look=None,
                    **calls) -> int:
        """How many calls ``review_queue`` pages through with these filters."""
        where, params = self._queue_where(category, review_status, assignee, origin, second_look, **calls)
        return self.db.execute(
            f"SELECT count(*) FROM calls c LEFT JOIN assignments a ON a.call_id = c.id WHERE {where}", params
        ).fetchone()[0]

    # -- the dashboard ------------------------------------------------------------------

    def _tallies(self, kind: str, dimension: str, since: str | None, until: str | None, by_day: bool = False):
        where, params = ["kind = ?", "dimension = ?"], [kind, dimension]
        _day_range(where, params, "day", since, until)
        group = "day" if by_day else "key"
        return self.db.execute(
            f"SELECT {group}, decision, sum(n) FROM tallies WHERE {' AND '.join(where)} GROUP BY 1, 2 HAVING sum(n) > 0",
            params).fetchall()

    def dashboard_counts(self, since: str | None = None, until: str | None = None) -> dict[str, list[tuple]]:
        """Active findings in the period (by the call's local day), totalled four ways,
        each as (key, latest decision or None, count) rows: "category", "collector",
        "team" (None: no team) and "day". Summed from the tallies the database keeps
        (migration 0003_web_sessions_paging): a few thousand rows whatever the period."""
        totals = {name: [(key or None, decision or None, n) for key, decision, n in self._tallies("finding", name, since, until)]
                  for name in ("category", "collector", "team")}
        totals["day"] = [(day, decision or None, n) for day, decision, n in self._tallies("finding", "all", since, until, True)]
        return totals

    def call_counts(self, since: str | None = None, until: str | None = None) -> dict[str, dict]:
        """Analysed calls (done) in the period by collector and by team ("" : none), and
        in all ("all"): the denominators of the rates per 100 calls."""
        return {name: {key: n for key, _, n in self._tallies("call", name, since, until)}
                for name in ("collector", "team", "all")}

    def reviewer_throughput(self, since: str, until: str | None = None) -> list[dict]:
        """Decisions per reviewer made from day ``since`` to day ``until`` (UTC dates)."""
        where, params = ["decided_at >= ?"], [since]
        if until:
            where.append("substr(decided_at, 1, 10) <= ?")
            params.append(until)
        return list(self.db.query(
            "SELECT reviewer, count(*) AS decisions, sum(decision = 'confirmed') AS confirmed,"
            " sum(decision = 'dismissed') AS dismissed, count(DISTINCT substr(decided_at, 1, 10)) AS days"
            f" FROM reviews WHERE {' AND '.join(where)} GROUP BY reviewer ORDER BY decisions DESC", params))

    AGE_BUCKETS = (("0-1d", 0, 1), ("1-3d", 1, 3), ("3-7d", 3, 7), ("7-30d", 7, 30), ("30d+", 30, None))

    def unreviewed_ages(self, now: datetime) -> dict[str, int]:
        """Active findings nobody has decided on, by how long they have waited (days
        since they were stored): range counts on the open-findings index."""
        ages = {}
        for name, younger, older in self.AGE_BUCKETS:
            where, params = ["f.active = 1", f"{DECIDED} IS NULL", "f.created_at <= ?"], [_iso_days_before(now, younger)]
            if older is not None:
                where.append("f.created_at > ?")
                params.append(_iso_days_before(now, older))
            ages[name] = self.db.execute(f"SELECT count(*) FROM findings f WHERE {' AND '.join(where)}", params).fetchone()[0]
        return ages

    # -- second looks (复核) ------------------------------------------------------------

    def request_second_look(self, finding_id: str, requested_by: str, reviewer: str, reason: str) -> None:
        """Send a decided finding to a second reviewer; the first decision stays."""
        from monitor.audit import Action
        from monitor.store.database import now

        with self._write():
            latest = self.db.execute("SELECT decision, reviewer FROM reviews WHERE finding_id = ? ORDER BY id DESC LIMIT 1",
                                     [finding_id]).fetchone()
            if latest is None:
                raise StoreError(f"finding {finding_id!r} has no decision to look at again")
            if latest[1] == reviewer:
                raise StoreError("the second look must be by someone other than the first reviewer")
            self.db["second_looks"].upsert(
                {"finding_id": finding_id, "requested_by": requested_by, "requested_at": now(), "reason": reason,
                 "reviewer": reviewer, "first_decision": latest[0], "status": "open", "closed_at": None},
                pk="finding_id")
            self._audit(requested_by, Action.SECOND_LOOK_REQUESTED, finding_id,
                        {"reviewer": reviewer, "reason": reason, "first_decision": latest[0]})

    def second_looks(self, call_id: str) -> dict[str, dict]:
        return {r["finding_id"]: r for r in self.db.query(
            "SELECT s.* FROM second_looks s JOIN findings f ON f.id = s.finding_id WHERE f.call_id = ?", [call_id])}

    def close_second_look(self, finding_id: str, reviewer: str) -> bool:
        """Called after ``reviewer`` decided on the finding: their open second look ends."""
        from monitor.store.database import now

        with self._write():
            return self.db.execute(
                "UPDATE second_looks SET status = 'done', closed_at = ? WHERE finding_id = ? AND reviewer = ? AND status = 'open'",
                [now(), finding_id, reviewer]).rowcount > 0


_DEBTOR = "(c.origin = 'debtor' OR EXISTS (SELECT 1 FROM uploads u WHERE u.call_id = c.id AND u.origin = 'debtor'))"

# Whose raised voice the filter looks for: anyone's, or the collector's (an unknown
# speaker counts as a possible collector, as the rules treat one).
RAISED_VOICE_FILTERS = {
    "any": "EXISTS (SELECT 1 FROM turns rv WHERE rv.call_id = c.id AND rv.raised_voice = 1)",
    "collector": "EXISTS (SELECT 1 FROM turns rv WHERE rv.call_id = c.id AND rv.raised_voice = 1"
                 " AND rv.speaker IN ('collector', 'unknown'))",
}


def call_filter(
    since: str | None = None,
    until: str | None = None,
    collector: str | None = None,
    team: str | None = None,
    raised_voice: str | None = None,
    overtalk_at_least: float | None = None,
    collector_share_at_least: float | None = None,
) -> tuple[list[str], list]:
    """Conditions on the call ``c`` shared by the queue, the exports, the counts and the
    transcript search, with their parameters: the call's local day (else the day it was
    stored), its collector and team, and its conversation signals. ``raised_voice`` is
    a key of RAISED_VOICE_FILTERS; the shares are fractions from 0 to 1, and a call
    without signals (a typed transcript) has no share, so it is left out by them."""
    where, params = [], []
    _day_range(where, params, CALL_DAY, since, until)
    if collector:
        where.append("c.collector_id = ?")
        params.append(collector)
    if team:
        where.append(f"{CALL_TEAM} = ?")
        params.append(team)
    if raised_voice:
        if raised_voice not in RAISED_VOICE_FILTERS:
            raise StoreError(f"raised_voice must be one of {', '.join(RAISED_VOICE_FILTERS)}, not {raised_voice!r}")
        where.append(RAISED_VOICE_FILTERS[raised_voice])
    for name, column, share in (("overtalk_at_least", "c.overtalk_share", overtalk_at_least),
                                ("collector_share_at_least", "c.collector_talk_share", collector_share_at_least)):
        if share is None:
            continue
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
            raise StoreError(f"{name}: a share from 0 to 1, not {share!r}")
        where.append(f"{column} >= ?")
        params.append(float(share))
    return where, params


def _day_range(where: list[str], params: list, day: str, since: str | None, until: str | None) -> None:
    if since:
        where.append(f"{day} >= ?")
        params.append(since)
    if until:
        where.append(f"{day} <= ?")
        params.append(until)


def _iso_days_before(now: datetime, days: int) -> str:
    return (now - timedelta(days=days)).astimezone(timezone.utc).isoformat(timespec="seconds")


def _phrases(query: str) -> list[str]:
    """Search words: "quoted phrases" kept whole, the rest split on spaces."""
    import shlex

    try:
        parts = shlex.split(query or "")
    except ValueError:  # an unbalanced quote: take the words as typed
        parts = (query or "").replace('"', " ").split()
    return [p.strip() for p in parts if p.strip()][:8]


def _mark(text: str, phrases: list[str]) -> str:
    spans = []
    for phrase in phrases:
        start = text.find(phrase)
        while start >= 0:
            spans.append((start, start + len(phrase)))
            start = text.find(phrase, start + len(phrase))
    out, at = [], 0
    for start, end in sorted(spans):
        if start < at:
            continue
        out.append(text[at:start] + "\x01" + text[start:end] + "\x02")
        at = end
    return "".join(out) + text[at:]
