"""The database schema, as sqlite-utils migrations applied in order when a store opens.

A migration is never edited once released: a schema change is a new function at the end.
Databases made before the migrations table existed recorded their version in
``PRAGMA user_version``; ``migrate`` marks those migrations as applied.
"""

from __future__ import annotations

import sqlite_utils

MIGRATIONS = sqlite_utils.Migrations("monitor")

# The latest decision on finding ``f`` (confirmed | dismissed | NULL = unreviewed); every
# query that needs a finding's review status uses this one subquery.
LATEST_DECISION = "(SELECT decision FROM reviews r WHERE r.finding_id = f.id ORDER BY r.id DESC LIMIT 1)"


@MIGRATIONS(name="0001_calls")
def calls_turns_findings(db: sqlite_utils.Database) -> None:
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


@MIGRATIONS(name="0002_web")
def web_accounts_uploads(db: sqlite_utils.Database) -> None:
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


@MIGRATIONS(name="0003_diar_signals")
def diarization_and_signals(db: sqlite_utils.Database) -> None:
    """Who spoke (channel or diarized voice) and conversation signals: per turn its
    voice, loudness, raised voice and overtalk; per call the signals, the diarized
    roles and the notes on them (JSON), and two columns the queue filters on."""
    db["turns"].add_column("speaker_source", str)
    db["turns"].add_column("voice", str)
    db["turns"].add_column("loudness", float)
    db["turns"].add_column("raised_voice", int)
    db["turns"].add_column("overtalk", float)
    db["calls"].add_column("signals", str)
    db["calls"].add_column("roles", str)
    db["calls"].add_column("speaker_notes", str)
    db["calls"].add_column("overtalk_share", float)
    db["calls"].add_column("collector_talk_share", float)


def migrate(db: sqlite_utils.Database) -> None:
    """Apply the pending migrations (the caller holds the write lock)."""
    legacy = db.execute("PRAGMA user_version").fetchone()[0]
    if legacy and not db[MIGRATIONS.migrations_table].exists():
        MIGRATIONS.ensure_migrations_table(db)
        for migration in MIGRATIONS._migrations[:legacy]:
            MIGRATIONS._record_applied(db, migration.name)
    MIGRATIONS.apply(db)


def pending(db: sqlite_utils.Database) -> int:
    return len(MIGRATIONS.pending(db))


def known(db: sqlite_utils.Database) -> bool:
    """False when the database was migrated by a newer monitor (it has migrations this
    one does not know)."""
    names = {m.name for m in MIGRATIONS._migrations}
    return all(applied.name in names for applied in MIGRATIONS.applied(db))
