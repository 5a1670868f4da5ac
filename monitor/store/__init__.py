"""The call store: one SQLite file (WAL mode) with calls, turns (full-text indexed),
findings, reviewers' decisions, web accounts and uploads, and an append-only audit log.

The only package that imports sqlite_utils. ``Store`` is one handle on one file; its
methods are grouped by what they keep:

    schema.py    migrations (sqlite-utils Migrations) and the shared SQL fragments
    database.py  connection, write transactions, the audit log
    calls.py     calls, turns, findings, reviews
    signals.py   speakers (diarized roles) and conversation signals of calls and turns
    accounts.py  users, API tokens, uploads, assignments
    queries.py   review queue, dashboard counts, export, search
"""

from __future__ import annotations

import os

from monitor.store.accounts import WebRecords
from monitor.store.calls import SEVERITY_RANK, CallRecords, StoredFinding
from monitor.store.database import DEFAULT_DB, StoreError
from monitor.store.queries import Queries

__all__ = ["Store", "StoreError", "StoredFinding", "SEVERITY_RANK", "open_store", "DEFAULT_DB"]


class Store(CallRecords, WebRecords, Queries):
    """A handle on one database file (see the module docstring for what it holds)."""


def open_store(path: str | os.PathLike[str] | None = None) -> Store:
    """The database at ``path``, or at the MONITOR_DB setting, or monitor.db here."""
    from monitor import settings

    return Store(path or settings.get("db") or DEFAULT_DB)
