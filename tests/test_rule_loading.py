"""Broken rules stop start-up with every problem located as file:line."""

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.errors import RuleError
from monitor.detection.rules import load_rules
from monitor.detection.examples import load_engine
from monitor.models import Call, Turn

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


INCLUDING_RULE = """\
id: abuse-demo
title: 演示
description: 演示规则
description_en: demo rule
category: abuse
severity: high
legal_basis: [demo clause]
match:
  lexicon: all_insults
examples:
  fire: [你个蠢货, 你个瓜怂]
  quiet: [您好]
"""


def _lexicon(name: str, body: str) -> str:
    return f"name: {name}\ndescription: demo\n{body}"


def test_a_lexicon_can_be_made_of_other_lexicons(tmp_path):
    folder = write_pack(tmp_path, {"abuse-demo.yaml": INCLUDING_RULE})
    (folder / "lexicons/base.yaml").write_text(_lexicon("base", "terms: [蠢货]\n"), encoding="utf-8")
    (folder / "lexicons/dialect.yaml").write_text(
        _lexicon("dialect", "include: [base]\nterms: [瓜怂]\n"), encoding="utf-8")
    (folder / "lexicons/all_insults.yaml").write_text(
        _lexicon("all_insults", "include: [dialect]\n"), encoding="utf-8")
    engine = load_engine(folder)  # runs the examples: both terms fire through two levels
    assert engine.pack.rule("abuse-demo").description_en == "demo rule"
    assert "abuse-demo/1" in engine.signals("你个瓜怂") and "abuse-demo/1" in engine.signals("你个蠢货")
    assert "abuse-demo/1" not in engine.signals("您好")


def test_except_keeps_a_term_quiet_inside_its_phrases_matched_exactly_or_by_sound(tmp_path):
    folder = write_pack(tmp_path, {"abuse-demo.yaml": INCLUDING_RULE})
    (folder / "lexicons/base.yaml").write_text(_lexicon("base", (
        "terms:\n  - {term: 蠢货}\n  - 瓜怂\n  - {term: 滚蛋, except: [滚蛋糕]}\n"
        "  - {term: 老赖, pinyin: true, except: [老来得子, 老赖账本]}\n")), encoding="utf-8")
    (folder / "lexicons/all_insults.yaml").write_text(_lexicon("all_insults", "include: [base]\n"), encoding="utf-8")
    engine = load_engine(folder)
    fired = lambda text: "abuse-demo/1" in engine.signals(text)
    assert fired("你给我滚蛋") and not fired("他在滚蛋糕胚")      # a plain term, through an include
    assert fired("你个老来") and not fired("人家老来得子")         # by sound
    assert fired("你个老赖") and not fired("这是老赖账本的样本")     # exactly


def test_an_unknown_or_circular_include_is_located(tmp_path):
    folder = write_pack(tmp_path, {"abuse-demo.yaml": INCLUDING_RULE})
    (folder / "lexicons/all_insults.yaml").write_text(
        _lexicon("all_insults", "include: [missing]\n"), encoding="utf-8")
    (folder / "lexicons/a.yaml").write_text(_lexicon("a", "include: [b]\nterms: [x]\n"), encoding="utf-8")
    (folder / "lexicons/b.yaml").write_text(_lexicon("b", "include: [a]\nterms: [y]\n"), encoding="utf-8")
    with pytest.raises(RuleError) as error:
        load_rules(folder)
    text = str(error.value)
    assert "all_insults.yaml:3: include: unknown lexicon missing" in text
    assert "includes itself" in text


def test_every_bundled_rule_is_described_in_chinese():
    pack = load_rules(REPO / "rules")
    for rule in pack.rules:
        chinese = sum(1 for c in rule.description if "\u4e00" <= c <= "\u9fff")
        assert chinese >= len(rule.description) * 0.3, rule.id


def test_a_lexicon_alternation_finds_what_a_plain_one_does():
    import re

    from monitor.detection.matching import alternation

    terms = ["你妈", "你妈妈", "你爸", "妈", "老赖", "老赖子", "a.b", "c|d"]
    plain = re.compile("|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)))
    trie = re.compile(alternation(terms))
    for text in ["你妈妈说你妈和你爸", "老赖子是老赖", "a.b c|d axb", "没有", ""]:
        assert [m.span() for m in trie.finditer(text)] == [m.span() for m in plain.finditer(text)]


def test_a_wide_regex_is_screened_branch_by_branch_with_the_same_answer():
    import re

    from monitor.detection.matching import RegexMatcher
    from monitor.detection.text import Analysed

    pattern = re.compile(r"(?<!让)上门|登门|(去|到)(你|您)家|[a-c|]x|\(|站(在)?你|(?:派人)去")
    matcher = RegexMatcher.build(pattern)
    assert len(matcher.screen) == 7
    texts = ["明天上门", "让上门", "去您家", "b x", "|x", "(", "站在你家", "派人去", "没事", "让上门,登门去你家",
             "上门上门", "站你站在你家", "去你家去您家登门"]
    for text in texts:
        turn = Analysed(text, text, tuple(text), None)
        whole = pattern.search(text)
        # the first match can start where the first match of the whole pattern starts
        assert matcher._first_start(turn) == (whole.start() if whole else None), text
        assert matcher.unguarded(turn, None) == [m.span() for m in pattern.finditer(text)], text


def problems_of(folder: Path) -> str:
    """The located problems that stop the pack in ``folder`` from loading, as one text."""
    with pytest.raises(RuleError) as info:
        load_rules(folder)
    return str(info.value)


PHRASES_RULE = GOOD_RULE.replace("  terms: [蠢货]", "  phrases: insults_said")
OTHER_PHRASES_RULE = PHRASES_RULE.replace("id: abuse-demo", "id: abuse-other").replace(
    "fire: [你个蠢货]", "fire: [你这个瓜怂]")


def _phrases(folder: Path, name: str, patterns: str) -> None:
    (folder / "phrases").mkdir(exist_ok=True)
    (folder / f"phrases/{name}.yaml").write_text(
        f"name: {name}\ndescription: demo\npatterns:\n{patterns}", encoding="utf-8")


def test_a_phrase_file_is_one_set_of_patterns_shared_by_several_rules(tmp_path):
    folder = write_pack(tmp_path, {"abuse-demo.yaml": PHRASES_RULE, "abuse-other.yaml": OTHER_PHRASES_RULE})
    (folder / "lexicons/dialect.yaml").write_text(_lexicon("dialect", "terms: [瓜怂]\n"), encoding="utf-8")
    _phrases(folder, "insults_said", "  - '你个蠢货'\n  - '你这个({dialect})'\n")
    engine = load_engine(folder)  # both rules' examples run
    signals = engine.signals("你这个瓜怂")
    assert "abuse-demo/1" in signals and "abuse-other/1" in signals
    assert not {"abuse-demo/1", "abuse-other/1"} & set(engine.signals("您好"))
    # a pattern added once reaches every rule that names the file, and the version moves
    before = engine.pack.version
    _phrases(folder, "insults_said", "  - '你个蠢货'\n  - '你这个({dialect})'\n  - '你个憨包'\n")
    engine = load_engine(folder)
    assert {"abuse-demo/1", "abuse-other/1"} <= set(engine.signals("你个憨包"))
    assert engine.pack.version != before


def test_a_bad_phrase_file_or_an_unknown_name_is_located(tmp_path):
    folder = write_pack(tmp_path, {"abuse-demo.yaml": PHRASES_RULE,
                                   "abuse-other.yaml": OTHER_PHRASES_RULE.replace("insults_said", "no_such_file")})
    _phrases(folder, "insults_said", "  - '你个蠢货'\n  - '(瓜怂'\n  - '你这个{no_lexicon}'\n")
    text = problems_of(folder)
    assert "insults_said.yaml:5: patterns[1]: invalid regular expression" in text
    assert "insults_said.yaml:6: patterns[2]: unknown lexicon {no_lexicon}" in text
    assert "abuse-other.yaml:8: match.phrases: unknown phrase file no_such_file" in text


def test_match_of_raises_a_second_category_from_one_written_match(tmp_path):
    threat = GOOD_RULE.replace("id: abuse-demo", "id: threat-post").replace("category: abuse", "category: threat").replace(
        "  terms: [蠢货]", "  regex: '发(到)?(你的?)?朋友圈'").replace("fire: [你个蠢货]", "fire: [明天发你朋友圈]")
    third = GOOD_RULE.replace("id: abuse-demo", "id: third-party-post").replace("category: abuse", "category: third_party").replace(
        "  terms: [蠢货]", "  any:\n    - match_of: threat-post\n    - terms: [群发给你的联系人]").replace(
        "fire: [你个蠢货]", "fire: [明天发你朋友圈, 群发给你的联系人]").replace(
        "examples:", "unless:\n  terms: [不会]\nexamples:")
    engine = load_engine(write_pack(tmp_path, {"threat-post.yaml": threat, "third-party-post.yaml": third}))
    rules = lambda text: {(f.rule, f.category) for f in engine.scan(Call("c", (Turn("collector", text),))).findings}
    assert rules("今晚就发到你朋友圈") == {("threat-post", "threat"), ("third-party-post", "third_party")}
    assert rules("我们群发给你的联系人") == {("third-party-post", "third_party")}
    assert rules("今晚就发到你朋友圈，不会吧") == {("threat-post", "threat")}  # each rule keeps its own unless


def test_match_of_an_unknown_rule_itself_or_a_chain_is_located(tmp_path):
    named = lambda rid, target: GOOD_RULE.replace("id: abuse-demo", f"id: {rid}").replace(
        "  terms: [蠢货]", f"  any:\n    - match_of: {target}\n    - terms: [蠢货]")
    folder = write_pack(tmp_path, {
        "abuse-demo.yaml": GOOD_RULE.replace("  terms: [蠢货]", "  regex: '(蠢货'"),
        "abuse-a.yaml": named("abuse-a", "abuse-nothing"),
        "abuse-b.yaml": named("abuse-b", "abuse-b"),
        "abuse-c.yaml": named("abuse-c", "abuse-d"),
        "abuse-d.yaml": named("abuse-d", "abuse-demo"),
        "abuse-e.yaml": named("abuse-e", "abuse-demo"),
    })
    text = problems_of(folder)
    assert "abuse-a.yaml:9: match.any[0].match_of: unknown rule abuse-nothing" in text
    assert "abuse-b.yaml:9: match.any[0].match_of: abuse-b: a rule may not name its own match" in text
    # naming a match that itself names another is refused where it is named
    assert "abuse-c.yaml:9: match.any[0].match_of: abuse-d names another rule's match itself" in text
    # the broken regex is reported once, in its own file; the rules naming it say so
    assert text.count("invalid regular expression") == 1
    assert "abuse-e.yaml:9: match.any[0].match_of: abuse-demo does not load (see its own problems)" in text
