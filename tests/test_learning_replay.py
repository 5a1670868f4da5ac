"""Replay: reviewers' decisions on one half of a labelled set, fed through the store,
teach the risk model; on the other half the suspected-line recall does not fall and the share
of lawful lines suspected stays within the budget the thresholds are chosen for.

The baseline model is trained without that set (as if the team's calls were new to
it); ``monitor learn`` then retrains with the decisions, leaving the set out of the
shipped data too, so the other half stays unseen."""

from __future__ import annotations

import hashlib

import pytest

from monitor.audit import Action
from monitor.learning.data import read_labelled, shipped_lines
from monitor.learning.learn import learn
from monitor.learning.measure import measure
from monitor.learning.model import load_model, save_model
from monitor.learning.suspects import reviewer_finding_terms
from monitor.learning.training import TARGET_LAWFUL_RATE, train
from monitor.models import Call, Turn
from monitor.runs.pipeline import scan_stored
from monitor.store import Store

from .conftest import REPO

SET = "corpus/utterances_third_party_cash.jsonl"


def _half(line) -> int:
    return hashlib.sha256(line.group.encode()).digest()[0] % 2


def replay_decisions(store: Store, engine, lines) -> int:
    """Every finding and suspected line on ``lines`` decided as its label says."""
    for i, line in enumerate(lines):
        call = Call(id=f"r{i}", turns=(Turn(line.speaker, line.text, 0.0, 4.0),),
                    sha256=hashlib.sha256(f"r{i}".encode()).hexdigest(), duration=4.0)
        store.save_transcript(call)
    scan_stored(store, engine, ("transcribed",))
    decided = 0
    labels = {f"r{i}": set(line.categories) for i, line in enumerate(lines)}
    for stored in store.findings():
        verdict = "confirmed" if stored.finding.category in labels[stored.call_id] else "dismissed"
        store.review(stored.id, verdict, "rita", "replay")
        decided += 1
    for suspect in store.suspected_lines():
        verdict = "confirmed" if suspect["category"] in labels[suspect["call_id"]] else "dismissed"
        severity, clauses = reviewer_finding_terms(engine.pack, suspect["category"])
        store.decide_suspected(suspect["id"], verdict, "rita", "replay", severity, clauses)
        decided += 1
    return decided


@pytest.mark.slow
def test_reviewer_decisions_raise_suspected_recall_without_more_lawful_lines_suspected(tmp_path, engine, monkeypatch):
    lines = read_labelled(REPO / SET)
    taught = [line for line in lines if _half(line) == 0]
    unseen = [line for line in lines if _half(line) == 1]
    baseline, _report = train(shipped_lines(engine.pack, exclude=[SET]), engine)
    model_file = save_model(baseline, tmp_path / "risk-model.pkl")
    monkeypatch.setenv("MONITOR_RISK_MODEL", str(model_file))

    store = Store(tmp_path / "calls.db")
    assert replay_decisions(store, engine, taught) > 100
    outcome = learn(store, engine, exclude=(SET,))
    assert outcome.installed, outcome.summary()
    assert outcome.new_score >= outcome.old_score
    installed = [a for a in store.audit_log() if a["action"] == Action.MODEL_INSTALLED.value]
    assert len(installed) == 1 and '"old_score"' in installed[0]["detail"] and '"new_score"' in installed[0]["detail"]

    before = measure(baseline, engine, unseen)
    after = measure(load_model(model_file), engine, unseen)
    print(f"\nbefore: {before.table()}\nafter: {after.table()}")
    # The rules may already catch nearly all of the unseen half, leaving the suspected
    # lines nothing to add; the decisions must not cost the model's own recall (with the
    # rules' examples in the training data it is already 0.97 before them). Retraining
    # chooses each category's threshold afresh for the lawful budget, so a pair scored
    # right at the old threshold can land just under the new one: the recall may move
    # by one standard error of a proportion measured on this many pairs, no more.
    pairs = sum(len(line.categories) for line in unseen if line.fully_labelled)
    noise = (before.model_recall * (1 - before.model_recall) / pairs) ** 0.5
    assert after.model_recall >= before.model_recall - noise
    assert after.suspect_recall >= before.suspect_recall
    assert after.line_coverage >= before.line_coverage
    # Lawful lines suspected stay within the budget the thresholds are chosen for (7% of
    # lawful training lines, out of fold), give or take two standard errors of a
    # proportion measured on this many unseen lawful lines.
    margin = 2 * (TARGET_LAWFUL_RATE * (1 - TARGET_LAWFUL_RATE) / after.lawful_lines) ** 0.5
    assert after.lawful_suspected_rate <= max(before.lawful_suspected_rate, TARGET_LAWFUL_RATE + margin)
