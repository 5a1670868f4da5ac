"""Text stage: normalise recognised speech, tokenise it with jieba, key it by pinyin.

Speech recognition output is messy: Whisper writes traditional characters, full-width
forms, spaces between characters, and homophones (逾期→预期, 老赖→老来, 傻逼→沙比).
Rules match on the normalised text; terms marked for it also match on toneless pinyin
keys, so a homophone of a listed term is caught.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import unicodedata
import warnings

import opencc
from pypinyin import Style, lazy_pinyin

with warnings.catch_warnings():
    # jieba imports pkg_resources, which warns on recent setuptools; ignore only that.
    warnings.filterwarnings("ignore", message=".*pkg_resources.*", category=UserWarning)
    warnings.filterwarnings("ignore", message=".*pkg_resources.*", category=DeprecationWarning)
    import jieba

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_SPACE_BETWEEN_CJK = re.compile(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])")
_SPACES = re.compile(r"\s+")
# A space between two runs of three or more Chinese characters is a pause between
# phrases (transcripts written without punctuation: "我不是来催您的 我是街道办的"), so it
# ends a clause; shorter runs are one word spaced out ("傻 逼", "你 个 老 赖").
_PHRASE_PAUSE = re.compile(rf"(?<=[{_CJK}]{{3}})\s+(?=[{_CJK}]{{3}})")
_IS_CJK = re.compile(rf"[{_CJK}]")
# One masking mark between two Chinese characters is a word spelled to dodge a filter
# ("傻*逼", "废-物", "人_渣"); a doubled dash ("——") is a pause and stays.
_MASK_BETWEEN_CJK = re.compile(rf"(?<=[{_CJK}])\s*[*_~-]\s*(?=[{_CJK}])")
# ASCII single quotes next to Chinese text quote words as “” do ('我是公安局的'); in
# Latin text they stay apostrophes.
_SINGLE_QUOTE = re.compile(rf"(?<=[{_CJK}])'|'(?=[{_CJK}])")
# Hokkien and Teochew write "you" as 汝 (汝这个无路用的货, 阮敲电话予汝老爸); read as 你 so
# every rule's pronoun covers it. Not in place names (汝州, 汝阳, 汝南).
_DIALECT_YOU = re.compile(r"汝(?![州阳南宁城窑瓷水河])")

# Punctuation NFKC leaves alone, mapped to one ASCII form each. Quotes become '"' so the
# quotation guard sees one kind; clause ends become ',' '.' '!' '?' ';'.
_PUNCT = str.maketrans(
    {
        "。": ".", "．": ".", "｡": ".", "、": ",", "，": ",", "；": ";", "：": ":",
        "！": "!", "？": "?", "“": '"', "”": '"', "„": '"', "‘": '"', "’": '"',
        "「": '"', "」": '"', "『": '"', "』": '"', "《": '"', "》": '"', "〈": '"',
        "〉": '"', "…": ".", "—": "-", "–": "-", "～": "~", "·": " ",
    }
)

_opencc_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _converter() -> opencc.OpenCC:
    # Traditional (incl. Hong Kong and Taiwan variants) to simplified Chinese.
    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional → simplified Chinese (OpenCC)."""
    with _opencc_lock:  # the OpenCC object is not documented as thread-safe
        return _converter().convert(text)


def normalise(text: str) -> str:
    """The form every rule matches on.

    Simplified characters, half-width letters and digits (NFKC), one punctuation form,
    Hokkien 汝 read as 你,
    lower case, no spaces between Chinese characters (Whisper and some ASR engines
    space them out: "傻 逼") except a pause between phrases, which becomes ",", no
    single masking mark between them ("傻*逼"), other whitespace runs collapsed to one
    space.
    """
    text = _DIALECT_YOU.sub("你", to_simplified(text))
    text = unicodedata.normalize("NFKC", text).translate(_PUNCT).lower()
    text = _SINGLE_QUOTE.sub('"', _MASK_BETWEEN_CJK.sub("", text))
    text = _PHRASE_PAUSE.sub(",", text)
    text = _SPACE_BETWEEN_CJK.sub("", text)
    return _SPACES.sub(" ", text).strip()


# --- pinyin keys -----------------------------------------------------------------------

# Initials and finals that recognisers and regional accents confuse. Collapsing them
# makes 卫星/微信 (xing/xin), 是/四 (shi/si) and 牛/刘 (niu/liu) share a key.
_KEY_MERGES = (
    (re.compile(r"^(z|c|s)h"), r"\1"),
    (re.compile(r"^n(?=[aeiouv])"), "l"),
    (re.compile(r"ing$"), "in"),
    (re.compile(r"eng$"), "en"),
)


@functools.lru_cache(maxsize=20000)
def char_key(char: str) -> str:
    """Toneless, accent-merged pinyin of one character; non-Chinese characters stand for
    themselves. Each character is keyed on its own (its most common reading), and terms
    are keyed the same way, so text and terms always agree."""
    if not _IS_CJK.match(char):
        return char
    syllable = lazy_pinyin(char, style=Style.NORMAL, errors="default")[0]
    for pattern, replacement in _KEY_MERGES:
        syllable = pattern.sub(replacement, syllable)
    return syllable


def pinyin_keys(text: str) -> tuple[str, ...]:
    """One key per character of ``text`` (so key positions are character positions)."""
    return tuple(map(char_key, text))


# --- tokens ----------------------------------------------------------------------------


class Analysed:
    """A turn's text in the forms the matchers use.

    ``norm`` is the normalised text and ``keys`` has one pinyin key per character of it.
    ``tokens`` are (start, end) character spans of jieba words in ``norm``; they are cut
    only when a matcher first needs them (most turns never do).
    """

    __slots__ = ("raw", "norm", "keys", "memo", "_analyser", "_tokens", "_known")

    def __init__(self, raw: str, norm: str, keys: tuple[str, ...], analyser: "TextAnalyser"):
        self.raw = raw
        self.norm = norm
        self.keys = keys
        self._analyser = analyser
        # Matchers shared by several rules (a lexicon) remember their spans here.
        self.memo: dict = {}
        self._tokens: tuple[tuple[int, int], ...] | None = None
        self._known: tuple[bool, ...] = ()

    @property
    def tokens(self) -> tuple[tuple[int, int], ...]:
        if self._tokens is None:
            self._tokens, self._known = self._analyser.tokens(self.norm)
        return self._tokens

    @property
    def known(self) -> tuple[bool, ...]:
        """For each token: is it a dictionary word (rather than a guess of jieba's HMM)?"""
        self.tokens  # noqa: B018 - cut on first use
        return self._known

    def token_index(self, char_pos: int) -> int:
        """Index of the token that contains the character at ``char_pos``."""
        tokens = self.tokens
        lo, hi = 0, len(tokens) - 1
        while lo <= hi:
            mid = (lo + hi) // 2
            start, end = tokens[mid]
            if char_pos < start:
                hi = mid - 1
            elif char_pos >= end:
                lo = mid + 1
            else:
                return mid
        return max(0, min(lo, len(tokens) - 1))

    def on_token_boundaries(self, start: int, end: int) -> bool:
        starts = {s for s, _ in self.tokens}
        ends = {e for _, e in self.tokens}
        return start in starts and end in ends

    def cuts_a_word(self, start: int, end: int) -> bool:
        """Whether [start, end) cuts through a multi-character dictionary word, as 老来
        would cut 老来得子. Tokens jieba only guessed do not count."""
        for (s, e), known in zip(self.tokens, self.known):
            if known and e - s > 1 and s < end and start < e and not (start <= s and e <= end):
                return True
        return False


class TextAnalyser:
    """Owns one jieba Tokenizer (never the module-global one), loaded with the domain
    words of the rule lexicons so that terms such as 爆通讯录 stay whole."""

    def __init__(self, domain_words: list[str] | tuple[str, ...] = ()):
        logging.getLogger("jieba").setLevel(logging.WARNING)
        self._tokenizer = jieba.Tokenizer()
        self._tokenizer.initialize()
        # jieba's add_word rebuilds shared state; do it once here, under a lock later.
        for word in sorted(set(domain_words)):
            if word and " " not in word:
                self._tokenizer.add_word(word, freq=20000)
        self._lock = threading.Lock()

    def tokens(self, norm: str, hmm: bool = True) -> tuple[tuple[tuple[int, int], ...], tuple[bool, ...]]:
        """Character spans of the jieba words of ``norm``, and whether each is a
        dictionary word. ``hmm=False`` skips jieba's guessing of unknown words (twice
        as fast; they come out as single characters)."""
        with self._lock:  # jieba's Tokenizer keeps mutable caches
            words = list(self._tokenizer.cut(norm, HMM=hmm))
        spans, known, pos = [], [], 0
        for word in words:
            if word.strip():
                spans.append((pos, pos + len(word)))
                known.append(bool(self._tokenizer.FREQ.get(word)))
            pos += len(word)
        return tuple(spans), tuple(known)

    def analyse(self, raw: str) -> Analysed:
        norm = normalise(raw)
        return Analysed(raw, norm, pinyin_keys(norm), self)
