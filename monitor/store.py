"""The call store: the only module that imports sqlite_utils.

One SQLite file (WAL mode) holds calls, their turns (with full-text search), findings,
reviewers' decisions and an append-only audit log. A call is known by the SHA-256 of its
recording, so storing the same recording twice is a no-op: that is what makes a batch
idempotent and resumable.

Call status: ``transcribed`` (turns stored, rules not yet run), ``done`` (findings
stored), ``failed`` (the recording could not be analysed; ``error`` says why).
"""

from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import sqlite_utils

from .errors import MonitorError
from .models import Call, CallResult, Finding, Turn

DEFAULT_DB = "monitor.db"


class StoreError(MonitorError):
    """The database cannot be opened or written."""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


# --- schema ------------------------------------------------------------------------------


def _migration_1(db: sqlite_utils.Database) -> None:
    db["calls"].create(
        {
            "id": str, "sha256": str, "source": str, "origin": str, "status": str, "error": str,
            "duration": float, "started_at": str, "started_utc": str, "collector_id": str,
            "debtor_id": str, "direction": str, "caller_number": str, "callee_number": str,
            "metadata": str, "rules_version": str, "categories": str, "max_severity": str,
            "created_at": str, "updated_at": str,
        },
        pk="id",
        not_null={"sha256", "status", "created_at"},
    )
    db["calls"].create_index(["sha256"], unique=True)
    db["calls"].create_index(["debtor_id", "started_utc"])
    db["calls"].create_index(["status"])
    db["turns"].create(
        {"call_id": str, "idx": int, "speaker": str, "text": str, "start": float, "end": float, "confidence": float},
        pk=("call_id", "idx"),
        foreign_keys=[("call_id", "calls", "id")],
    )
    db["turns"].enable_fts(["text"], create_triggers=True, tokenize="trigram")
    db["findings"].create(
        {
            "id": str, "call_id": str, "turn": int, "rule": str, "category": str, "severity": str,
            "start": float, "end": float, "evidence": str, "matched": str, "speaker_verified": int,
            "legal_basis": str, "rules_version": str, "active": int, "created_at": str, "updated_at": str,
        },
        pk="id",
        foreign_keys=[("call_id", "calls", "id")],
    )
    db["findings"].create_index(["call_id"])
    db["findings"].create_index(["category"])
    db["reviews"].create(
        {"id": int, "finding_id": str, "decision": str, "note": str, "reviewer": str, "decided_at": str},
        pk="id",
        foreign_keys=[("finding_id", "findings", "id")],
    )
    db["reviews"].create_index(["finding_id"])
    db["audit"].create(
        {"id": int, "at": str, "actor": str, "action": str, "subject": str, "detail": str},
        pk="id",
    )
    # The audit log is append-only: the database itself refuses edits and deletions.
    db.executescript(
        """
        CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        """
    )


def _migration_2(db: sqlite_utils.Database) -> None:
    """The web app: staff accounts, API tokens, uploads waiting for analysis (with the
    debtor's receipt), and the reviewer a call is assigned to."""
    db["users"].create(
        {"username": str, "password_hash": str, "role": str, "active": int, "created_at": str},
        pk="username",
        not_null={"password_hash", "role", "created_at"},
    )
    db["api_tokens"].create(
        {"token_hash": str, "username": str, "label": str, "created_at": str, "last_used_at": str, "revoked": int},
        pk="token_hash",
        foreign_keys=[("username", "users", "username")],
    )
    db["api_tokens"].create_index(["username"])
    # One row per file received over the web (staff upload, debtor portal, API). Status:
    # queued → processing → done | failed. ``receipt_hash`` is the SHA-256 of the debtor's
    # receipt token (the token itself is never stored).
    db["uploads"].create(
        {
            "id": str, "origin": str, "status": str, "error": str, "filename": str, "path": str, "sha256": str,
            "size": int, "duration": float, "collector_channel": str, "metadata": str, "call_id": str,
            "submitted_by": str, "receipt_hash": str, "created_at": str, "updated_at": str,
        },
        pk="id",
        not_null={"origin", "status", "path", "sha256", "created_at"},
        foreign_keys=[("call_id", "calls", "id")],
    )
    db["uploads"].create_index(["status"])
    db["uploads"].create_index(["call_id"])
    db["uploads"].create_index(["receipt_hash"], unique=True)
    db["assignments"].create(
        {"call_id": str, "reviewer": str, "assigned_by": str, "assigned_at": str},
        pk="call_id",
        foreign_keys=[("call_id", "calls", "id")],
    )


MIGRATIONS = (_migration_1, _migration_2)
SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}


@dataclass(frozen=True)
class StoredFinding:
    id: str
    call_id: str
    finding: Finding
    rules_version: str
    active: bool
    decision: str | None = None  # latest review: confirmed | dismissed | None


class Store:
    """A handle on one database file. Safe to share between threads (one connection,
    serialised by a lock); each process opens its own."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        try:
            if self.path.parent and not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite_utils.Database(self.path, execute_plugins=False)
            self.db.conn.execute("PRAGMA busy_timeout = 30000")
            self.db.enable_wal()
            self.db.conn.execute("PRAGMA foreign_keys = ON")
        except Exception as exc:  # sqlite3 errors, permissions
            raise StoreError(f"{self.path}: cannot open the database ({exc})") from exc
        self._lock = threading.RLock()
        self._migrate()

    # -- schema migrations --------------------------------------------------------------

    def _migrate(self) -> None:
        with self._lock:
            while self.schema_version < len(MIGRATIONS):
                with self._write():  # another process may be migrating: check again inside
                    version = self.schema_version
                    if version < len(MIGRATIONS):
                        MIGRATIONS[version](self.db)
                        self.db.execute(f"PRAGMA user_version = {version + 1}")
            if self.schema_version > len(MIGRATIONS):
                raise StoreError(f"{self.path}: schema version {self.schema_version} is newer than this monitor ({len(MIGRATIONS)})")

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction that takes SQLite's write lock when it starts (BEGIN
        IMMEDIATE). With several connections writing (web requests, the upload worker,
        a batch), a transaction that reads first and writes later would otherwise fail at
        once with "database is locked" when another connection wrote in between, instead
        of waiting its turn (busy_timeout). Nested use becomes a savepoint."""
        with self._lock:
            if self.db.conn.in_transaction:
                with self.db.atomic():
                    yield
                return
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if self.db.conn.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
            else:
                self.db.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def close(self) -> None:
        self.db.close()

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
            self.db.execute(
                "UPDATE findings SET active = 0, updated_at = ? WHERE call_id = ? AND active = 1",
                [now(), call_id],
            )
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
            severities = [f.severity for f in current.values()]
            self.db["calls"].update(
                call_id,
                {
                    "status": "done", "rules_version": rules_version, "updated_at": now(),
                    "categories": json.dumps(sorted({f.category for f in current.values()})),
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
            Turn(r["speaker"], r["text"], r["start"], r["end"], r["confidence"])
            for r in self.db.query("SELECT * FROM turns WHERE call_id = ? ORDER BY idx", [row["id"]])
        )
        return Call(
            id=row["id"], turns=turns,
            started_at=datetime.fromisoformat(row["started_at"]) if row["started_at"] else None,
            collector_id=row["collector_id"], debtor_id=row["debtor_id"], direction=row["direction"] or "outbound",
            sha256=row["sha256"], duration=row["duration"], source=row["source"],
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
            "SELECT f.*, (SELECT decision FROM reviews r WHERE r.finding_id = f.id ORDER BY r.id DESC LIMIT 1) AS decision"
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

    def review(self, finding_id: str, decision: str, reviewer: str, note: str = "") -> None:
        if decision not in ("confirmed", "dismissed"):
            raise StoreError(f"decision must be confirmed or dismissed, not {decision!r}")
        with self._write():
            if self.db.execute("SELECT 1 FROM findings WHERE id = ?", [finding_id]).fetchone() is None:
                raise StoreError(f"no finding with id {finding_id!r}")
            self.db["reviews"].insert(
                {"finding_id": finding_id, "decision": decision, "note": note, "reviewer": reviewer, "decided_at": now()}
            )
            self._audit(reviewer, f"finding.{decision}", finding_id, {"note": note})

    def audit(self, actor: str, action: str, subject: str, detail: dict | None = None) -> None:
        with self._write():
            self._audit(actor, action, subject, detail)

    def _audit(self, actor: str, action: str, subject: str, detail: dict | None) -> None:
        self.db["audit"].insert(
            {"at": now(), "actor": actor, "action": action, "subject": subject,
             "detail": json.dumps(detail or {}, ensure_ascii=False)}
        )

    def audit_log(self, subject_prefix: str | None = None) -> list[dict]:
        if subject_prefix:
            return list(self.db.query("SELECT * FROM audit WHERE subject LIKE ? ORDER BY id", [subject_prefix + "%"]))
        return list(self.db.query("SELECT * FROM audit ORDER BY id"))

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
                   (SELECT decision FROM reviews r WHERE r.finding_id = f.id ORDER BY r.id DESC LIMIT 1) AS decision
            FROM findings f JOIN calls c ON c.id = f.call_id
            WHERE {' AND '.join(where)}
            ORDER BY c.started_utc, c.id, f.turn, f.rule"""
        for row in self.db.query(sql, params):
            status = row["decision"] or "unreviewed"
            if review_status and status != review_status:
                continue
            row["review_status"] = status
            yield row


    # -- web: accounts, tokens, uploads, assignments, review queue (migration 2) ----------

    def add_user(self, username: str, password_hash: str, role: str) -> None:
        with self._write():
            if self.user(username) is not None:
                raise StoreError(f"user {username!r} already exists")
            self.db["users"].insert(
                {"username": username, "password_hash": password_hash, "role": role, "active": 1, "created_at": now()}
            )

    def set_password(self, username: str, password_hash: str) -> None:
        with self._write():
            if self.user(username) is None:
                raise StoreError(f"no user {username!r}")
            self.db["users"].update(username, {"password_hash": password_hash})

    def user(self, username: str) -> dict | None:
        rows = list(self.db.query("SELECT * FROM users WHERE username = ?", [username]))
        return rows[0] if rows else None

    def users(self) -> list[dict]:
        return list(self.db.query("SELECT username, role, active, created_at FROM users ORDER BY username"))

    def add_api_token(self, token_hash: str, username: str, label: str = "") -> None:
        with self._write():
            self.db["api_tokens"].insert(
                {"token_hash": token_hash, "username": username, "label": label, "created_at": now(), "revoked": 0}
            )

    def user_for_token(self, token_hash: str) -> dict | None:
        """The active user an unrevoked API token belongs to (and note its use)."""
        rows = list(self.db.query(
            "SELECT u.* FROM api_tokens t JOIN users u ON u.username = t.username"
            " WHERE t.token_hash = ? AND t.revoked = 0 AND u.active = 1",
            [token_hash],
        ))
        if not rows:
            return None
        with self._write():
            self.db["api_tokens"].update(token_hash, {"last_used_at": now()})
        return rows[0]

    def add_upload(self, row: dict) -> None:
        with self._write():
            self.db["uploads"].insert({**row, "created_at": now(), "updated_at": now()})

    def update_upload(self, upload_id: str, **fields) -> None:
        with self._write():
            self.db["uploads"].update(upload_id, {**fields, "updated_at": now()})

    def upload(self, upload_id: str) -> dict | None:
        rows = list(self.db.query("SELECT * FROM uploads WHERE id = ?", [upload_id]))
        return rows[0] if rows else None

    def upload_by_receipt(self, receipt_hash: str) -> dict | None:
        rows = list(self.db.query("SELECT * FROM uploads WHERE receipt_hash = ?", [receipt_hash]))
        return rows[0] if rows else None

    def uploads(self, origin: str | None = None, submitted_by: str | None = None, limit: int = 200) -> list[dict]:
        where, params = [], []
        if origin:
            where.append("origin = ?")
            params.append(origin)
        if submitted_by:
            where.append("submitted_by = ?")
            params.append(submitted_by)
        sql = "SELECT * FROM uploads" + (" WHERE " + " AND ".join(where) if where else "")
        return list(self.db.query(sql + " ORDER BY created_at DESC, rowid DESC LIMIT ?", [*params, limit]))

    def claim_queued_uploads(self) -> list[dict]:
        """Every queued upload, oldest first, now marked ``processing``."""
        with self._write():
            rows = list(self.db.query("SELECT * FROM uploads WHERE status = 'queued' ORDER BY created_at, rowid"))
            for row in rows:
                self.db["uploads"].update(row["id"], {"status": "processing", "updated_at": now()})
                row["status"] = "processing"
            return rows

    def requeue_interrupted_uploads(self) -> int:
        """Uploads left ``processing`` by a server that stopped: queue them again."""
        with self._write():
            cursor = self.db.execute(
                "UPDATE uploads SET status = 'queued', updated_at = ? WHERE status = 'processing'", [now()]
            )
            return cursor.rowcount

    def assign(self, call_id: str, reviewer: str | None, assigned_by: str) -> None:
        """Assign a call to a reviewer (None: unassign); the change is audited."""
        with self._write():
            if self.call_row(call_id) is None:
                raise StoreError(f"no call with id {call_id!r}")
            if reviewer:
                self.db["assignments"].upsert(
                    {"call_id": call_id, "reviewer": reviewer, "assigned_by": assigned_by, "assigned_at": now()},
                    pk="call_id",
                )
            else:
                self.db["assignments"].delete_where("call_id = ?", [call_id])
            self._audit(assigned_by, "call.assign", call_id, {"reviewer": reviewer})

    def assignment(self, call_id: str) -> dict | None:
        rows = list(self.db.query("SELECT * FROM assignments WHERE call_id = ?", [call_id]))
        return rows[0] if rows else None

    def reviews(self, call_id: str) -> list[dict]:
        """Every decision on the findings of one call, oldest first."""
        return list(self.db.query(
            "SELECT r.* FROM reviews r JOIN findings f ON f.id = r.finding_id WHERE f.call_id = ? ORDER BY r.id",
            [call_id],
        ))

    def call_id_for(self, sha256: str) -> str | None:
        row = self.db.execute("SELECT id FROM calls WHERE sha256 = ?", [sha256]).fetchone()
        return row[0] if row else None

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
            " (SELECT decision FROM reviews r WHERE r.finding_id = f.id ORDER BY r.id DESC LIMIT 1) AS decision,"
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
        latest = "(SELECT decision FROM reviews r WHERE r.finding_id = f.id ORDER BY r.id DESC LIMIT 1)"
        where, params = [], []
        matching = ["f.call_id = c.id", "f.active = 1"]
        if category:
            matching.append("f.category = ?")
            params.append(category)
        if review_status == "unreviewed":
            matching.append(f"{latest} IS NULL")
        elif review_status in ("confirmed", "dismissed"):
            matching.append(f"{latest} = ?")
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
                   (SELECT count(*) FROM findings f WHERE f.call_id = c.id AND f.active = 1 AND {latest} IS NULL) AS unreviewed,
                   (SELECT count(*) FROM findings f WHERE f.call_id = c.id AND f.active = 1 AND {latest} = 'confirmed') AS confirmed,
                   (SELECT count(*) FROM findings f WHERE f.call_id = c.id AND f.active = 1 AND {latest} = 'dismissed') AS dismissed
            FROM calls c LEFT JOIN assignments a ON a.call_id = c.id
            WHERE {' AND '.join(where)}
            ORDER BY CASE c.max_severity {rank} ELSE -1 END DESC, coalesce(c.started_utc, c.created_at) DESC, c.id
            LIMIT ?"""
        rows = list(self.db.query(sql, [*params, limit]))
        for row in rows:
            row["categories"] = json.loads(row["categories"] or "[]")
            row["debtor_evidence"] = bool(row["debtor_evidence"])
        return rows


def open_store(path: str | os.PathLike[str] | None = None) -> Store:
    """The database at ``path``, or at the MONITOR_DB setting, or monitor.db here."""
    from . import config

    return Store(path or config.get("db") or DEFAULT_DB)
