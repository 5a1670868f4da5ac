"""Broken rules stop start-up with every problem located as file:line."""

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.errors import RuleError
from monitor.detection.rules import load_rules
from monitor.detection.examples import load_engine

from .conftest import REPO

GOOD_RULE = """\
id: abuse-demo
title: demo
description: demo rule
category: abuse
severity: high
legal_basis: [demo clause]
match:
  terms: [蠢货]
examples:
  fire: [你个蠢货]
  quiet: [您好]
"""


def write_pack(folder: Path, files: dict[str, str]) -> Path:
    (folder / "lexicons").mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_a_valid_pack_loads(tmp_path):
    pack = load_rules(write_pack(tmp_path, {"abuse-demo.yaml": GOOD_RULE}))
    assert [r.id for r in pack.rules] == ["abuse-demo"]


@pytest.fixture
def broken_pack(tmp_path):
    return write_pack(
        tmp_path,
        {
            "abuse-demo.yaml": GOOD_RULE,
            "syntax-error.yaml": GOOD_RULE.replace("id: abuse-demo", "id: syntax-error").replace(
                "severity: high", "severity: [high"
            ),
            "bad-category.yaml": GOOD_RULE.replace("id: abuse-demo", "id: bad-category").replace(
                "category: abuse", "category: rudeness"
            ),
            "bad-regex.yaml": GOOD_RULE.replace("id: abuse-demo", "id: bad-regex").replace(
                "  terms: [蠢货]", "  regex: '(蠢货'"
            ),
            "bad-example.yaml": GOOD_RULE.replace("id: abuse-demo", "id: bad-example").replace(
                "quiet: [您好]", "quiet: [您好, 你这个蠢货]"
            ),
        },
    )


def test_rules_check_names_file_and_line_of_every_problem(broken_pack):
    result = CliRunner().invoke(main, ["rules", "check", str(broken_pack)])
    assert result.exit_code != 0
    out = result.output
    assert "syntax-error.yaml:5: YAML syntax error" in out or "syntax-error.yaml:6: YAML syntax error" in out
    assert "bad-category.yaml:4: category: 'rudeness' is not one of" in out
    assert "bad-regex.yaml:8: match.regex: invalid regular expression" in out
    assert "bad-example.yaml:11: example must not fire bad-example" in out
    assert "abuse-demo.yaml" not in out


def test_scan_refuses_to_start_with_the_same_messages(broken_pack, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "u1", "speaker": "collector", "text": "你好"}\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["scan", "--rules", str(broken_pack), str(source)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "bad-regex.yaml:8: match.regex: invalid regular expression" in result.stderr
    assert "bad-category.yaml:4:" in result.stderr


def test_unknown_lexicon_and_id_mismatch_are_located(tmp_path):
    text = GOOD_RULE.replace("id: abuse-demo", "id: other-name").replace("  terms: [蠢货]", "  lexicon: nosuch")
    folder = write_pack(tmp_path, {"abuse-demo.yaml": text})
    with pytest.raises(RuleError) as caught:
        load_rules(folder)
    messages = [str(p) for p in caught.value.problems]
    assert any("abuse-demo.yaml:1: id 'other-name' must equal the file name" in m for m in messages)
    assert any("abuse-demo.yaml:8: match.lexicon: unknown lexicon nosuch" in m for m in messages)


def test_a_rule_may_not_target_debtor_speech(tmp_path):
    text = GOOD_RULE.replace("severity: high", "severity: high\nspeakers: [debtor]")
    with pytest.raises(RuleError, match=r"abuse-demo.yaml:6: speakers.0: 'debtor' is not one of"):
        load_rules(write_pack(tmp_path, {"abuse-demo.yaml": text}))


def test_call_rule_parameters_are_checked(tmp_path):
    text = """\
id: off-hours-demo
title: t
description: d
category: off_hours
severity: medium
legal_basis: [x]
call: {kind: off_hours, timezone: Mars/Olympus, window: {start: "22:00", end: "08:00"}}
examples:
  fire: [{calls: [{started_at: "2026-01-01T23:00:00+08:00"}]}]
  quiet: [{calls: [{started_at: "2026-01-01T12:00:00+08:00"}]}]
"""
    with pytest.raises(RuleError, match="off-hours-demo.yaml:7: call.timezone: unknown time zone 'Mars/Olympus'"):
        load_rules(write_pack(tmp_path, {"off-hours-demo.yaml": text}))


def test_the_bundled_pack_passes_its_own_check(tmp_path):
    copy = tmp_path / "rules"
    shutil.copytree(REPO / "rules", copy)
    engine = load_engine(copy)
    assert {r.category for r in engine.pack.rules} == {
        "abuse", "threat", "third_party", "cash_to_collector", "impersonation", "off_hours", "call_frequency"
    }
