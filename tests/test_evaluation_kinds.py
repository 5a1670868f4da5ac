"""`monitor evaluate` files each miss under a kind: the nearest rule of its category and
the part of it that did not match."""

from __future__ import annotations

import pytest

import json
from zoneinfo import ZoneInfo

from click.testing import CliRunner

from monitor.cli import main
from monitor.detection.engine import Engine
from monitor.detection.rules import load_rules
from monitor.runs.evaluation import evaluate

RULE = """\
id: third-party-demo
title: demo
description: demo
category: third_party
severity: high
legal_basis: [demo clause]
match:
  any:
    - near: [{terms: [你爸, 你妈]}, {terms: [打电话, 告诉]}]
      within: 3
    - all:
        - terms: [通讯录]
        - terms: [挨个打]
examples:
  fire: [我给你爸打电话]
  quiet: [您好]
"""

RECORDS = [
    {"id": "hit", "speaker": "collector", "text": "我给你爸打电话", "categories": ["third_party"]},
    # 你妈 is there, no act of telling: the near's other side was absent.
    {"id": "m1", "speaker": "collector", "text": "你妈那边我们下午会联系", "categories": ["third_party"]},
    {"id": "m2", "speaker": "collector", "text": "你爸那边我们天天联系", "categories": ["third_party"]},
    # 通讯录 without 挨个打: the second part of the `all` was absent.
    {"id": "m3", "speaker": "collector", "text": "你通讯录里的人一个都跑不了", "categories": ["third_party"]},
    # Nothing of the rule at all.
    {"id": "m4", "speaker": "collector", "text": "你闺蜜我已经加上了", "categories": ["third_party"]},
    {"id": "ok", "speaker": "collector", "text": "您好", "categories": []},
]


def _pack(tmp_path):
    (tmp_path / "lexicons").mkdir(parents=True)
    (tmp_path / "third-party-demo.yaml").write_text(RULE, encoding="utf-8")
    return tmp_path


def test_misses_are_grouped_by_category_and_absent_part(tmp_path):
    engine = Engine(load_rules(_pack(tmp_path)))
    result = evaluate(engine, RECORDS, ZoneInfo("Asia/Shanghai"))
    assert result.scores["third_party"].fn == 4
    kinds = result.misses_by_kind()
    assert list(kinds) == ["third_party"]
    grouped = {(rule, absent): sorted(m["id"] for m in items) for rule, absent, items in kinds["third_party"]}
    assert grouped == {
        ("third-party-demo", "near: terms: 打电话, 告诉 (beside terms: 你爸, 你妈)"): ["m1", "m2"],
        ("third-party-demo", "terms: 挨个打"): ["m3"],
        ("-", "no part of any rule matched"): ["m4"],
    }
    # Largest kind first.
    assert kinds["third_party"][0][2][0]["id"] in ("m1", "m2")


@pytest.mark.slow
def test_evaluate_prints_the_kinds(tmp_path):
    data = tmp_path / "labelled.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in RECORDS), encoding="utf-8")
    result = CliRunner().invoke(main, ["evaluate", "--rules", str(_pack(tmp_path / "rules")), str(data)])
    assert result.exit_code == 0, result.output
    assert "misses by kind" in result.output
    assert "third_party: 4 missed" in result.output
    assert "2  third-party-demo: near: terms: 打电话, 告诉 (beside terms: 你爸, 你妈)" in result.output
