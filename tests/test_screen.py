"""The screen in front of the matchers (monitor/detection/screen.py): the literals it
derives from regexes are really necessary, and screening never changes what a leaf
finds."""

import functools
import json
import operator
from pathlib import Path

import pytest

from monitor.detection.screen import GramOdds, ScreenIndex, necessary_literals, screen_for


@pytest.mark.parametrize(
    "pattern, literals",
    [
        ("上门|登门", {"上门", "登门"}),
        ("(去|到)你(单位|公司)", {"去你单位", "去你公司", "到你单位", "到你公司"}),
        # the gap is not fixed text: the fixed words on either side are candidates
        ("(我|我们)[^,.!?;]{0,4}(拿钱|收钱)", {"拿钱", "收钱"}),
        ("(?<!不)(曝光|爆)你", {"曝光你", "爆你"}),
        ("(?:你妈)+的?", {"你妈"}),
    ],
)
def test_necessary_literals_of_regexes(pattern, literals):
    assert necessary_literals(pattern) == literals


@pytest.mark.parametrize("pattern", [r"\d{6,}", "(你|好)?", "[^,]+吗?", "a*"])
def test_a_pattern_without_fixed_text_has_no_literals(pattern):
    assert necessary_literals(pattern) is None


@pytest.mark.parametrize("text", ["去你家", "到一下你家", "明天去一下你家看看", "你家,我去"])
def test_every_match_contains_a_necessary_literal(text):
    pattern = "(去|到)(一下)?你家|你家[^,]{0,3}(去|到)|(?<!没)找你(家里|家人)"
    literals = necessary_literals(pattern)
    for match in __import__("re").finditer(pattern, text):
        assert any(literal in match.group() for literal in literals), match.group()


def test_the_index_rules_out_only_leaves_whose_grams_the_turn_lacks(engine):
    from monitor.detection.matching import NearMatcher, RegexMatcher, TermsMatcher

    analyser = engine.pack.analyser
    odds = GramOdds(["我们会去你单位", "请按时还款"])
    terms = TermsMatcher.build(["单位", "公司"], [])
    regex = RegexMatcher.build(__import__("re").compile("上门|登门"))
    near = NearMatcher(terms, regex, within=6, ordered=False)
    index = ScreenIndex({"t": screen_for(terms, odds), "r": screen_for(regex, odds), "n": screen_for(near, odds)})

    def possible(text):
        met = index.met(analyser.analyse(text))
        return {signal for signal, mask in index.masks.items() if mask & ~met == 0}

    assert possible("我们明天去你单位") == {"t"}
    assert possible("明天上门到你公司") == {"t", "r", "n"}
    assert possible("请您按时还款") == set()


def test_screened_signals_are_the_signals_of_every_leaf_searched(engine):
    """With the screen the engine finds exactly what each leaf's own matcher finds."""
    lines = []
    for name in ("probe_utterances.jsonl", "kinds_utterances.jsonl"):
        text = (Path(__file__).parent / "data" / name).read_text(encoding="utf-8")
        lines += [json.loads(line)["text"] for line in text.splitlines() if line.strip()]
    assert len(lines) > 100
    leaves = engine._leaves
    screened_out = 0
    for text in lines:
        analysed = engine.pack.analyser.analyse(text)
        unscreened = {leaf.signal for leaf in leaves if leaf.matcher.find(analysed, leaf.guards)}
        screened = set(engine.signals(engine.pack.analyser.analyse(text), "collector", complete=True))
        assert screened & {leaf.signal for leaf in leaves} == unscreened, text
        met = engine._screens.met(analysed)
        screened_out += sum(1 for leaf in leaves if engine._screens.masks[leaf.signal] & ~met)
    # and it does rule out most leaves, or it would be no use
    assert screened_out > 0.5 * len(lines) * len(leaves)


def test_visiting_only_the_triggered_groups_finds_what_visiting_every_group_finds(engine):
    """A group of conjunctions is skipped when the turn lacks its first leaf's rarest
    grams; the signals are those found by visiting every group, and most are skipped."""
    from monitor.detection.matching import PART_SCREEN

    lines = []
    for name in ("probe_utterances.jsonl", "kinds_utterances.jsonl"):
        text = (Path(__file__).parent / "data" / name).read_text(encoding="utf-8")
        lines += [json.loads(line)["text"] for line in text.splitlines() if line.strip()]
    every_group = functools.reduce(operator.or_, engine._screens.trigger_bits.values(), 0)
    visited = 0
    for text in lines:
        found = []
        for triggers in (None, every_group):
            analysed = engine.pack.analyser.analyse(text)
            met, met_triggers = engine._screens.met_and_triggers(analysed)
            analysed.memo[PART_SCREEN] = (engine._screens.plans, met)
            found.append(engine._needed_signals(analysed, met, met_triggers if triggers is None else triggers))
        assert found[0] == found[1], text
        visited += len(engine._untriggered) + bin(met_triggers).count("1")
    assert visited < 0.3 * len(lines) * len(engine._needs)


def test_the_index_reads_a_turn_as_its_grams_would(engine):
    """``met`` walks the turn once; it must give the bits of every gram of the turn."""
    from monitor.detection.screen import turn_grams

    index = engine._screens
    text = (Path(__file__).parent / "data" / "probe_utterances.jsonl").read_text(encoding="utf-8")
    for line in text.splitlines()[:200]:
        analysed = engine.pack.analyser.analyse(json.loads(line)["text"])
        grams = [index._index.get(gram, 0) for gram in turn_grams(analysed)]
        assert index.met(analysed) == functools.reduce(operator.or_, grams, 0), analysed.norm


def test_a_wide_regex_is_searched_only_with_the_parts_whose_literals_the_turn_holds(engine):
    import re

    from monitor.detection.matching import PART_SCREEN, RegexMatcher
    from monitor.detection.screen import pattern_screen, regex_parts

    regex = RegexMatcher.build(re.compile("上门|登门|(去|到)你家|站在你(家|门口)"))
    odds = GramOdds(["我们会去你单位", "请按时还款"])
    parts = regex_parts(regex)
    assert len(parts) == 4
    index = ScreenIndex({"r": screen_for(regex, odds)}, {p.pattern: pattern_screen(p, odds) for p in parts}, [regex])
    assert len(index.part_masks) == 4

    def first_start(text, screened=True):
        analysed = engine.pack.analyser.analyse(text)
        if screened:
            analysed.memo[PART_SCREEN] = (index.plans, index.met(analysed))
        return regex._first_start(analysed)

    for text in ["明天去你家", "我们站在你门口,也会上门", "请按时还款"]:
        assert first_start(text) == first_start(text, screened=False)
    assert first_start("我们站在你门口,也会上门") == 2
    # the memo is what decides which parts are searched: told every part is ruled out,
    # the matcher searches none of them
    analysed = engine.pack.analyser.analyse("明天上门")
    analysed.memo[PART_SCREEN] = (index.plans, 0)
    assert regex._first_start(analysed) is None


def test_a_regex_screen_asks_for_literals_from_several_stretches(engine):
    """Each stretch of fixed text is necessary by itself, so the screen asks for more
    than one: 给你 alone lets most collection turns through, the relative after it does not."""
    import re

    from monitor.detection.screen import pattern_screen

    odds = GramOdds(["我给你打电话", "给你发短信", "请按时还款"])
    screen = pattern_screen(re.compile("(?:(给|跟)你[^,]{0,4}(妈妈|爸爸))"), odds)
    assert {frozenset({"给你", "跟你"}), frozenset({"妈妈", "爸爸"})} <= set(screen)
    index = ScreenIndex({"r": screen})
    analyser = engine.pack.analyser

    def possible(text):
        met = index.met(analyser.analyse(text))
        return index.masks["r"] & met == index.masks["r"]

    assert not possible("我给你打过电话了")  # the first stretch alone no longer lets it through
    assert possible("我会给你妈妈打电话")
