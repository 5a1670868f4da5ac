"""The `similar:` leaf: its guard-rails at load time, where embeddings are (not) computed,
what a finding through it carries, and calibration (held out, reproducible)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.detection.embedding import Embedder
from monitor.detection.engine import Engine
from monitor.detection.rules import CALIBRATION_FILE, examples_digest, load_rules
from monitor.detection.text import normalise
from monitor.errors import RuleError
from monitor.models import Call, Turn
from monitor.runs.calibration import MIN_TRUE_POSITIVES, Scored, calibrate, choose_threshold, write_calibration

from .conftest import REPO

EXAMPLES = ["你的同事都知道你欠钱了", "我已经告诉你领导你欠款的事"]

RULE = """\
id: third-party-demo-similar
title: demo
description: demo
category: third_party
severity: high
legal_basis: [demo clause]
match:
  all:
    - terms: [同事, 领导]
    - similar:
        examples: [你的同事都知道你欠钱了, 我已经告诉你领导你欠款的事]
examples:
  fire: [你同事们都知道你欠钱了]
  quiet: [您好]
"""


def write_pack(folder: Path, rule: str = RULE, threshold: float | None = 0.9, name: str = "third-party-demo-similar") -> Path:
    (folder / "lexicons").mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(rule, encoding="utf-8")
    if threshold is not None:
        digest = examples_digest(tuple(normalise(e) for e in EXAMPLES))
        (folder / CALIBRATION_FILE).write_text(json.dumps(
            {"format": 1, "precision_floor": 0.97, "rules": {name: {"threshold": threshold, "examples": digest}}}
        ), encoding="utf-8")
    return folder


def problems(folder: Path) -> list[tuple[str, int | None, str]]:
    with pytest.raises(RuleError) as raised:
        load_rules(folder)
    return [(Path(p.path).name, p.line, p.message) for p in raised.value.problems]


# --- refused at load, each with file:line ----------------------------------------------------


def test_similar_outside_all_is_refused_with_its_line(tmp_path):
    rule = RULE.replace(
        "  all:\n    - terms: [同事, 领导]\n    - similar:\n        examples: [你的同事都知道你欠钱了, 我已经告诉你领导你欠款的事]\n",
        "  similar:\n    examples: [你的同事都知道你欠钱了]\n",
    )
    [(name, line, message)] = problems(write_pack(tmp_path, rule))
    assert (name, line) == ("third-party-demo-similar.yaml", 8)
    assert "allowed only as an item of an 'all:'" in message


def test_similar_under_any_is_refused(tmp_path):
    rule = RULE.replace("  all:\n", "  any:\n")
    [(name, line, message)] = problems(write_pack(tmp_path, rule))
    assert (name, line) == ("third-party-demo-similar.yaml", 10)
    assert "allowed only as an item of an 'all:'" in message


def test_similar_without_a_lexical_anchor_is_refused(tmp_path):
    # The only sibling is a `not`: nothing lexical must be present.
    rule = RULE.replace("    - terms: [同事, 领导]\n", "    - not: {terms: [您好]}\n")
    [(name, line, message)] = problems(write_pack(tmp_path, rule))
    assert (name, line) == ("third-party-demo-similar.yaml", 10)
    assert "needs a lexical anchor" in message


def test_a_hand_typed_threshold_is_refused_with_its_line(tmp_path):
    rule = RULE.replace("        examples: [你的", "        threshold: 0.9\n        examples: [你的")
    [(name, line, message)] = problems(write_pack(tmp_path, rule))
    assert (name, line) == ("third-party-demo-similar.yaml", 11)
    assert "monitor rules calibrate" in message and "not typed into a rule file" in message


def test_a_threshold_beside_similar_is_refused_too(tmp_path):
    rule = RULE.replace("    - similar:\n", "    - threshold: 0.8\n      similar:\n")
    [(name, line, message)] = problems(write_pack(tmp_path, rule))
    assert (name, line) == ("third-party-demo-similar.yaml", 10)
    assert "not typed into a rule file" in message


def test_a_similar_leaf_without_calibration_is_refused(tmp_path):
    [(name, line, message)] = problems(write_pack(tmp_path, threshold=None))
    assert (name, line) == ("third-party-demo-similar.yaml", 10)
    assert "no calibrated threshold" in message and "run `monitor rules calibrate`" in message


def test_changed_examples_need_a_new_calibration(tmp_path):
    folder = write_pack(tmp_path, RULE.replace("你欠款的事]", "你欠款的事, 你老板也知道了]"))
    [(_, line, message)] = problems(folder)
    assert line == 10 and "changed since" in message


def test_rules_check_reports_the_refusal_as_file_line(tmp_path):
    rule = RULE.replace("        examples: [你的", "        threshold: 0.9\n        examples: [你的")
    folder = write_pack(tmp_path, rule)
    result = CliRunner().invoke(main, ["rules", "check", str(folder)])
    assert result.exit_code == 1
    assert "third-party-demo-similar.yaml:11: " in result.output


@pytest.mark.slow
def test_the_rule_set_version_includes_the_calibration(tmp_path):
    folder = write_pack(tmp_path)
    before = load_rules(folder).version
    document = json.loads((folder / CALIBRATION_FILE).read_text())
    document["rules"]["third-party-demo-similar"]["threshold"] = 0.91
    (folder / CALIBRATION_FILE).write_text(json.dumps(document))
    assert load_rules(folder).version != before


# --- where embeddings are computed (the real model) ---------------------------------------------


@pytest.fixture(scope="module")
def embedder():
    return Embedder()


@pytest.mark.slow
def test_embeddings_only_for_anchored_collector_turns_cached_by_text(tmp_path, embedder):
    engine = Engine(load_rules(write_pack(tmp_path)), embedder)
    [rule] = engine.similar_rules
    engine.example_vectors(rule)
    computed = embedder.computed

    def scan(speaker, text):
        return engine.scan(Call(id="c", turns=(Turn(speaker, text),), is_utterance=True))

    scan("debtor", "我同事都知道我欠钱了，你们别再打了")  # a debtor: never embedded
    scan("collector", "您好，请问是王先生吗")  # no anchor
    scan("collector", "我们不会告诉你同事你欠钱的事")  # anchor denied in its clause
    scan("collector", "他说你同事都知道你欠钱了")  # reported speech
    scan("collector", "你同事今天请假了吗")  # anchored, but shares almost no words with an example
    assert embedder.computed == computed
    assert engine.stats["embedded"] == 0

    result = scan("collector", "你同事们全都知道你欠钱了")
    assert embedder.computed == computed + 1
    scan("unknown", "你同事们全都知道你欠钱了")  # the same words: from the cache
    assert embedder.computed == computed + 1
    assert engine.stats["embedded"] == 2

    [finding] = result.findings
    assert finding.rule == "third-party-demo-similar"
    assert 0.9 <= finding.similarity <= 1.0
    assert finding.nearest_example == "你的同事都知道你欠钱了"
    contract = finding.to_contract()
    assert contract["similarity"] == finding.similarity and contract["nearest_example"] == finding.nearest_example


@pytest.mark.slow
def test_below_the_threshold_nothing_fires(tmp_path, embedder):
    engine = Engine(load_rules(write_pack(tmp_path, threshold=0.999)), embedder)
    result = engine.scan(Call(id="c", turns=(Turn("collector", "你同事们全都知道你欠钱了"),), is_utterance=True))
    assert result.findings == ()


def test_a_lexical_finding_carries_no_similarity_keys(engine):
    result = engine.scan(Call(id="c", turns=(Turn("collector", "再不还钱我就去你单位找你"),), is_utterance=True))
    assert result.findings
    assert all("similarity" not in f.to_contract() for f in result.findings)


def test_the_bundled_similar_rules_fire_with_score_and_nearest_example(engine):
    # Scored even where a lexical rule already flags the line (in use it is a fallback).
    engine = Engine(engine.pack, fallback_only=False)
    text = "我帮你跟你爸妈说一声吧"
    result = engine.scan(Call(id="c", turns=(Turn("collector", text),), is_utterance=True))
    [finding] = [f for f in result.findings if f.rule == "third-party-contact-similar"]
    calibration = json.loads((REPO / "rules" / CALIBRATION_FILE).read_text())
    assert finding.similarity >= calibration["rules"]["third-party-contact-similar"]["threshold"]
    assert finding.nearest_example in engine.pack.rule("third-party-contact-similar").similar_leaf.matcher.examples
    debtor = engine.scan(Call(id="d", turns=(Turn("debtor", text),), is_utterance=True))
    assert debtor.findings == ()


# --- calibration ------------------------------------------------------------------------------


def test_choose_threshold_keeps_the_precision_floor():
    points = [Scored(0, s, y) for s, y in [(0.99, True), (0.98, True), (0.97, True), (0.96, True),
                                           (0.95, False), (0.94, True), (0.90, False)]]
    assert choose_threshold(points, 0.97) == 0.96  # 4 of 4 right; one lower takes a wrong one
    assert choose_threshold(points, 0.8) == 0.94  # 5 of 6
    assert choose_threshold(points[:MIN_TRUE_POSITIVES - 1], 0.5) is None  # too few to tell


def test_a_threshold_never_admits_a_turn_nearer_a_counter_example():
    """A turn scored "not like them" (nearer a lawful counter-example) stays out even where
    every anchored turn is right, and the report warns when the threshold takes all the
    scored turns."""
    from monitor.runs.calibration import UNLIKE_SCORE, report

    points = [Scored(0, s, True) for s in (0.95, 0.93, 0.91)] + [Scored(0, UNLIKE_SCORE, True)]
    assert choose_threshold(points, 0.97) == 0.91
    entry = {"category": "threat", "threshold": 0.91, "admits_every_scored_turn": True, "held_out": [],
             "all_files": {"anchored": 4, "positives": 4, "precision": 1.0, "recall": 0.75}}
    assert "admits every scored turn" in report({"rules": {"r": entry}})
    assert "warning" not in report({"rules": {"r": {**entry, "admits_every_scored_turn": False}}})


def _labelled(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.slow
def test_calibration_holds_each_file_out_and_is_reproducible(tmp_path, embedder):
    folder = write_pack(tmp_path / "rules", threshold=None)
    first = _labelled(tmp_path / "a.jsonl", [
        {"id": "a1", "speaker": "collector", "text": "你同事们都知道你欠钱了", "categories": ["third_party"]},
        {"id": "a2", "speaker": "collector", "text": "你领导我已经通知了，说你欠钱不还", "categories": ["third_party"]},
        {"id": "a3", "speaker": "collector", "text": "我跟你同事说了你欠款的事", "categories": ["third_party"]},
        {"id": "a4", "speaker": "collector", "text": "麻烦您同事转告他回个电话", "categories": []},
        {"id": "a6", "speaker": "collector", "text": "你的同事都知道你最近很忙", "categories": []},
        {"id": "a5", "speaker": "debtor", "text": "我同事都知道我欠钱了", "categories": []},
    ])
    second = _labelled(tmp_path / "b.jsonl", [
        {"id": "b1", "speaker": "collector", "text": "你领导那边我已经讲了你欠钱的事", "categories": ["third_party"]},
        {"id": "b2", "speaker": "collector", "text": "你同事全都晓得你欠钱了", "categories": ["third_party"]},
        {"id": "b3", "speaker": "collector", "text": "我已经告诉你们领导你欠款了", "categories": ["third_party"]},
        {"id": "b4", "speaker": "unknown", "text": "您领导好，我找一下他本人", "categories": []},
    ])
    document = calibrate(folder, [first, second], 0.97, embedder)
    again = calibrate(folder, [first, second], 0.97, embedder)
    assert document == again
    entry = document["rules"]["third-party-demo-similar"]
    assert [h["file"].rsplit("/", 1)[-1] for h in entry["held_out"]] == [first.name, second.name]
    # Scored: the collector/unknown lines whose words come near an example; not the
    # debtor's, nor the call-back requests (a4, b4) that share too little with them.
    assert entry["all_files"]["anchored"] == 7
    # Held out means chosen without the file: the same as calibrating on the other alone.
    only_second = calibrate(folder, [second], 0.97, embedder)["rules"]["third-party-demo-similar"]["threshold"]
    only_first = calibrate(folder, [first], 0.97, embedder)["rules"]["third-party-demo-similar"]["threshold"]
    assert entry["threshold"] is not None and only_second is not None
    assert entry["held_out"][0]["threshold"] == only_second
    assert entry["held_out"][1]["threshold"] == only_first
    assert [d["sha256"] for d in document["data"]] == [hashlib.sha256(p.read_bytes()).hexdigest() for p in (first, second)]
    assert document["model"].startswith("intfloat/multilingual-e5-small")

    write_calibration(document, folder)
    pack = load_rules(folder)  # now calibrated: it loads
    leaf = pack.rule("third-party-demo-similar").similar_leaf
    assert leaf.matcher.threshold == entry["threshold"]


@pytest.mark.slow
def test_the_committed_calibration_matches_the_bundled_rules():
    """Every similar rule in rules/ has a threshold computed for its current examples."""
    pack = load_rules(REPO / "rules")
    calibration = json.loads((REPO / "rules" / CALIBRATION_FILE).read_text())
    similar = [r for r in pack.turn_rules if r.similar_leaf is not None]
    assert len(similar) >= 3
    for rule in similar:
        entry = calibration["rules"][rule.id]
        assert entry["examples"] == rule.similar_leaf.matcher.digest
        assert entry["threshold"] == rule.similar_leaf.matcher.threshold
        assert len(entry["held_out"]) == len(calibration["data"])


def test_similarity_off_scores_nothing(tmp_path, embedder):
    engine = Engine(load_rules(write_pack(tmp_path)), embedder, similarity=False)
    result = engine.scan(Call(id="c", turns=(Turn("collector", "你同事们全都知道你欠钱了"),), is_utterance=True))
    assert result.findings == ()
    assert engine.stats["embedded"] == 0
    rule = engine.pack.rule("third-party-demo-similar")
    assert engine.similarity(rule, engine.pack.analyser.analyse("你同事们全都知道你欠钱了")) is None


def test_a_threshold_never_lets_a_quiet_example_fire():
    """Calibration may not pick a threshold at or under the score of one of the rule's
    own quiet examples, whatever the labelled data would allow."""
    from monitor.runs.calibration import _above

    assert _above(0.90, 0.93) == 0.9301
    assert _above(0.93, 0.93) == 0.9301
    assert _above(0.95, 0.93) == 0.95
    assert _above(None, 0.93) is None
    assert _above(0.90, None) == 0.90
