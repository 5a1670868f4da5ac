"""Accuracy on the dev set and the wider labelled corpus together (the acceptance bar of
the rule pack: every category precision ≥ 0.97 and recall ≥ 0.95), never a finding on
a debtor's words, and quiet on safe social-media comments."""

import json
from zoneinfo import ZoneInfo

import pytest

from monitor.models import CATEGORIES
from monitor.runs.evaluation import evaluate, read_jsonl
from monitor.runs.scan import scan_lines

from .conftest import REPO, SHARED, require_devset

CORPUS = REPO / "corpus"

# category: (precision floor, recall floor)
FLOORS = {category: (0.97, 0.95) for category in
          ("abuse", "threat", "third_party", "cash_to_collector", "impersonation")}


@pytest.fixture(scope="module")
def result(engine):
    devset = require_devset()
    paths = [devset / "utterances.jsonl", devset / "calls.jsonl", *sorted(CORPUS.glob("*.jsonl"))]
    return evaluate(engine, read_jsonl(paths), ZoneInfo("Asia/Shanghai"))


def test_corpus_is_large_enough():
    records = read_jsonl(sorted(CORPUS.glob("*.jsonl")))
    assert sum(1 for r in records if "turns" not in r) >= 1500
    assert sum(1 for r in records if "turns" in r) >= 40


@pytest.mark.parametrize("category", list(FLOORS))
def test_every_category_holds_its_floor(result, category):
    score = result.scores[category]
    precision, recall = FLOORS[category]
    assert score.support > 50
    assert score.precision >= precision, result.table()
    assert score.recall >= recall, result.table()


def test_debtor_lines_are_never_flagged(result):
    assert result.debtor_findings == 0
    assert set(FLOORS) | {"off_hours", "call_frequency"} == set(CATEGORIES)


@pytest.mark.parametrize("name", ["cold_test_subset.jsonl", "hedcold_perturbed_subset.jsonl"])
def test_safe_comments_are_rarely_flagged(engine, name):
    path = SHARED / "external" / name
    if not path.exists():
        pytest.skip(f"{path} not found (set MONITOR_SHARED)")
    with path.open(encoding="utf-8") as handle:
        safe = [json.loads(line) for line in handle if line.strip()]
    safe = [r for r in safe if not r["expected_abuse"]]
    lines = [json.dumps({"id": str(i), "speaker": "collector", "text": r["text"]}, ensure_ascii=False)
             for i, r in enumerate(safe)]
    flagged = [o for o in scan_lines(engine, lines, ZoneInfo("Asia/Shanghai")) if o["categories"]]
    assert len(safe) >= 100
    assert len(flagged) <= 0.05 * len(safe), [o["id"] for o in flagged]


def test_each_kind_of_speech_is_recognised(engine):
    """One or two lines for each kind of speech the rules must generalise to (profanity
    before a number, insults aimed at the family, veiled threats about children,
    contacts made jointly liable, an offer to tell the parents, 支付包 …) and lawful
    look-alikes that must stay quiet. A line may raise more than the kind it names."""
    records = read_jsonl([REPO / "tests/data/kinds_utterances.jsonl"])
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    wrong = []
    for record, output in zip(records, scan_lines(engine, lines, ZoneInfo("Asia/Shanghai"))):
        expected = set(record["categories"])
        found = set(output["categories"])
        if (expected and not expected <= found) or (not expected and found):
            wrong.append((record["text"], sorted(found)))
    assert not wrong
