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
    risk.py      turn risks, suspected lines and decisions on them (the risk model's)
    sides.py     which side of a stereo call is transcribed (collector first)
"""

from __future__ import annotations

import os

from monitor.store.accounts import WebRecords
from monitor.store.calls import SEVERITY_RANK, CallRecords, StoredFinding
from monitor.store.database import DEFAULT_DB, StoreError
from monitor.store.queries import Queries
from monitor.store.risk import REVIEWER_RULE, RiskRecords
from monitor.store.sides import SideRecords

__all__ = ["Store", "StoreError", "StoredFinding", "SEVERITY_RANK", "REVIEWER_RULE", "open_store", "DEFAULT_DB"]


class Store(CallRecords, WebRecords, Queries, RiskRecords, SideRecords):
    """A handle on one database file (see the module docstring for what it holds)."""


def open_store(path: str | os.PathLike[str] | None = None) -> Store:
    """The database at ``path``, or at the MONITOR_DB setting, or monitor.db here."""
    from monitor import settings

    return Store(path or settings.get("db") or DEFAULT_DB)
