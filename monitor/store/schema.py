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
# The same, kept on the finding row by a trigger (migration 0003_web_sessions_paging),
# for the queries that page or count over every finding.
LATEST_DECISION_COLUMN = "f.latest_decision"
# A call's local start day (else the day it was stored), and its rank in the queue: the
# expressions the calls indexes of 0003 are built on, so the queries must use them as is.
CALL_DAY = "substr(coalesce(c.started_at, c.created_at), 1, 10)"
# A call's team, from the metadata kept with it (NULL when absent or not JSON).
CALL_TEAM = "CASE WHEN json_valid(c.metadata) THEN json_extract(c.metadata, '$.team') END"
SEVERITY_ORDER = ("CASE c.max_severity WHEN 'low' THEN 0 WHEN 'medium' THEN 1 WHEN 'high' THEN 2"
                  " WHEN 'critical' THEN 3 ELSE -1 END")


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



@MIGRATIONS(name="0003_web_sessions_paging")
def web_sessions_attempts_indexes(db: sqlite_utils.Database) -> None:
    """Server-side staff sessions (so logout, a password or role change and deactivation
    end them), how often an upload was taken up (a job interrupted twice is not retried),
    second looks (复核), and the indexes the queue, search and dashboard page by."""
    db["sessions"].create(
        {"session_hash": str, "username": str, "created_at": str, "revoked_at": str},
        pk="session_hash",
        foreign_keys=[("username", "users", "username")],
    )
    db["sessions"].create_index(["username"])
    db["uploads"].add_column("attempts", int, not_null_default=0)
    db["uploads"].create_index(["created_at"])
    db["second_looks"].create(
        {"finding_id": str, "requested_by": str, "requested_at": str, "reason": str, "reviewer": str,
         "first_decision": str, "status": str, "closed_at": str},
        pk="finding_id",
        foreign_keys=[("finding_id", "findings", "id")],
    )
    db["second_looks"].create_index(["reviewer", "status"])
    db["reviews"].create_index(["finding_id", "id"])
    db["reviews"].create_index(["decided_at"])
    db["calls"].create_index(["collector_id"])
    db["calls"].create_index(["started_utc"])
    # Each finding carries its latest decision, kept by the database itself (reviews are
    # only ever appended), so the queue and the dashboard count without a subquery each.
    db["findings"].add_column("latest_decision", str)
    db.executescript(
        """
        UPDATE findings SET latest_decision =
          (SELECT decision FROM reviews r WHERE r.finding_id = findings.id ORDER BY r.id DESC LIMIT 1);
        CREATE TRIGGER reviews_latest_decision AFTER INSERT ON reviews
        BEGIN UPDATE findings SET latest_decision = NEW.decision WHERE id = NEW.finding_id; END;
        CREATE INDEX idx_findings_call_active_decision ON findings (call_id, active, latest_decision, category);
        CREATE INDEX idx_findings_open ON findings (active, latest_decision, created_at);
        """
    )
    c_free = lambda expression: expression.replace("c.", "")  # noqa: E731  (indexes name no alias)
    # The dashboard's totals, kept by triggers as calls are analysed and findings are
    # stored, retired or decided on, so a page over months reads a few thousand rows:
    # per day, analysed calls and active findings (by latest decision) totalled by
    # category, collector, team and overall. A call's start, collector and metadata are
    # set when it is stored and not changed once it has findings, so a finding's
    # call-side keys stay right.
    db.execute(
        "CREATE TABLE tallies (kind TEXT NOT NULL, dimension TEXT NOT NULL, day TEXT NOT NULL, key TEXT NOT NULL,"
        " decision TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (kind, dimension, day, key, decision)) WITHOUT ROWID"
    )
    day, collector, team = f"coalesce({CALL_DAY}, '')", "coalesce(c.collector_id, '')", f"coalesce({CALL_TEAM}, '')"

    def finding_rows(row: str, sign: int) -> str:
        """The tallies one finding (OLD or NEW) counts towards, as an INSERT … SELECT."""
        decision = f"coalesce({row}.latest_decision, '')"
        parts = [f"SELECT 'finding', '{dimension}', {day}, {key}, {decision}, {sign} FROM calls c WHERE c.id = {row}.call_id"
                 f" AND {row}.active = 1"
                 for dimension, key in (("category", f"coalesce({row}.category, '')"), ("collector", collector),
                                        ("team", team), ("all", "''"))]
        return _tally_upsert(" UNION ALL ".join(parts))

    def call_rows(row: str, sign: int) -> str:
        """A call (OLD or NEW: its own columns, since the table already holds NEW)."""
        own = lambda expression: expression.replace("c.", f"{row}.")  # noqa: E731
        parts = [f"SELECT 'call', '{dimension}', {own(day)}, {own(key)}, '', {sign} WHERE {row}.status = 'done'"
                 for dimension, key in (("collector", collector), ("team", team), ("all", "''"))]
        return _tally_upsert(" UNION ALL ".join(parts))

    db.executescript(
        f"""
        INSERT INTO tallies SELECT * FROM (
          SELECT 'finding', 'category', {day}, coalesce(f.category, ''), coalesce(f.latest_decision, ''), count(*)
            FROM findings f JOIN calls c ON c.id = f.call_id WHERE f.active = 1 GROUP BY 3, 4, 5
          UNION ALL SELECT 'finding', 'collector', {day}, {collector}, coalesce(f.latest_decision, ''), count(*)
            FROM findings f JOIN calls c ON c.id = f.call_id WHERE f.active = 1 GROUP BY 3, 4, 5
          UNION ALL SELECT 'finding', 'team', {day}, {team}, coalesce(f.latest_decision, ''), count(*)
            FROM findings f JOIN calls c ON c.id = f.call_id WHERE f.active = 1 GROUP BY 3, 4, 5
          UNION ALL SELECT 'finding', 'all', {day}, '', coalesce(f.latest_decision, ''), count(*)
            FROM findings f JOIN calls c ON c.id = f.call_id WHERE f.active = 1 GROUP BY 3, 4, 5
          UNION ALL SELECT 'call', 'collector', {day}, {collector}, '', count(*) FROM calls c WHERE c.status = 'done' GROUP BY 3, 4
          UNION ALL SELECT 'call', 'team', {day}, {team}, '', count(*) FROM calls c WHERE c.status = 'done' GROUP BY 3, 4
          UNION ALL SELECT 'call', 'all', {day}, '', '', count(*) FROM calls c WHERE c.status = 'done' GROUP BY 3, 4
        );
        CREATE TRIGGER findings_tally_insert AFTER INSERT ON findings BEGIN {finding_rows("NEW", 1)} END;
        CREATE TRIGGER findings_tally_update AFTER UPDATE ON findings
          BEGIN {finding_rows("OLD", -1)} {finding_rows("NEW", 1)} END;
        CREATE TRIGGER findings_tally_delete AFTER DELETE ON findings BEGIN {finding_rows("OLD", -1)} END;
        CREATE TRIGGER calls_tally_insert AFTER INSERT ON calls BEGIN {call_rows("NEW", 1)} END;
        CREATE TRIGGER calls_tally_update AFTER UPDATE ON calls BEGIN {call_rows("OLD", -1)} {call_rows("NEW", 1)} END;
        CREATE TRIGGER calls_tally_delete AFTER DELETE ON calls BEGIN {call_rows("OLD", -1)} END;
        """
    )
    db.executescript(
        f"""
        CREATE INDEX idx_calls_queue_order ON calls ({c_free(SEVERITY_ORDER)} DESC, coalesce(started_utc, created_at) DESC);
        CREATE INDEX idx_calls_newest ON calls (coalesce(started_utc, created_at));
        CREATE INDEX idx_calls_day ON calls ({c_free(CALL_DAY)});
        """
    )


def _tally_upsert(select: str) -> str:
    # "WHERE true": an INSERT … SELECT before ON CONFLICT needs a WHERE (SQLite's parser).
    return (f"INSERT INTO tallies (kind, dimension, day, key, decision, n) SELECT * FROM ({select}) WHERE true"
            " ON CONFLICT (kind, dimension, day, key, decision) DO UPDATE SET n = n + excluded.n;")
@MIGRATIONS(name="0003_speed_debtor_side")
def debtor_side(db: sqlite_utils.Database) -> None:
    """Whether a stereo call's debtor channel is in its turns: ``transcribed``, ``not
    transcribed`` (the batch heard only the collector; filled in on demand), or NULL
    (mono, or stored before this column: both sides); and which channel is the
    collector's, so the other can be found again later."""
    present = db["calls"].columns_dict
    for column in ("debtor_side", "collector_channel"):
        if column not in present:  # a legacy database marked by user_version may have it
            db["calls"].add_column(column, str)


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


@MIGRATIONS(name="0003_learn_risk")
def learn_risk_suspected(db: sqlite_utils.Database) -> None:
    """The risk model's opinion: a probability per collector/unknown turn and category
    (``turn_risk``; a call's risk is its highest), and suspected lines — above the
    category's threshold with no rule finding — with the reviewer's decision on each.
    A confirmed suspected line becomes a finding with rule ``reviewer`` (``finding_id``)."""
    db["turn_risk"].create(
        {"call_id": str, "idx": int, "category": str, "score": float, "model_version": str},
        pk=("call_id", "idx", "category"),
        foreign_keys=[("call_id", "calls", "id")],
    )
    db["suspected"].create(
        {
            "id": str, "call_id": str, "turn": int, "category": str, "score": float, "threshold": float,
            "model_version": str, "active": int, "decision": str, "reviewer": str, "note": str,
            "decided_at": str, "finding_id": str, "created_at": str, "updated_at": str,
        },
        pk="id",
        foreign_keys=[("call_id", "calls", "id")],
    )
    db["suspected"].create_index(["call_id"])
