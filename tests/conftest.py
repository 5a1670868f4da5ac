"""Shared fixtures. The rule engine is loaded once per test session (rules are data;
loading is the slow part)."""

from __future__ import annotations

import dataclasses
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


def close(a, b, tol: float = 0.02) -> bool:
    """Equal, except that numbers may differ by ``tol`` of their size (at least ``tol``):
    CTranslate2 may place a word's timestamp 20 ms apart in two runs of the same audio
    (its threads sum in a different order), and the times and the signals built on them
    follow. Strings and flags must be equal."""
    if dataclasses.is_dataclass(a) and type(a) is type(b):
        return all(close(getattr(a, f.name), getattr(b, f.name), tol) for f in dataclasses.fields(a))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(close(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], tol) for k in a)
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return abs(a - b) <= tol * max(1.0, abs(a), abs(b))
    return a == b
