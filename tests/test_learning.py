"""The risk model: its file (versioned, hashed, refused with the file named when it does
not fit), suspected lines in scan and in the store, and that they never reach a
complaint, an incident report or the violations export until a reviewer confirms them.

Uses the shipped model file (real scikit-learn model, real SQLite)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from monitor.audit import Action
from monitor.cli import main
from monitor.documents.reports import ReportError, complaint_context, incident_context
from monitor.errors import InputError
from monitor.learning import model as model_module
from monitor.learning.data import FORBIDDEN_PREFIXES, SHIPPED_SETS, TURN_CATEGORIES, read_labelled, shipped_lines
from monitor.learning.model import MAGIC, SHIPPED_MODEL, ModelError, current_model, load_model, read_header, save_model
from monitor.learning.suggest import as_yaml, suggestions
from monitor.learning.suspects import assess, reviewer_finding_terms
from monitor.models import Call, Turn
from monitor.runs.pipeline import scan_stored
from monitor.runs.scan import scan_lines
from monitor.store import REVIEWER_RULE, Store, StoreError

from .conftest import REPO

ZONE_NAME = "Asia/Shanghai"
POLITE = "您好，提醒您本期账单明天到期，请通过官方 App 还款。"
THREAT = "今天再不还，我们就把你通讯录里的人挨个打一遍。"


@pytest.fixture(scope="session")
def shipped():
    return load_model(SHIPPED_MODEL)


@pytest.fixture(scope="session")
def missed_line(engine, shipped):
    """A labelled violation the rules miss and the shipped model suspects."""
    for line in read_labelled(REPO / "corpus/utterances_third_party_cash.jsonl"):
        if not line.categories or line.speaker != "collector":
            continue
        result = engine.scan(Call(id="x", turns=(Turn("collector", line.text),)))
        suspected = {s.category for s in assess(shipped, result).suspected}
        if not result.findings and suspected & set(line.categories):
            return line.text, sorted(suspected & set(line.categories))[0]
    pytest.fail("no violation that only the model catches")


def store_call(store: Store, call_id: str, lines) -> str:
    turns = tuple(Turn(speaker, text, 3.0 * i, 3.0 * i + 2.5) for i, (speaker, text) in enumerate(lines))
    return store.save_transcript(Call(id=call_id, turns=turns, sha256=hashlib.sha256(call_id.encode()).hexdigest(),
                                      duration=3.0 * len(lines), source=f"{call_id}.wav"))


# --- the model file ------------------------------------------------------------------------


def test_shipped_model_header_names_format_sklearn_version_and_training_data():
    header = read_header(SHIPPED_MODEL)
    assert header["format"] == model_module.MODEL_FORMAT
    assert header["sklearn"] == model_module.SKLEARN_VERSION == "1.9.1"
    assert len(header["data_sha256"]) == 64 and len(header["payload_sha256"]) == 64
    assert set(header["thresholds"]) == set(TURN_CATEGORIES)
    assert all(0.0 < t < 1.0 for t in header["thresholds"].values())


def test_saved_model_loads_back_with_the_same_scores(tmp_path, shipped):
    path = save_model(shipped, tmp_path / "copy.pkl")
    again = load_model(path)
    texts = [POLITE, THREAT]
    assert np.allclose(again.score(texts), shipped.score(texts))
    assert again.thresholds == shipped.thresholds


def _rewrite_header(source: Path, target: Path, **changes) -> Path:
    data = source.read_bytes()
    end = data.index(b"\n", len(MAGIC))
    header = json.loads(data[len(MAGIC):end]) | changes
    target.write_bytes(MAGIC + json.dumps(header).encode() + data[end:])
    return target


@pytest.mark.parametrize("damage, message", [
    ("format", f"risk-model format 0, but this monitor reads format {model_module.MODEL_FORMAT}"),
    ("sklearn", "written with scikit-learn 0.24.2, but 1.9.1 is installed"),
    ("payload", "is corrupt"),
    ("garbage", "not a risk-model file"),
    ("missing", "risk-model file not found"),
])
def test_a_mismatched_or_corrupt_model_file_is_refused_naming_the_file(tmp_path, damage, message):
    path = tmp_path / "bad-model.pkl"
    if damage == "format":
        _rewrite_header(SHIPPED_MODEL, path, format=0)
    elif damage == "sklearn":
        _rewrite_header(SHIPPED_MODEL, path, sklearn="0.24.2")
    elif damage == "payload":
        data = bytearray(SHIPPED_MODEL.read_bytes())
        data[-100] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "garbage":
        path.write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(ModelError) as caught:
        load_model(path)
    assert str(caught.value).startswith(str(path)) and message in str(caught.value)


def bad_model(tmp_path) -> Path:
    path = tmp_path / "broken-risk-model.pkl"
    path.write_bytes(SHIPPED_MODEL.read_bytes()[:5000])  # truncated
    return path


@pytest.mark.slow
@pytest.mark.parametrize("command", ["scan", "batch", "serve", "rescan"])
def test_a_bad_model_file_stops_scan_batch_and_serve_with_its_name(tmp_path, monkeypatch, command):
    path = bad_model(tmp_path)
    monkeypatch.setenv("MONITOR_RISK_MODEL", str(path))
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "u1", "speaker": "collector", "text": THREAT}, ensure_ascii=False) + "\n")
    args = {
        "scan": ["scan", str(source)],
        "batch": ["batch", str(tmp_path), "--db", str(tmp_path / "b.db")],
        "serve": ["serve", "--db", str(tmp_path / "s.db"), "--port", "0"],
        "rescan": ["rescan", "--db", str(tmp_path / "r.db")],
    }[command]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert f"{path}: the risk-model file is corrupt" in result.output
    assert '"categories"' not in result.output  # nothing was scanned
    assert not (tmp_path / "b.db").exists() and not (tmp_path / "s.db").exists()


def test_scan_stored_never_runs_without_its_model(tmp_path, engine, monkeypatch):
    monkeypatch.setenv("MONITOR_RISK_MODEL", str(bad_model(tmp_path)))
    store = Store(tmp_path / "calls.db")
    store_call(store, "c1", [("collector", THREAT)])
    with pytest.raises(ModelError, match="broken-risk-model.pkl"):
        scan_stored(store, engine, ("transcribed",))
    assert store.counts() == {"transcribed": 1}  # not marked done without its risks


@pytest.mark.parametrize(
    "name", [f"{prefix}_utterances.jsonl" for prefix in FORBIDDEN_PREFIXES]
)
def test_the_fresh_blind_sets_are_never_training_data(name):
    assert not any(name.split("_")[0] in shipped for shipped in SHIPPED_SETS)
    with pytest.raises(InputError, match="never training data"):
        read_labelled(REPO / "bench/data" / name)


def test_training_lines_are_collector_or_unknown_turns_only(engine):
    lines = shipped_lines(engine.pack)
    assert {line.speaker for line in lines} == {"collector", "unknown"}
    assert any(not line.fully_labelled for line in lines)  # rule examples: one category known
    assert sum(line.lawful for line in lines) > 1000


def test_the_fast_scorer_equals_calibrated_classifier_probabilities():
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import LinearSVC

    from monitor.learning.training import SVM_C, _fit_category

    rng = np.random.default_rng(0)
    X = rng.random((120, 8))
    y = X[:, 0] + 0.3 * rng.random(120) > 0.7
    weights, intercept, a, b = _fit_category(X, y, np.ones(120))
    reference = CalibratedClassifierCV(LinearSVC(C=SVM_C, class_weight="balanced", random_state=0), method="sigmoid",
                                       cv=3, ensemble=False).fit(X, y)
    ours = 1 / (1 + np.exp(a * (X @ weights + intercept) + b))
    assert np.allclose(ours, reference.predict_proba(X)[:, 1], atol=1e-5)


# --- scan ----------------------------------------------------------------------------------


def test_scan_adds_suspected_and_leaves_categories_to_the_rules(engine, shipped, missed_line):
    text, category = missed_line
    records = [
        {"id": "u1", "speaker": "collector", "text": text},
        {"id": "u2", "speaker": "debtor", "text": text},
        {"id": "c1", "turns": [{"speaker": "collector", "text": POLITE}, {"speaker": "unknown", "text": text}]},
        {"id": "c2", "turns": "nope"},
    ]
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    from zoneinfo import ZoneInfo

    plain = list(scan_lines(engine, lines, ZoneInfo(ZONE_NAME)))
    scored = list(scan_lines(engine, lines, ZoneInfo(ZONE_NAME), shipped))
    for before, after in zip(plain, scored):
        assert {k: v for k, v in after.items() if k != "suspected"} == before
    assert category in {s["category"] for s in scored[0]["suspected"]}
    assert all(s["turn"] is None for s in scored[0]["suspected"])
    assert scored[0]["categories"] == []  # suspected is not a category
    assert scored[1]["suspected"] == []  # a debtor's words are never scored
    assert {s["turn"] for s in scored[2]["suspected"]} == {1}
    assert "suspected" not in scored[3] and "error" in scored[3]


@pytest.mark.slow
def test_cli_scan_output_gains_suspected(tmp_path, missed_line):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "u1", "speaker": "collector", "text": missed_line[0]}, ensure_ascii=False) + "\n")
    result = CliRunner().invoke(main, ["scan", str(source)])
    record = json.loads(result.stdout.splitlines()[0])
    assert result.exit_code == 0
    assert record["categories"] == [] and record["suspected"][0]["score"] > 0


# --- the store: risks, suspected lines, documents -----------------------------------------


@pytest.fixture
def stored(tmp_path, engine, shipped, missed_line):
    """A call with one rule finding (turn 1), one suspected line (turn 3), scanned."""
    store = Store(tmp_path / "calls.db")
    text, category = missed_line
    store_call(store, "c1", [("collector", POLITE), ("collector", THREAT), ("debtor", text), ("collector", text)])
    store_call(store, "c2", [("collector", POLITE), ("unknown", text)])
    store_call(store, "c3", [("collector", POLITE)])
    scan_stored(store, engine, ("transcribed",), model=shipped)
    yield store, text, category
    store.close()


def test_every_collector_turn_gets_a_risk_per_category_and_the_call_its_highest(stored):
    store, _text, _category = stored
    risks = store.turn_risks("c1")
    assert {(r["idx"], r["category"]) for r in risks} == {(i, c) for i in (0, 1, 3) for c in TURN_CATEGORIES}
    assert store.call_risk("c1") == max(r["score"] for r in risks)


def test_suspected_lines_are_kept_apart_from_findings(stored):
    store, text, category = stored
    suspects = store.suspected_lines("c1")
    assert [(s["turn"], s["category"]) for s in suspects if s["category"] == category] == [(3, category)]
    assert all(s["turn"] != 2 for s in suspects)  # the debtor's turn
    assert all(f.finding.turn == 1 for f in store.findings("c1"))
    assert store.findings("c2") == []


def test_the_risk_queue_orders_by_risk_and_suggests_calls_with_only_suspected_lines(stored):
    store, _text, _category = stored
    queue = store.risk_queue()
    assert [r["risk"] for r in queue] == sorted((r["risk"] for r in queue), reverse=True)
    by_id = {r["id"]: r for r in queue}
    assert by_id["c2"]["suggested"] and not by_id["c1"]["suggested"] and not by_id["c3"]["suggested"]
    assert [r["id"] for r in store.risk_queue(suggested_only=True)] == ["c2"]
    assert store.review_queue() and all(r["id"] != "c2" for r in store.review_queue())


def _text_of(context) -> str:
    return json.dumps(context, ensure_ascii=False, default=str)


def test_suspected_lines_reach_no_document_or_export_until_confirmed(stored, engine):
    store, text, category = stored
    assert text not in _text_of(complaint_context(store, "c1", None, None))
    with pytest.raises(ReportError):
        complaint_context(store, "c2", None, None)  # a suspected line is nothing to complain about
    store.review("c1:1:" + store.findings("c1")[0].finding.rule, "confirmed", "rita")
    assert text not in _text_of(incident_context(store, "c1"))
    assert all(row["evidence"] != text for row in store.export_rows())

    suspect_id = next(s["id"] for s in store.suspected_lines("c1") if s["category"] == category)
    severity, clauses = reviewer_finding_terms(engine.pack, category)
    finding_id = store.decide_suspected(suspect_id, "confirmed", "rita", "与案情有关", severity, clauses)

    finding = next(f for f in store.findings("c1") if f.id == finding_id)
    assert (finding.finding.rule, finding.finding.category, finding.finding.turn) == (REVIEWER_RULE, category, 3)
    assert finding.decision == "confirmed" and finding.finding.legal_basis == clauses
    review = store.latest_review(finding_id)
    assert (review["reviewer"], review["note"]) == ("rita", "与案情有关")
    assert text in _text_of(complaint_context(store, "c1", None, None))
    assert text in _text_of(incident_context(store, "c1"))
    exported = [row for row in store.export_rows() if row["finding_id"] == finding_id]
    assert exported and exported[0]["rule"] == REVIEWER_RULE and exported[0]["review_status"] == "confirmed"
    assert category in json.loads(store.call_row("c1")["categories"])
    assert [a["action"] for a in store.audit_log(suspect_id)][-1] == Action.SUSPECT_CONFIRMED.value


def test_a_rescan_keeps_a_reviewer_finding_and_the_decision_on_a_suspected_line(stored, engine, shipped):
    store, _text, category = stored
    suspect_id = next(s["id"] for s in store.suspected_lines("c2"))
    finding_id = store.decide_suspected(suspect_id, "confirmed", "rita")
    scan_stored(store, engine, ("done",), model=shipped)
    assert any(f.id == finding_id for f in store.findings("c2"))
    assert store.suspect(suspect_id)["decision"] == "confirmed"
    with pytest.raises(StoreError, match="already confirmed"):
        store.decide_suspected(suspect_id, "dismissed", "ralf")


def test_rule_suggestions_are_yaml_ready_to_paste(stored):
    store, text, _category = stored
    suspect_id = next(s["id"] for s in store.suspected_lines("c2"))
    store.decide_suspected(suspect_id, "confirmed", "rita", "漏报")
    rule_finding = store.findings("c1")[0]
    store.review(rule_finding.id, "dismissed", "ralf", "只是提醒")
    found = suggestions(store)
    text_yaml = as_yaml(found)
    documents = [yaml.safe_load(part) for part in text_yaml.split("\n\n")]
    fire = [d["fire"] for d in documents if "fire" in d]
    quiet = [d["quiet"] for d in documents if "quiet" in d]
    assert fire == [[{"text": text, "speaker": "unknown"}]]
    assert quiet == [[THREAT]]
    assert f"rules/{rule_finding.finding.rule}.yaml" in text_yaml and "只是提醒" in text_yaml

    result = CliRunner().invoke(main, ["rules", "suggest", "--db", str(store.path)])
    assert result.exit_code == 0 and result.stdout == text_yaml


def test_learn_needs_decisions_on_both_sides_and_never_writes_the_shipped_file(stored, engine, tmp_path, monkeypatch):
    from monitor.learning.learn import learn
    from monitor.errors import MonitorError

    store, _text, _category = stored
    monkeypatch.setenv("MONITOR_INSTANCE", str(tmp_path / "instance"))
    with pytest.raises(MonitorError, match="shipped model"):
        learn(store, engine, SHIPPED_MODEL)
    outcome = learn(store, engine)
    assert not outcome.installed and "too few decisions" in outcome.reason
    assert not (tmp_path / "instance" / "risk-model.pkl").exists()
    assert store.audit_log()[-1]["action"] == Action.MODEL_KEPT.value
    assert current_model() is current_model()  # cached: loaded once per process


def test_scoring_computes_the_same_tfidf_as_scikit_learn(shipped, engine):
    from scipy.sparse import hstack

    from monitor.learning.model import feature_texts, sigmoid

    texts = [line.text for line in shipped_lines(engine.pack)[:300]] + ["", "   ", "ok"]
    views = feature_texts(texts)
    X = hstack([v.transform(view) for v, view in zip(shipped.vectorizers, views)]).tocsr()
    reference = sigmoid(shipped.slopes * (np.asarray(X @ shipped.weights) + shipped.intercepts) + shipped.offsets)
    assert np.allclose(shipped.score(texts), reference, atol=1e-5)


@pytest.mark.slow
def test_batch_learn_runs_learn_after_the_batch(tmp_path, monkeypatch):
    monkeypatch.setenv("MONITOR_INSTANCE", str(tmp_path / "instance"))
    archive = tmp_path / "archive"
    archive.mkdir()
    result = CliRunner().invoke(main, ["batch", str(archive), "--db", str(tmp_path / "b.db"), "--learn"])
    assert result.exit_code == 0, result.output
    assert "learn: 0 decision(s)" in result.output
    assert Store(tmp_path / "b.db").audit_log()[-1]["action"] == Action.MODEL_KEPT.value
