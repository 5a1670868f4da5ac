"""A screen in front of the matchers: which leaves cannot match a turn at all.

Most leaves find nothing in most turns, and proving that with the leaf's regexes costs a
few microseconds a leaf. Every match of a term list or regex contains one of a few
literal strings (its *necessary literals*: 单位 or 公司 for ``(去|到)你(单位|公司)``), so
every match contains one of their character pairs. A turn's character pairs are one set,
built once, and a leaf whose pairs all miss that set is answered "nothing" without its
regexes. The screen only ever says "cannot match"; when it lets a leaf through, the
leaf's own matcher decides, so every decision is the same as without it.

Pinyin terms match by sound, so they are screened by pinyin keys instead. All leaves are
screened at once: a turn's pairs are looked up once each in one index of every leaf's
pairs (see ``ScreenIndex``), not once a leaf.
"""

from __future__ import annotations

import functools
import operator
import re
from re import _constants as sre  # the standard library's regex parser, as re uses it
from re import _parser as sre_parse

from .matching import Matcher, NearMatcher, RegexMatcher, TermsMatcher
from .text import Analysed

# A run of regex items is expanded into the strings it matches only while they are few
# (so start-up stays quick); a lexicon's alternation is kept whole however long it is,
# up to a size where it would let nearly every turn through anyway.
_MAX_EXPANSION = 256
_MAX_LITERALS = 20000
_MAX_CLASS = 32


# A screen is a tuple of gram sets: a turn may hold a match only if it contains a gram
# of every set. A gram is a character or a pair of characters of the normalised text
# (a str), or one pinyin key or two consecutive ones (a tuple of str).
Screen = tuple[frozenset, ...]


def turn_grams(text: Analysed) -> list:
    """The turn's characters and character pairs, and its pinyin keys and key pairs."""
    norm, keys = text.norm, text.keys
    return [*norm, *map(operator.add, norm, norm[1:]), *zip(keys), *zip(keys, keys[1:])]


class ScreenIndex:
    """Screens of many leaves, answered for a turn at once: each distinct gram set is a
    bit, and a turn's grams, looked up once each, give the bits of the sets it meets."""

    def __init__(self, screens: dict[str, Screen], parts: dict[str, Screen] | None = None,
                 regexes: list[RegexMatcher] = (), triggers: tuple[str, ...] = ()):
        """``screens`` by leaf signal; ``parts``, by pattern, the screens of the parts a
        wide regex is searched in (see ``regex_parts``); ``regexes``, those wide regexes;
        ``triggers``, leaves whose first gram set ``met_and_triggers`` reports, one bit
        each (``trigger_bits``) for those with a screen (the leaves that open the engine's
        groups of conjunctions: it visits only the groups whose trigger the turn meets,
        instead of testing each group's mask in turn)."""
        self._bits: dict[frozenset, int] = {}
        self._index: dict = {}
        # gram -> the trigger bits of the leaves whose first gram set holds it
        triggered: dict = {}
        self.trigger_bits = {}
        for signal in triggers:
            if screens.get(signal):  # a leaf without a screen cannot be ruled out
                bit = self.trigger_bits[signal] = 1 << len(self.trigger_bits)
                for gram in screens[signal][0]:
                    triggered[gram] = triggered.get(gram, 0) | bit
        self.masks = {signal: self._mask(screen) for signal, screen in screens.items()}
        self.part_masks = {pattern: mask for pattern, screen in (parts or {}).items() if (mask := self._mask(screen))}
        # Each wide regex's parts with their screen bits (0: never ruled out), by the
        # regex's pattern: the matcher looks its parts' bits up once a turn, not once a
        # part. (By pattern, not by object: equal patterns have equal parts.)
        self.plans = {regex.pattern.pattern: tuple((part, self.part_masks.get(part.pattern, 0)) for part in regex.screen)
                      for regex in regexes}
        # The index by a gram's first character (or key): [bits of that one alone, its
        # trigger bits, {the second: [bits of the pair, its trigger bits]}], so a turn is
        # read once, pairs built only as found.
        self._chars: dict[str, list] = {}
        self._keys: dict[str, list] = {}
        for gram in self._index.keys() | triggered.keys():
            bits, trigger = self._index.get(gram, 0), triggered.get(gram, 0)
            table = self._keys if isinstance(gram, tuple) else self._chars
            entry = table.setdefault(gram[0], [0, 0, {}])
            if len(gram) == 1:
                entry[0] |= bits
                entry[1] |= trigger
            else:
                pair = entry[2].setdefault(gram[1], [0, 0])
                pair[0] |= bits
                pair[1] |= trigger

    def _mask(self, screen: Screen) -> int:
        mask = 0
        for grams in screen:
            if grams not in self._bits:
                bit = self._bits[grams] = 1 << len(self._bits)
                for gram in grams:
                    self._index[gram] = self._index.get(gram, 0) | bit
            mask |= self._bits[grams]
        return mask

    def met(self, text: Analysed) -> int:
        """The bits of the gram sets this turn meets (those of every gram in
        ``turn_grams(text)``): a leaf may match only if its mask's bits are all among
        them."""
        return self.met_and_triggers(text)[0]

    def met_and_triggers(self, text: Analysed) -> tuple[int, int]:
        """``met``, and the trigger bits of the leaves whose first gram set the turn
        meets (a leaf whose trigger is not met cannot match)."""
        bits = triggers = 0
        for sequence, table in ((text.norm, self._chars), (text.keys, self._keys)):
            pairs = None  # the pairs that start with the previous item
            for item in sequence:
                if pairs is not None:
                    pair = pairs.get(item)
                    if pair is not None:
                        bits |= pair[0]
                        triggers |= pair[1]
                entry = table.get(item)
                if entry is None:
                    pairs = None
                else:
                    bits |= entry[0]
                    triggers |= entry[1]
                    pairs = entry[2]
        return bits, triggers


class GramOdds:
    """How often a character pair turns up in collection speech, from sample turns (the
    rule pack's own examples): a screen is built from the rarest pairs it may use, so
    that it lets few turns through. Any choice is correct; this one is quick."""

    def __init__(self, texts):
        self._turns = 0
        self._counts: dict[str, int] = {}
        for text in texts:
            self._turns += 1
            for gram in set(text) | {text[i : i + 2] for i in range(len(text) - 1)}:
                self._counts[gram] = self._counts.get(gram, 0) + 1

    def of(self, gram: str) -> float:
        """The share of turns holding ``gram`` (smoothed: an unseen pair is rare, not
        impossible)."""
        return (self._counts.get(gram, 0) + 0.5) / (self._turns + 1)

    @functools.lru_cache(maxsize=None)  # noqa: B019 - one GramOdds per engine, kept with it
    def gram(self, literal: str) -> str:
        """The rarest character pair of ``literal`` (the literal itself when it is one
        character): a turn holding the literal holds that pair."""
        if len(literal) < 2:
            return literal
        return min((literal[i : i + 2] for i in range(len(literal) - 1)), key=self.of)

    def cost(self, literals) -> float:
        """About how many turns in a hundred hold one of ``literals``."""
        return sum(self.of(self.gram(s)) for s in literals)


def screen_for(matcher: Matcher, odds: GramOdds) -> Screen:
    """The screen of a matcher; empty when nothing can be ruled out cheaply."""
    if isinstance(matcher, TermsMatcher):
        grams = {odds.gram(term) for term in matcher.terms}
        # a pinyin term matches by sound: its first key, or its first two
        grams.update(pt.keys[:2] for pt in matcher.pinyin_terms)
        return (frozenset(grams),) if grams and "" not in grams else ()
    if isinstance(matcher, RegexMatcher):
        return pattern_screen(matcher.pattern, odds)
    if isinstance(matcher, NearMatcher):
        return screen_for(matcher.first, odds) + screen_for(matcher.second, odds)
    return ()


def wide_regexes(matcher: Matcher) -> list[RegexMatcher]:
    """The regexes inside ``matcher`` that are searched a part at a time
    (``RegexMatcher.screen``)."""
    if isinstance(matcher, RegexMatcher):
        return [matcher] if len(matcher.screen) > 1 else []
    if isinstance(matcher, NearMatcher):
        return wide_regexes(matcher.first) + wide_regexes(matcher.second)
    return []


def regex_parts(matcher: Matcher) -> list[re.Pattern]:
    """The parts that the wide regexes inside ``matcher`` are searched in one at a time:
    each has a screen of its own, so that a turn is searched only with the parts whose
    literals it holds."""
    return [part for regex in wide_regexes(matcher) for part in regex.screen]


# A regex's screen asks for up to this many of its necessary literal sets at once.
# Each set alone is necessary, so all of them are; one set of common words (给你, 我们)
# lets most turns through, and a second from another stretch of the pattern (the
# relative's name after it) rules most of them out again.
_SETS_PER_SCREEN = 3


def pattern_screen(pattern: re.Pattern, odds: GramOdds) -> Screen:
    """The screen of one regex (empty when nothing can be ruled out cheaply)."""
    try:
        parsed = sre_parse.parse(pattern.pattern)
    except re.error:
        return ()
    screen: list[frozenset] = []
    for literals in sorted(_Literals(odds.cost).all_needs(parsed), key=odds.cost):
        grams = frozenset(odds.gram(s) for s in literals)
        if grams not in screen:
            screen.append(grams)
        if len(screen) == _SETS_PER_SCREEN:
            break
    return tuple(screen)


def _shortness(literals) -> float:
    # Without frequencies: fewer and longer literals rule out more turns.
    return sum(1 / len(s) for s in literals)


def necessary_literals(pattern: str, cost=_shortness) -> frozenset[str] | None:
    """Strings one of which every match of ``pattern`` contains, or None when there are
    none worth having (the pattern can match without any fixed text, or needs too many).
    Where there are several such sets, the one of least ``cost`` (a function of the set)."""
    try:
        parsed = sre_parse.parse(pattern)
    except re.error:
        return None
    return _Literals(cost).need(parsed)


class _Literals:
    """Walks one parsed regex. A lexicon's alternation sits in many places of a
    pattern, so each part's answers are remembered (by the part's identity: the parsed
    tree lives as long as this walk)."""

    def __init__(self, cost):
        self.cost = cost
        self._exact: dict[int, frozenset[str] | None] = {}
        self._need: dict[int, frozenset[str] | None] = {}

    def exact(self, items) -> frozenset[str] | None:
        """Every string a sequence of regex items can match, when they are few (else None)."""
        key = id(items)
        if key not in self._exact:
            self._exact[key] = self._expand(items)
        return self._exact[key]

    def _expand(self, items) -> frozenset[str] | None:
        result = frozenset([""])
        for item in items:
            result = _product(result, self._item_strings(item))
            if result is None:
                return None
        return result

    def _item_strings(self, item) -> frozenset[str] | None:
        op, av = item
        if op is sre.LITERAL:
            return frozenset([chr(av)])
        if op is sre.IN:
            return _class(av)
        if op is sre.SUBPATTERN:
            return self.exact(av[3])
        if op is sre.BRANCH:
            return _union((self.exact(alt) for alt in av[1]), _MAX_EXPANSION)
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT) and av[0] == 0 and av[1] == 1:
            inner = self.exact(av[2])
            return None if inner is None else inner | {""}
        if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
            return frozenset([""])  # zero-width: matches no characters of its own
        return None

    def need(self, items) -> frozenset[str] | None:
        """Necessary literals of a sequence: the cheapest set of ``all_needs``."""
        key = id(items)
        if key not in self._need:
            self._need[key] = min(self.all_needs(items), key=self.cost, default=None)
        return self._need[key]

    def all_needs(self, items) -> list[frozenset[str]]:
        """Every necessary literal set this walk finds in a sequence: each stretch of
        items whose strings are few, and those inside each group or repeated item it
        holds (a match of the sequence matches all of them); for an alternation, the
        union of its branches' cheapest sets."""
        whole = self.exact(items)
        if whole is not None and "" not in whole:
            return [whole]
        strings = [self._item_strings(item) for item in items]  # each item's strings, when few
        found = _stretches(strings)
        for (op, av), options in zip(items, strings):
            if options is not None:
                continue  # its strings are in the stretches
            if op is sre.SUBPATTERN:
                found.extend(self.all_needs(av[3]))
            elif op is sre.ATOMIC_GROUP:
                found.extend(self.all_needs(av))
            elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT) and av[0] >= 1:
                found.extend(self.all_needs(av[2]))
            elif op is sre.BRANCH:
                found.append(_union((self.need(alt) for alt in av[1]), _MAX_LITERALS))
        return [f for f in found if f and "" not in f]


def _stretches(strings: list) -> list[frozenset[str]]:
    """From each item on, the strings of the longest stretch of items that still expands
    to few strings (``strings``: each item's strings, None when too many)."""
    found = []
    for start in range(len(strings)):
        product = frozenset([""])
        for options in strings[start:]:
            longer = _product(product, options)
            if longer is None:
                break
            product = longer
        found.append(product)
    return found


def _product(heads: frozenset[str], tails: frozenset[str] | None) -> frozenset[str] | None:
    """Every head followed by every tail, or None when there are too many (or no tails
    worth listing)."""
    if tails is None or len(heads) * len(tails) > _MAX_EXPANSION:
        return None
    return frozenset(a + b for a in heads for b in tails)


def _class(items) -> frozenset[str] | None:
    chars = set()
    for op, av in items:
        if op is sre.LITERAL:
            chars.add(chr(av))
        elif op is sre.RANGE and av[1] - av[0] < _MAX_CLASS:
            chars.update(chr(c) for c in range(av[0], av[1] + 1))
        else:
            return None  # a negated class, a category (\d, \w), a wide range
    return frozenset(chars) if len(chars) <= _MAX_CLASS else None


def _union(sets, limit: int) -> frozenset[str] | None:
    result: set = set()
    for s in sets:
        if s is None:
            return None
        result |= s
        if len(result) > limit:
            return None
    return frozenset(result)
