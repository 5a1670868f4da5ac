"""The connection to the call store and the things every record kind shares: schema
migrations, one write transaction at a time (BEGIN IMMEDIATE), and the append-only audit
log. The only package that imports sqlite_utils is ``monitor.store``."""

from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import sqlite_utils

from monitor.audit import Action
from monitor.errors import MonitorError
from monitor.store import schema

DEFAULT_DB = "monitor.db"


class StoreError(MonitorError):
    """The database cannot be opened or written."""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


class Database:
    """One database file: its connection, schema migrations, write transactions and the
    audit log. Safe to share between threads (one connection, serialised by a lock);
    each process opens its own."""

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
            if schema.pending(self.db):
                with self._write():  # another process may be migrating: it is checked again inside
                    schema.migrate(self.db)
            if not schema.known(self.db):
                raise StoreError(f"{self.path}: the database was migrated by a newer monitor")

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
    def migrations(self) -> list[str]:
        """Names of the schema migrations applied to this database, in order."""
        return [m.name for m in schema.MIGRATIONS.applied(self.db)]

    def close(self) -> None:
        self.db.close()

    # -- audit log ----------------------------------------------------------------------

    def audit(self, actor: str, action: Action, subject: str, detail: dict | None = None) -> None:
        with self._write():
            self._audit(actor, action, subject, detail)

    def _audit(self, actor: str, action: Action, subject: str, detail: dict | None) -> None:
        self.db["audit"].insert(
            {"at": now(), "actor": actor, "action": Action(action).value, "subject": subject,
             "detail": json.dumps(detail or {}, ensure_ascii=False)}
        )

    def audit_log(self, subject_prefix: str | None = None) -> list[dict]:
        if subject_prefix:
            return list(self.db.query("SELECT * FROM audit WHERE subject LIKE ? ORDER BY id", [subject_prefix + "%"]))
        return list(self.db.query("SELECT * FROM audit ORDER BY id"))
