"""Every rule carries examples that must fire and examples that must stay quiet; each
example is one test here, so a failure names the rule and the sentence."""

import pytest

from monitor.detection.rules import load_rules
from monitor.detection.examples import run_examples

from .conftest import REPO

PACK = load_rules(REPO / "rules")


def _cases():
    for rule in PACK.rules:
        for index, example in enumerate(rule.examples):
            verdict = "fire" if example.fire else "quiet"
            yield pytest.param(rule.id, index, id=f"{rule.id}-{verdict}-{index}")


def test_every_rule_has_both_kinds_of_example():
    for rule in PACK.rules:
        assert any(e.fire for e in rule.examples), rule.id
        assert any(not e.fire for e in rule.examples), rule.id


@pytest.mark.parametrize("rule_id,index", list(_cases()))
def test_rule_example(engine, rule_id, index):
    rule = engine.pack.rule(rule_id)
    outcome = run_examples(engine, (rule,))[index]
    assert outcome.passed, outcome.detail


def test_every_rule_cites_a_clause():
    for rule in PACK.rules:
        assert rule.legal_basis and all(clause.strip() for clause in rule.legal_basis), rule.id
