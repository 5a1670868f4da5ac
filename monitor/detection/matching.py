"""Leaf matchers: where in a turn a lexicon, a regex or a pair of them occurs.

A matcher returns character spans in the normalised text. Guards then drop spans that
are negated ("我们不会上门"), quoted or reported ("您刚才说要转我微信"), or covered by an
allow-listed phrase ("对公账户"). What survives becomes a signal; the rule logic that
combines signals lives in durable_rules (see engine.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from monitor.detection.text import Analysed, pinyin_keys

Span = tuple[int, int]
# The memo key under which the engine leaves a turn's screen for regex parts:
# (each wide regex's parts with their screen bits, by the regex's pattern — see
# ScreenIndex.part_plans — and the screen bits the turn meets).
PART_SCREEN = "part screen"

_CLAUSE_BREAK = re.compile(r'[,.!?;:"]')

# A negation cue shortly before the matched words cancels the match: 我们不会上门,
# 我们不是法院, 也不会让您转到任何个人账户. Bare 不 is not a cue on its own: in
# "不还钱就去你单位" it negates something else.
# Shanghainese and Hokkien "won't" / "don't", a cue before a match and a denial inside
# one alike: 阿拉勿会到侬屋里来, 阮毋会去恁兜
_WU_MIN_WONT = "勿会|勿要|覅|弗会|毋会"
NEGATION_CUE = re.compile(
    r"(不会|不能|不可能|不可以|不是|没有(?!钱)|并不|并没|绝不|绝对不|从不|从来不|从没|不要(?!脸|face)|"
    r"不得|禁止|严禁|不允许|不用|不做|不收|不存在|不该|不应该|不需要|无需|不再|拒绝|不准|"
    r"不兴|不搞|不整|不让|不叫|不给|不会让|不可|唔好|唔会|唔系|唔使|唔准|唔可以|"
    rf"{_WU_MIN_WONT}|勿可以|勿能|勿是|弗要|弗可以|弗是|毋通|毋免|毋是)"
    r"[^,.!?;:]{0,8}$"
)
# 不要脸 is a word of abuse, not 不要 denying what follows: 跟他说他养了个不要脸的老赖.
# 没 and 别 deny only what follows them closely.
# 没钱 / 没有钱 ("having no money") names the debtor's state and denies nothing after it:
# 没钱就去卖肾 is a demand, not a denial.
_SHORT_NEGATION = re.compile(r"(没(?!有?钱)|别|莫|甭|冇|袂)[^,.!?;:]{0,4}$")  # 袂: Hokkien "won't"
# ... and a bare 不 only right after a subject or adverb: 我们不收现金, 我们从来不收.
_BARE_NOT_AFTER = "们我司都也来绝并决律咱俺边里"
# ... and 不 right before a modal that opens the span: 不|会打扰
_MODAL_AFTER_NOT = "会能用要准许可"
# "别以为我们不会去" is a double negative: still a threat.
_DOUBLE_NEGATIVE = re.compile(r"(别以为|你以为|不要以为|别指望|谁说|不是不)[^,.!?;:]{0,8}$")
# Inside a longer regex match, these words deny it: "我们不会跟您的紧急联系人讲".
# An A-not-A question (会不会, 能不能, 可不可以, 要不要, 有没有, 用不用) asks, it denies nothing;
# 没有见过这么…的人 exclaims, it denies nothing either.
_INNER_NEGATION = re.compile(
    r"((?<!会)不会|(?<!能)不能|不可能|(?<!可)不可以|(?<!有)没有(?!见过|遇到过|遇见过|碰到过|碰见过)|并不|绝不|从不|(?<!要)不要(?!脸|face)|不得|禁止|"
    rf"不允许|(?<!用)不用|不再|{_WU_MIN_WONT})"
)
# The clause goes on to deny or refuse what was matched: 上门这种事我们是不做的,
# 您说转我卫星这个不行的, 立案的事现在没有.
_DENIED_AFTER = re.compile(
    r"^([^,.!?;:]{0,12}(不做|不会做|是不允许|不允许|不行|不可以|是违规|违规的|违法的|是禁止|"
    r"不存在|现在没有|是没有|都别信|别信|都别给|不能给|不能转|没这回事|没有这回事|不靠谱|"
    r"我可没说|我没说|我没有说|没这么说|听岔了|听错了|"
    r"(我们|公司|这种事)[^,.!?;:]{0,4}(没有|不做|不干|不搞))"
    # or the next clause refuses it: 您要把现金送过来？那不行
    r"|[^,.!?;:]{0,12}[,.!?;:](那|这|这个)?(真|可|是|肯定)?(不行|不可以|不允许|不合规|不可能))"
    # or answers its own question: 上门？不会的，我们只打电话
    r"|[^,.!?;:]{0,4}\?(当然|肯定|绝对)?(不会|不可能)(的|啦|哦|呢)?(?=[,.!;]|$)"
)

# 你不是怕你老婆知道吗? asks in order to press: the 不是 of a rhetorical question
# denies nothing. Recognised by the question particle closing the same clause.
_RHETORICAL_BEFORE = re.compile(r"(不是|难道)[^,.!?;:]{0,8}$")
_RHETORICAL_AFTER = re.compile(r"^[^,.!?;:]{0,10}(吗|么|嘛)([,.!?]|$)")

# How far before a match a quoting frame still governs it (characters).
_QUOTE_REACH = 16

# Reporting and quoting frames: the speaker relates what someone else said or did.
QUOTE_FRAME = re.compile(
    r"((你|您|他|她|有人|对方|客户|你们)(刚才|刚刚|上次|上回|那次|那天|之前|前面|昨天|前天|上周|上礼拜)(说|讲|提|问|投诉|骂)|"
    r"(你|您|他|她|有人|对方)(说|讲|提到|问)(的|过|要(?!是)|想|让)|"
    # (你说要是… opens a hypothetical: 你说要是你老婆单位的人都收到一条短信…)
    r"(他|她|有人|对方|人家|他们)(说|讲)|"
    r"(同事|员工|催收员|那个人|别人|有的人|个别人)(说|讲)(要|过|的|了)|"
    r"您(刚才|刚刚)?(说|讲|提到|问)|"
    r"(网上|网传|听说|传言|有人)(都)?(说|讲|传)|"
    r"(还|又)说(要|过)|"
    r"冒充|自称|假冒|谎称|声称|投诉说|举报说|所谓|"
    # the debtor's insult repeated back: 您骂我傻逼我也理解
    r"(你|您|他|她|对方|客户)骂(我|我们)(是)?)"
)


@dataclass(frozen=True)
class Guards:
    negation: bool = True
    quotation: bool = True
    allow: tuple[str, ...] = ()

    def keep_clause(self, text: Analysed, span: Span) -> bool:
        """Whether the clause around an anchor span stands for a `similar:` leaf. Sentence
        similarity ignores "不会" and quoting, so any denial in the clause cancels it
        (except a double negative such as 别以为我们不会), and so does a reporting frame
        anywhere before the anchor in its clause."""
        norm = text.norm
        start, end = span
        clause_start = _clause_start(norm, start)
        m = _CLAUSE_BREAK.search(norm, end)
        clause_end = m.start() if m else len(norm)
        clause = norm[clause_start:clause_end]
        denial = _hanzi_negations(clause)
        if self.negation and _INNER_NEGATION.search(denial) and not _DOUBLE_NEGATIVE_ANYWHERE.search(denial):
            return False
        if self.quotation:
            if _inside_quotes(norm, start, end):
                return False
            if _quoted(norm[clause_start:start]):
                return False
        return True

    def keep(self, text: Analysed, span: Span, inner: bool = False) -> bool:
        """Whether a matched span stands. ``inner`` also looks for a denial inside the
        span (for regex matches that cover a whole phrase). Remembered per turn: a
        shared lexicon's spans are judged once for all the rules that use it."""
        verdicts = text.memo.get("guards")
        if verdicts is None:
            verdicts = text.memo["guards"] = {}
        key = (self, span, inner)
        verdict = verdicts.get(key)
        if verdict is None:
            verdict = verdicts[key] = self._keep(text, span, inner)
        return verdict

    def _keep(self, text: Analysed, span: Span, inner: bool) -> bool:
        start, end = span
        norm = text.norm
        if self.allow and _inside_allowed(norm, span, self.allow):
            return False
        clause_start = _clause_start(norm, start)
        before = norm[clause_start:start]
        if self.negation:
            denial_before, after = _hanzi_negations(before), _hanzi_negations(norm[end:])
            rhetorical = _RHETORICAL_BEFORE.search(denial_before) and _RHETORICAL_AFTER.search(after)
            if (_negated(denial_before, norm[start]) and not rhetorical) or _DENIED_AFTER.search(after):
                return False
            if inner and _INNER_NEGATION.search(_hanzi_negations(norm[start:end])):
                return False
        if self.quotation:
            if _inside_quotes(norm, start, end):
                return False  # inside quotation marks
            if _quoted(before):
                return False
        return True


def _inside_quotes(norm: str, start: int, end: int) -> bool:
    """Whether a span lies within quotation marks. A span that runs on past the closing
    mark is the speaker's own words around a word in scare quotes (我们已经"温馨提示"过你几个
    亲戚了), not a quotation."""
    if norm[:start].count('"') % 2 == 0:
        return False
    closing = norm.find('"', start)
    return closing >= end


_DOUBLE_NEGATIVE_ANYWHERE = re.compile(r"(别以为|你以为|不要以为|别指望|谁说|不是不)")

# A denial typed in pinyin ("我们 bu hui 联系你家人", "mei you 去过你单位") is read as the
# characters it stands for, so every cue above applies to it; A-not-A questions (hui bu hui)
# are mapped whole and stay questions.
_PINYIN_NEGATIONS = {
    "hui bu hui": "会不会", "neng bu neng": "能不能", "shi bu shi": "是不是", "yao bu yao": "要不要",
    "you mei you": "有没有", "bu ke neng": "不可能", "cong lai bu": "从来不", "bu hui": "不会",
    "bu neng": "不能", "bu shi": "不是", "bu yao": "不要", "mei you": "没有", "jue bu": "绝不",
    "cong bu": "从不", "bu yong": "不用", "bu zai": "不再",
}
_PINYIN_NEGATION = re.compile(  # syllables written apart or together; longest first
    r"(?<![a-z])("
    + "|".join(k.replace(" ", " ?") for k in sorted(_PINYIN_NEGATIONS, key=len, reverse=True))
    + r")(?![a-z]) ?"
)
_NEGATION_BY_LETTERS = {k.replace(" ", ""): v for k, v in _PINYIN_NEGATIONS.items()}
_LATIN = re.compile(r"[a-z]")


def _hanzi_negations(text: str) -> str:
    """``text`` with pinyin denials written as characters (see _PINYIN_NEGATIONS)."""
    if not _LATIN.search(text):
        return text
    return _PINYIN_NEGATION.sub(lambda m: _NEGATION_BY_LETTERS[m.group(1).replace(" ", "")], text)


def _quoted(before: str) -> bool:
    """Whether a quoting frame governs what follows ``before`` (the clause up to a span).
    A frame governs the words right after it ("您刚才说要去我单位"), not everything later
    in a long unpunctuated turn."""
    return QUOTE_FRAME.search(before[-_QUOTE_REACH:]) is not None


def _negated(before: str, first: str = "") -> bool:
    """Whether the words before a span deny it. ``first`` is the span's first character:
    有没有人 / 是不是 ask a question and deny nothing."""
    if len(before) >= 2 and before[-1] in "不没" and first and before[-2] == first:
        return False
    if len(before) >= 2 and before[-1] == "不" and before[-2] in _BARE_NOT_AFTER:
        return True
    # a span that starts inside 不会 / 不能 / 不用 (a lexicon term such as 会打 in
    # 我们是不会打扰的): the 不 before it denies it
    if before.endswith("不") and first in _MODAL_AFTER_NOT:
        return True
    # a bare 不 that opens the clause, as in a list of things we do not do:
    # 咱这边不上门、不找你家里人
    if before == "不":
        return True
    if _SHORT_NEGATION.search(before):
        return not _DOUBLE_NEGATIVE.search(before)
    cue = NEGATION_CUE.search(before)
    if cue is None:
        return False
    head = before[: cue.start()]
    word = cue.group(1)
    # 是不是 / 会不会 / 能不能 ask a question; they deny nothing.
    if word[0] == "不" and head and len(word) > 1 and head[-1] == word[1]:
        return False
    return not _DOUBLE_NEGATIVE.search(before)


def _clause_start(norm: str, pos: int) -> int:
    last = 0
    for m in _CLAUSE_BREAK.finditer(norm, 0, pos):
        last = m.end()
    return last


def _inside_allowed(norm: str, span: Span, allow: tuple[str, ...]) -> bool:
    start, end = span
    for phrase in allow:
        i = norm.find(phrase)
        while i != -1:
            if i < end and start < i + len(phrase):
                return True
            i = norm.find(phrase, i + 1)
    return False


class Matcher:
    """Base: ``find`` returns guarded spans; ``unguarded`` the spans before the guards
    and ``keeps`` whether one of them passes (so a ``near`` can guard only the spans
    that pair up)."""

    def find(self, text: Analysed, guards: Guards) -> list[Span]:
        raise NotImplementedError

    def unguarded(self, text: Analysed, guards: Guards) -> list[Span]:
        return self.find(text, guards)

    def keeps(self, text: Analysed, guards: Guards, span: Span) -> bool:
        return True


def alternation(terms) -> str:
    """A regex group matching any of ``terms``, longest first, as a character trie:
    (?:你(?:爸|妈(?:妈)?)|…) instead of 你妈妈|你爸|你妈|…, so the engine tries each
    character once instead of each term (big lexicons sit inside many patterns)."""
    trie: dict = {}
    for term in set(terms):
        node = trie
        for char in term:
            node = node.setdefault(char, {})
        node[""] = True

    def emit(node: dict) -> str:
        children = sorted(k for k in node if k)
        if not children:
            return ""
        alternatives = [re.escape(k) + emit(node[k]) for k in children]
        body = alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"
        if "" in node:  # a term ends here: the longer ones are tried first (greedy ?)
            body = f"(?:{body})?"
        return body

    if not trie:
        return "(?!)"
    # A class of the first characters, tested first, lets the engine leave most
    # positions after one lookup instead of trying every branch of the trie.
    first = "".join(re.escape(k) for k in sorted(trie))
    return f"(?=[{first}])(?:{emit(trie)})"


_KEY_SEP = "\x00"  # never a key: keys are pinyin or a character of normalised text


def _key_string(text: Analysed) -> tuple[str, dict[int, int]]:
    """A turn's pinyin keys as one string, each key after a separator, and the character
    index of each separator's offset; built once a turn."""
    cached = text.memo.get("keys")
    if cached is None:
        offsets, pos = {}, 0
        for i, key in enumerate(text.keys):
            offsets[pos] = i
            pos += len(key) + 1
        cached = text.memo["keys"] = (_KEY_SEP + _KEY_SEP.join(text.keys) + _KEY_SEP, offsets)
    return cached


@dataclass(frozen=True)
class PinyinTerm:
    term: str
    keys: tuple[str, ...]
    # Phrases in which the homophone means something innocent (老来得子 is not 老赖).
    exceptions: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class TermsMatcher(Matcher):
    """Any of a list of terms, exactly; terms marked for pinyin also by sound."""

    terms: tuple[str, ...]
    pinyin_terms: tuple[PinyinTerm, ...] = ()
    _regex: re.Pattern | None = field(default=None, repr=False)
    # pinyin terms by their first key, so a turn's keys are walked once, not once a term
    _by_first: dict = field(default_factory=dict, repr=False)
    # where in a turn's key string some pinyin term may start (searched in C)
    _key_screen: re.Pattern | None = field(default=None, repr=False)
    # term -> phrases an exact match of it must not sit inside (a lexicon's `except:`)
    _exceptions: dict = field(default_factory=dict, repr=False)

    @staticmethod
    def build(terms: list[str], pinyin_terms: list[PinyinTerm], exceptions: dict | None = None) -> "TermsMatcher":
        ordered = sorted(set(terms), key=len, reverse=True)
        regex = re.compile(alternation(ordered)) if ordered else None
        by_first: dict = {}
        for pt in pinyin_terms:
            by_first.setdefault(pt.keys[0], []).append(pt)
        sequences = sorted({_KEY_SEP.join(map(re.escape, pt.keys)) for pt in pinyin_terms}, key=len, reverse=True)
        screen = re.compile(f"{_KEY_SEP}(?=(?:{'|'.join(sequences)}){_KEY_SEP})") if sequences else None
        return TermsMatcher(tuple(ordered), tuple(pinyin_terms), regex,
                            {k: tuple(v) for k, v in by_first.items()}, screen, dict(exceptions or {}))

    def raw_spans(self, text: Analysed) -> list[Span]:
        spans = text.memo.get(id(self))
        if spans is None:
            spans = [m.span() for m in self._regex.finditer(text.norm)] if self._regex else []
            if self._exceptions and spans:
                norm = text.norm
                spans = [s for s in spans if not _inside_allowed(norm, s, self._exceptions.get(norm[s[0]:s[1]], ()))]
            spans.extend(self._pinyin_spans(text))
            text.memo[id(self)] = spans
        return spans

    def _pinyin_spans(self, text: Analysed) -> list[Span]:
        found = []
        if self._key_screen is None:
            return found
        keys = text.keys
        key_string, char_at = _key_string(text)
        for hit in self._key_screen.finditer(key_string):
            i = char_at.get(hit.start())
            if i is None:  # a NUL inside the text itself: not a key boundary
                continue
            for pt in self._by_first.get(keys[i], ()):
                n = len(pt.keys)
                if keys[i : i + n] != pt.keys:
                    continue
                span = (i, i + n)
                # A homophone must not cut through another dictionary word (老来 in
                # 老来得子), nor sit in a phrase listed as innocent.
                if text.norm[i : i + n] != pt.term and text.cuts_a_word(*span):
                    continue
                if pt.exceptions and _inside_allowed(text.norm, span, pt.exceptions):
                    continue
                found.append(span)
        return found

    def find(self, text: Analysed, guards: Guards) -> list[Span]:
        spans = self.raw_spans(text)
        return [s for s in spans if guards.keep(text, s)] if spans else spans

    def unguarded(self, text: Analysed, guards: Guards) -> list[Span]:
        return self.raw_spans(text)

    def keeps(self, text: Analysed, guards: Guards, span: Span) -> bool:
        return guards.keep(text, span)


def _top_level_alternatives(pattern: str) -> list[str]:
    """The top-level ``|`` alternatives of a regex (one item when there are none)."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if char == "[":  # a class: skip to its closing bracket
            i += 2 if pattern[i + 1 : i + 2] in ("]", "^") else 1
            while i < len(pattern) and pattern[i] != "]":
                i += 2 if pattern[i] == "\\" else 1
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
        i += 1
    parts.append(pattern[start:])
    return parts


def search_parts(pattern: re.Pattern) -> tuple[re.Pattern, ...]:
    """Patterns whose any-match equals ``pattern``'s: its top-level alternatives, each
    searched alone. The regex engine skips ahead by an alternation's first characters
    only when every branch starts with a literal; one branch that opens with a group or
    a lookbehind makes it try every branch at every character, so a wide alternation is
    faster to reject a branch at a time."""
    parts = _top_level_alternatives(pattern.pattern)
    if len(parts) < 4:
        return (pattern,)
    try:
        return tuple(re.compile(p) for p in parts)
    except re.error:  # not a clean split: screen with the whole pattern
        return (pattern,)


@dataclass(frozen=True, eq=False)
class RegexMatcher(Matcher):
    pattern: re.Pattern
    screen: tuple[re.Pattern, ...] = ()
    # A pattern that can match nothing at all is run the plain way (finditer's rules
    # for empty matches are not worth copying).
    _may_be_empty: bool = False

    @staticmethod
    def build(pattern: re.Pattern) -> "RegexMatcher":
        return RegexMatcher(pattern, search_parts(pattern), pattern.fullmatch("") is not None)

    def _plan(self, text: Analysed) -> list:
        """The parts to search: those the turn's characters do not rule out (the engine
        leaves each wide regex's parts with their screen bits, and the bits the turn
        meets, in the turn's memo; see screen.py)."""
        screen = text.memo.get(PART_SCREEN)
        plan = screen[0].get(self.pattern.pattern) if screen is not None else None
        if plan is None:
            plan = [(part, 0) for part in self.screen or (self.pattern,)]
        met = screen[1] if screen is not None else 0
        return [part for part, mask in plan if mask & met == mask]

    def _first_start(self, text: Analysed) -> int | None:
        """Where the first match can start (None: nowhere), from the parts alone: the
        common case, answered in C. A part the turn's characters rule out is not
        searched."""
        norm = text.norm
        first = None
        for part in self._plan(text):
            found = part.search(norm)
            if found is not None and (first is None or found.start() < first):
                first = found.start()
        return first

    def _spans(self, text: Analysed) -> list[Span]:
        if len(self.screen) < 2 or self._may_be_empty:
            return self._plain_spans(text)
        norm = text.norm
        # A wide alternation matches at a position exactly where one of its parts does.
        # Running it at every position after the first is what is slow (each position
        # tries every branch), so it is tried only where some part matches, skipping
        # the positions inside a match as finditer would.
        starts = set()
        for part in self._plan(text):
            found = part.search(norm)
            while found is not None:
                starts.add(found.start())
                found = part.search(norm, found.start() + 1)
        spans, resume = [], 0
        for start in sorted(starts):
            if start < resume:
                continue
            m = self.pattern.match(norm, start)
            if m is not None:
                if m.end() == m.start():
                    return self._plain_spans(text)
                spans.append(m.span())
                resume = m.end()
        return spans

    def _plain_spans(self, text: Analysed) -> list[Span]:
        first = self._first_start(text)
        if first is None:
            return []
        # No match starts before the earliest match of a part, so the whole pattern is
        # run from there (``pos`` keeps ^ and look-behinds seeing the whole text).
        return [m.span() for m in self.pattern.finditer(text.norm, first) if m.end() > m.start()]

    def find(self, text: Analysed, guards: Guards) -> list[Span]:
        return [s for s in self._spans(text) if guards.keep(text, s, inner=True)]

    def unguarded(self, text: Analysed, guards: Guards) -> list[Span]:
        return self._spans(text)

    def keeps(self, text: Analysed, guards: Guards, span: Span) -> bool:
        return guards.keep(text, span, inner=True)


@dataclass(frozen=True, eq=False)
class NearMatcher(Matcher):
    """``first`` and ``second`` within ``within`` jieba tokens of each other (in that
    order when ``ordered``; with no punctuation between them when ``same_clause``).
    The span covers both."""

    first: Matcher
    second: Matcher
    within: int
    ordered: bool
    same_clause: bool = False

    def find(self, text: Analysed, guards: Guards) -> list[Span]:
        # Both sides unguarded first: most turns lack one side, and then no span of the
        # other needs its (costly) guards. A pair stands when both of its spans do.
        a_spans = self.first.unguarded(text, guards)
        if not a_spans:
            return []
        b_spans = self.second.unguarded(text, guards)
        if not b_spans:
            return []
        kept: dict = {}

        def keeps(side: Matcher, span: Span) -> bool:
            key = (id(side), span)
            if key not in kept:
                kept[key] = side.keeps(text, guards, span)
            return kept[key]

        found = []
        for a in a_spans:
            for b in b_spans:
                if a[0] < b[1] and b[0] < a[1]:
                    continue  # overlapping: the same words, not two things near each other
                if self.ordered and b[0] < a[1]:
                    continue
                left, right = (a, b) if a[0] <= b[0] else (b, a)
                if self.same_clause and _CLAUSE_BREAK.search(text.norm, left[1], right[0]):
                    continue
                if not (keeps(self.first, a) and keeps(self.second, b)):
                    continue
                # Each character between them adds at most one token: close enough in
                # characters is close enough in tokens, and jieba need not cut the turn.
                if right[0] - left[1] + 1 <= self.within:
                    found.append((left[0], right[1]))
                    continue
                gap = text.token_index(right[0]) - text.token_index(left[1] - 1)
                if gap <= self.within:
                    found.append((left[0], right[1]))
        return found


@dataclass(frozen=True, eq=False)
class SimilarMatcher(Matcher):
    """A `similar:` leaf: the turn is like one of ``examples`` (normalised sentences)
    when the cosine similarity of their embeddings reaches ``threshold`` (from the
    calibration file; None while calibrating) and no sentence of ``unlike`` is nearer. It finds nothing by itself: the engine
    scores it, and only on turns where its lexical anchor matched."""

    rule_id: str
    examples: tuple[str, ...]
    digest: str
    threshold: float | None
    # Counter-examples (lawful phrasings near the examples): a turn nearer to one of
    # these than to every example is not like the examples, whatever its score.
    unlike: tuple[str, ...] = ()

    def find(self, text: Analysed, guards: Guards) -> list[Span]:
        return []


def pinyin_term(term: str, exceptions: tuple[str, ...] = ()) -> PinyinTerm:
    return PinyinTerm(term=term, keys=pinyin_keys(term), exceptions=exceptions)
