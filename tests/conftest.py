"""Shared fixtures. The rule engine is loaded once per test session (rules are data;
loading is the slow part)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MONITOR_SHARED", REPO.parent / "shared"))
DEVSET = SHARED / "devset"


@pytest.fixture(scope="session")
def engine():
    from monitor.detection.examples import load_engine

    return load_engine(REPO / "rules")


def require_devset() -> Path:
    if not (DEVSET / "utterances.jsonl").exists():
        pytest.skip(f"dev set not found at {DEVSET} (set MONITOR_SHARED)")
    return DEVSET


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """A database file with every migration applied and nothing in it, made once; tests
    that need a fresh store copy it (migrating takes longer than copying)."""
    from monitor.store import Store

    path = tmp_path_factory.mktemp("store") / "empty.db"
    Store(path).close()
    return path
