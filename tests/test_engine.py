"""The engine: findings come from durable_rules, calls are isolated, threads are safe."""

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from monitor.detection.engine import Engine
from monitor.models import Call, Turn
from monitor.detection.rules import load_rules

CONTEXT_RULE = """\
id: threat-context-demo
title: t
description: d
category: threat
severity: high
legal_basis: [x]
match: {terms: [注意安全]}
after: {match: {terms: [走夜路]}, within_turns: 2}
examples:
  fire:
    - turns: [{text: 你走夜路吧}, {text: 注意安全}]
  quiet: [注意安全]
"""


def call(*turns, **meta) -> Call:
    return Call(id=meta.pop("id", "c"), turns=tuple(Turn(s, t) for s, t in turns), **meta)


def collector_categories(engine):
    """The categories the engine finds in one collector turn, as a function of its text."""
    return lambda text: {f.category for f in engine.scan(call(("collector", text))).findings}


def test_debtor_words_are_never_findings(engine):
    result = engine.scan(call(("debtor", "你个傻逼，信不信我弄死你，转我微信")))
    assert result.findings == ()


def test_unknown_speaker_is_flagged_but_not_verified(engine):
    [finding] = [f for f in engine.scan(call(("unknown", "你个傻逼"))).findings]
    assert finding.category == "abuse" and finding.speaker_verified is False
    [finding] = engine.scan(call(("collector", "你个傻逼"))).findings
    assert finding.speaker_verified is True


def test_findings_carry_turn_times_and_evidence(engine):
    turns = (Turn("collector", "您好"), Turn("collector", "明天我们就上你家", start=3.5, end=6.0))
    [finding] = engine.scan(Call("c", turns)).findings
    assert (finding.turn, finding.start, finding.end) == (1, 3.5, 6.0)
    assert finding.evidence == "明天我们就上你家" and finding.matched == "上你家"
    assert finding.legal_basis


def test_a_line_can_carry_several_categories(engine):
    result = engine.scan(call(("collector", "再不还就抓你去坐牢，你家里人我们都通知了")))
    assert result.categories == ["third_party", "threat"]


def test_context_rule_fires_only_after_its_context(engine):
    threat = call(("collector", "你住的小区晚上挺黑的"), ("debtor", "什么意思"), ("collector", "提醒你注意安全嘛"))
    assert [(f.rule, f.turn) for f in engine.scan(threat).findings] == [("threat-veiled-followup", 2)]
    reversed_order = call(("collector", "提醒你注意安全嘛"), ("collector", "你住的小区晚上挺黑的"))
    assert "threat-veiled-followup" not in {f.rule for f in engine.scan(reversed_order).findings}


def test_no_state_survives_from_one_call_to_the_next(engine):
    first = call(("collector", "你住的小区晚上挺黑的"), id="a")
    second = call(("collector", "提醒你注意安全嘛"), id="b")
    engine.scan(first)
    assert engine.scan(second).findings == ()


def test_context_window_matches_a_plain_oracle(tmp_path: Path):
    """Random turn sequences through durable_rules agree with a direct reading of the
    rule: 注意安全 fires when 走夜路 was said 1–2 turns before by a non-debtor."""
    (tmp_path / "lexicons").mkdir()
    (tmp_path / "threat-context-demo.yaml").write_text(CONTEXT_RULE, encoding="utf-8")
    engine = Engine(load_rules(tmp_path))
    rng = random.Random(7)
    words = {"A": "你走夜路吧", "B": "注意安全", "x": "您好"}
    for _ in range(400):
        seq = [(rng.choice("ABx"), rng.choice(["collector", "debtor", "unknown"])) for _ in range(rng.randint(1, 7))]
        found = sorted(f.turn for f in engine.scan(call(*[(s, words[w]) for w, s in seq])).findings)
        expected = [
            j for j, (w, s) in enumerate(seq)
            if w == "B" and s != "debtor"
            and any(seq[i][0] == "A" and seq[i][1] != "debtor" for i in range(max(0, j - 2), j))
        ]
        assert found == expected, seq


def test_scanning_from_many_threads_gives_the_same_findings(engine):
    texts = ["你个傻逼", "您好，请按时还款", "转我微信就行", "我是法院的", "你老家我们已经派人去了", "我们不会上门"]
    calls = [call(("collector", texts[i % len(texts)]), ("collector", texts[(i * 7) % len(texts)]), id=str(i)) for i in range(300)]
    expected = [[(f.rule, f.turn) for f in engine.scan(c).findings] for c in calls]
    barrier = threading.Barrier(4)

    def scan(c):
        return [(f.rule, f.turn) for f in engine.scan(c).findings]

    def warm(_):
        barrier.wait()
        return engine.scan(calls[0])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(warm, range(4)))
        got = list(pool.map(scan, calls))
    assert got == expected


def test_call_rules_use_local_time_and_earlier_calls(engine):
    zone_offset = "+08:00"
    day = datetime.fromisoformat(f"2026-03-02T09:00:00{zone_offset}")
    calls = [call(("collector", "您好"), id=f"c{i}", started_at=day + timedelta(hours=2 * i), debtor_id="D1") for i in range(5)]
    flagged = [engine.scan(c, calls[:i]).categories for i, c in enumerate(calls)]
    assert flagged == [[], [], [], ["call_frequency"], ["call_frequency"]]
    night = call(("collector", "您好"), started_at=datetime.fromisoformat("2026-03-02T22:30:00+08:00"))
    assert engine.scan(night).categories == ["off_hours"]
    inbound = Call("i", night.turns, started_at=night.started_at, direction="inbound")
    assert engine.scan(inbound).categories == []


def test_searching_only_needed_leaves_decides_like_searching_them_all(engine):
    """The engine stops looking for a rule's other leaves once one is missing; every
    rule must still decide exactly as it would with every leaf searched."""
    import json
    from monitor.detection.engine import _lexical_needs

    lines = []
    for name in ("probe_utterances.jsonl", "kinds_utterances.jsonl"):
        text = (Path(__file__).parent / "data" / name).read_text(encoding="utf-8")
        lines += [json.loads(line)["text"] for line in text.splitlines() if line.strip()]
    assert len(lines) > 100
    needs = _lexical_needs(engine.pack, False, engine._leaves)
    for text in lines:
        analysed = engine.pack.analyser.analyse(text)
        lazy, full = set(engine.signals(analysed, "collector")), set(engine.signals(analysed, "collector", complete=True))
        assert lazy <= full
        conjunctions = [(((first,) if first else ()) + others, absent) for first, rest in needs for others, absent in rest]
        for needed, absent in conjunctions:
            holds = lambda found: all(l.signal in found for l in needed) and not any(l.signal in found for l in absent)
            assert holds(lazy) == holds(full), text


def test_phrase_pauses_and_guards_in_unpunctuated_transcripts(engine):
    """A transcript written without punctuation: a pause between phrases ends a clause,
    a rhetorical 不是…吗 denies nothing, and a quoting frame reaches only the words
    right after it."""
    from monitor.detection.text import normalise

    assert normalise("我不是来催您的 我是街道办的") == "我不是来催您的,我是街道办的"
    assert normalise("你 个 老 赖") == "你个老赖"

    categories = collector_categories(engine)

    assert "third_party" in categories("你不是怕你老婆知道吗？不还我就告诉她")
    assert "third_party" not in categories("我们不会联系你老婆")
    assert "threat" in categories("您说的情况我都了解了 这个月要是还不上 明天我们就去你单位找你领导")
    assert "threat" not in categories("您刚才说要去我单位闹")


def test_a_denial_typed_in_pinyin_denies_like_the_characters(engine):
    """Chat-style transcripts type a denial in pinyin; it cancels the match as 不会 does,
    and an A-not-A question in pinyin still denies nothing."""
    categories = collector_categories(engine)

    assert "third_party" in categories("再不还我们就联系你老婆")
    assert "third_party" not in categories("放心，我们 bu hui 联系你老婆")
    assert "third_party" not in categories("我们buhui联系你老婆的")
    assert "threat" in categories("明天我们就去你单位找你领导")
    assert "threat" not in categories("我们 jue bu 会去你单位找你领导")


def test_an_a_not_a_question_inside_a_match_denies_nothing(engine):
    """Inside a matched phrase, 不能 / 没有 deny it, but 能不能 / 有没有 ask a question."""
    import re

    from monitor.detection.matching import Guards, RegexMatcher

    analyser = engine.pack.analyser
    matcher = RegexMatcher.build(re.compile("你.{0,6}帮你还"))
    guards = Guards()

    def found(text):
        return bool(matcher.find(analyser.analyse(text), guards))

    assert found("你能不能让你妈帮你还")
    assert found("你有没有让你妈帮你还")
    assert not found("你不能让你妈帮你还")
    assert not found("你没有让你妈帮你还")


def test_dialect_denials_and_a_report_of_an_earlier_call_deny_the_act(engine):
    """Shanghainese 勿会 and Hokkien 袂 deny like 不会; a collector relating what another
    said on an earlier call (他上回讲要去你屋头) reports it and does not say it."""
    categories = collector_categories(engine)

    assert "threat" in categories("阿拉明朝就到侬屋里厢来")
    assert "threat" not in categories("阿拉勿会到侬屋里厢来的，侬放心")
    assert "threat" in categories("阮明仔载就去恁兜")
    assert "threat" not in categories("阮袂去恁兜，你放心")
    assert "threat" in categories("我们下周就去你屋头")
    assert "threat" not in categories("他上回讲要去你屋头，这不是我们公司的做法")


def test_a_bare_not_that_opens_a_clause_denies_it(engine):
    """A list of what we do not do (不上门、不找你家里人) denies each item; a 不 that
    belongs to the condition (不还就找你家里人) denies nothing."""
    categories = collector_categories(engine)
    assert "third_party" not in categories("你放心，咱这边不上门、不找你家里人，就跟你本人唠")
    assert "third_party" in categories("不还就找你家里人")



SPEAKERS_OWN_WORDS = [
    # a word in scare quotes inside the speaker's own sentence is no quotation
    ('你的事我们已经"温馨提示"过你几个亲戚了', "third_party", True),
    ('你说"我们联系你亲戚"，那是你自己说的', "third_party", False),
    # 你说要是… opens a hypothetical, not a report
    ("你说要是你老婆单位的人都收到一条短信，说她老公欠钱不还，她脸往哪放？", "threat", True),
    # the debtor's insult repeated back is theirs
    ("您骂我傻逼我也理解，咱们还是把还款的事定下来", "abuse", False),
    ("你个傻逼，还钱", "abuse", True),
    # Shanghainese 弗会 denies like 勿会
    ("阿拉弗会寻侬屋里厢人，也弗会到侬单位去，侬放心", "threat", False),
]


@pytest.mark.parametrize("text, category, raised", SPEAKERS_OWN_WORDS)
def test_whose_words_a_span_is(engine, text, category, raised):
    assert (category in collector_categories(engine)(text)) is raised
