"""Accuracy on the shared dev set: precision ≥ 0.90 and recall ≥ 0.85 per category, and
never a finding on a debtor's words. Our own labelled probe set is held to the same bar."""

from zoneinfo import ZoneInfo

import pytest

from monitor.runs.evaluation import evaluate, read_jsonl
from monitor.models import CATEGORIES

from .conftest import REPO, require_devset


def _assert_quality(engine, paths):
    result = evaluate(engine, read_jsonl(paths), ZoneInfo("Asia/Shanghai"))
    print(result.table())
    assert result.debtor_findings == 0
    for category in CATEGORIES:
        score = result.scores[category]
        if score.support:
            assert score.precision >= 0.90, (category, result.table())
            assert score.recall >= 0.85, (category, result.table())


def test_devset_precision_and_recall(engine):
    devset = require_devset()
    _assert_quality(engine, [devset / "utterances.jsonl", devset / "calls.jsonl"])


def test_probe_set_precision_and_recall(engine):
    _assert_quality(engine, [REPO / "tests/data/probe_utterances.jsonl", REPO / "tests/data/probe_calls.jsonl"])


@pytest.mark.parametrize("category", CATEGORIES)
def test_devset_covers_every_category(category):
    records = read_jsonl([require_devset() / "utterances.jsonl", require_devset() / "calls.jsonl"])
    assert any(category in r["categories"] for r in records)
