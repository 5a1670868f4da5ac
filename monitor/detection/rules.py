"""Load and validate the rule pack (rules/*.yaml + rules/lexicons/*.yaml + rules/phrases/*.yaml).

Every problem is collected, located (file:line) and reported at once: a broken rule stops
start-up, it is never skipped. The format is documented in rules/README.md. The boolean
structure of each rule is kept as an expression tree whose leaves are matchers; engine.py
compiles the trees into durable_rules rulesets.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema

from monitor.detection import yamlfile
from monitor.errors import RuleError, RuleProblem
from monitor.detection.matching import Guards, Matcher, NearMatcher, RegexMatcher, SimilarMatcher, TermsMatcher, alternation, pinyin_term
from monitor.models import CATEGORIES, SEVERITIES
from monitor.detection.text import TextAnalyser, normalise, to_simplified

DEFAULT_RULES_DIR = Path(__file__).resolve().parents[2] / "rules"

_RULE_SPEAKERS = ["collector", "unknown"]  # a debtor's words are never a finding

_EXAMPLE = {
    "oneOf": [
        {"type": "string", "minLength": 1},
        {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "text": {"type": "string", "minLength": 1},
                "speaker": {"enum": ["collector", "debtor", "unknown"]},
                "turns": {"type": "array", "minItems": 1, "items": {"type": "object"}},
                "calls": {"type": "array", "minItems": 1, "items": {"type": "object"}},
                "note": {"type": "string"},
                # Conversation signals of the example (see the signal keys in rules/README.md).
                "raised_voice": {"type": "boolean"},
                "overtalk_share": {"type": "number", "minimum": 0, "maximum": 1},
            },
        },
    ]
}

RULE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "title", "description", "category", "severity", "legal_basis", "examples"],
    "properties": {
        "id": {"type": "string", "pattern": r"^[a-z0-9]+(-[a-z0-9]+)*$"},
        "title": {"type": "string", "minLength": 1},
        "description": {"type": "string", "minLength": 1},
        "description_en": {"type": "string", "minLength": 1},  # optional English text
        "category": {"enum": list(CATEGORIES)},
        "severity": {"enum": list(SEVERITIES)},
        "speakers": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"enum": _RULE_SPEAKERS},
        },
        "legal_basis": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
        "match": {"type": "object"},
        "unless": {"type": "object"},
        "guards": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"negation": {"type": "boolean"}, "quotation": {"type": "boolean"}},
        },
        "allow": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "after": {
            "type": "object",
            "additionalProperties": False,
            "required": ["match", "within_turns"],
            "properties": {
                "match": {"type": "object"},
                "within_turns": {"type": "integer", "minimum": 1},
            },
        },
        "call": {"type": "object"},
        "examples": {
            "type": "object",
            "additionalProperties": False,
            "required": ["fire", "quiet"],
            "properties": {
                "fire": {"type": "array", "minItems": 1, "items": _EXAMPLE},
                "quiet": {"type": "array", "minItems": 1, "items": _EXAMPLE},
            },
        },
    },
}

CALL_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["kind", "timezone"],
    "properties": {
        "kind": {"enum": ["off_hours", "call_frequency"]},
        "timezone": {"type": "string"},
        "window": {
            "type": "object",
            "additionalProperties": False,
            "required": ["start", "end"],
            "properties": {
                "start": {"type": "string", "pattern": r"^\d{2}:\d{2}$"},
                "end": {"type": "string", "pattern": r"^\d{2}:\d{2}$"},
            },
        },
        "limit": {"type": "integer", "minimum": 1},
        "days": {"type": "integer", "minimum": 1},
        "directions": {"type": "array", "minItems": 1, "items": {"enum": ["outbound", "inbound"]}},
    },
}

LEXICON_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "description"],
    "anyOf": [{"required": ["terms"]}, {"required": ["include"]}],
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9_]+$"},
        "description": {"type": "string"},
        "pinyin": {"type": "boolean"},
        # A lexicon made of other lexicons: their terms (and pinyin marks) join its own.
        "include": {"type": "array", "minItems": 1, "uniqueItems": True,
                    "items": {"type": "string", "pattern": r"^[a-z0-9_]+$"}},
        "terms": {
            "type": "array",
            "minItems": 1,
            "items": {
                "oneOf": [
                    {"type": "string", "minLength": 1},
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["term"],
                        "properties": {
                            "term": {"type": "string", "minLength": 1},
                            "pinyin": {"type": "boolean"},
                            "except": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                ]
            },
        },
    },
}

PHRASES_DIR = "phrases"
# A phrase file: named regular expressions that several rules share, so that one kind of
# speech raising two categories (decision rule 2: public exposure is threat and
# third_party) is written once and cannot drift apart between the two rules.
def _list_file_schema(key: str) -> dict:
    """A shared file that is a name, a description and one non-empty list of strings."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "description", key],
        "properties": {
            "name": {"type": "string", "pattern": r"^[a-z0-9_]+$"},
            "description": {"type": "string"},
            key: {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
        },
    }


PHRASES_SCHEMA = _list_file_schema("patterns")

_LEXICON_REF = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
# Conversation-signal conditions (monitor.speech.signals): true or false of a turn or
# of the whole call, never of the words; they combine with word matchers like any leaf.
_SIGNAL_KEYS = ("raised_voice", "overtalk_share")
_EXPR_KEYS = ("lexicon", "terms", "regex", "phrases", "match_of", "near", "all", "any", "not", "similar") + _SIGNAL_KEYS

# `similar:` example-sentence files (rules/similar/NAME.yaml) and the thresholds that
# `monitor rules calibrate` computes for similar leaves (see rules/README.md).
SIMILAR_DIR = "similar"
CALIBRATION_FILE = "calibration.json"
CALIBRATION_FORMAT = 1

SENTENCES_SCHEMA = _list_file_schema("sentences")


# --- the compiled form -------------------------------------------------------------------


@dataclass(frozen=True)
class SignalCondition:
    """A leaf about how something was said, not what: ``raised_voice`` (the turn is
    well above its speaker's usual loudness) or ``overtalk_share`` (the call's share
    of speech time with both sides talking at once is at least ``at_least``). Words
    never match it (``find`` finds nothing); the engine asks ``holds``."""

    key: str
    at_least: float | None = None

    def find(self, analysed, guards) -> list:
        return []

    def holds(self, turn, call) -> bool:
        if self.key == "raised_voice":
            return bool(getattr(turn, "raised_voice", False))
        signals = getattr(call, "signals", None)
        return signals is not None and signals.overtalk_share >= self.at_least


@dataclass(frozen=True)
class Leaf:
    signal: str
    matcher: Matcher
    guards: Guards
    # What the rule file says here ("lexicon: third_parties", "regex: …"), for reports
    # such as `monitor evaluate`'s misses by kind.
    source: str = ""


def is_similar(leaf) -> bool:
    """Whether ``leaf`` is a `similar:` leaf (scored by sentence embeddings, not found
    in the text by a matcher)."""
    return isinstance(leaf, Leaf) and isinstance(leaf.matcher, SimilarMatcher)


@dataclass(frozen=True)
class AllOf:
    items: tuple


@dataclass(frozen=True)
class AnyOf:
    items: tuple


@dataclass(frozen=True)
class NotOf:
    item: object


@dataclass(frozen=True)
class CallSpec:
    kind: str  # off_hours | call_frequency
    timezone: ZoneInfo
    directions: tuple[str, ...]
    window_start: int | None = None  # minutes after local midnight
    window_end: int | None = None
    limit: int | None = None
    days: int = 1


@dataclass(frozen=True)
class Example:
    fire: bool
    turns: tuple[tuple[str, str], ...] = ()  # (speaker, text); the last one is judged
    calls: tuple[dict, ...] = ()  # call-rule examples; the last call is judged
    line: int | None = None
    raised: tuple[bool, ...] = ()  # per turn: said with a raised voice
    overtalk_share: float | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    description: str
    category: str
    severity: str
    speakers: tuple[str, ...]
    legal_basis: tuple[str, ...]
    path: Path
    match: object | None = None  # expression tree for turn rules
    unless: object | None = None
    after: object | None = None
    after_within: int = 0
    call: CallSpec | None = None
    examples: tuple[Example, ...] = ()
    description_en: str = ""

    @property
    def is_call_rule(self) -> bool:
        return self.call is not None

    # The leaves are asked for with every finding; a rule's trees never change, so they
    # are collected once (cached_property writes past the frozen dataclass's setattr).
    @functools.cached_property
    def leaves(self) -> tuple[Leaf, ...]:
        found: list[Leaf] = []
        for tree in (self.match, self.unless, self.after):
            if tree is not None:
                _collect_leaves(tree, found)
        return tuple(found)

    @functools.cached_property
    def positive_leaves(self) -> tuple[Leaf, ...]:
        """Leaves of ``match`` not under a ``not``: where the evidence is."""
        found: list[Leaf] = []
        if self.match is not None:
            _collect_leaves(self.match, found, skip_negated=True)
        return tuple(found)

    @functools.cached_property
    def similar_leaf(self) -> Leaf | None:
        """The rule's `similar:` leaf (a rule has at most one), if any."""
        return next((leaf for leaf in self.leaves if is_similar(leaf)), None)


def _has_positive(tree) -> bool:
    """Whether every way ``tree`` can hold requires some words to be present."""
    if isinstance(tree, Leaf):
        return True
    if isinstance(tree, AnyOf):
        return all(_has_positive(item) for item in tree.items)
    if isinstance(tree, AllOf):
        return any(_has_positive(item) for item in tree.items)
    return False


def _anchored(tree) -> bool:
    """Whether every way ``tree`` can hold requires a lexical leaf (lexicon, terms,
    regex, phrases, near) to match: the anchor a `similar:` leaf needs beside it."""
    if isinstance(tree, Leaf):
        return not is_similar(tree)
    if isinstance(tree, AnyOf):
        return all(_anchored(item) for item in tree.items)
    if isinstance(tree, AllOf):
        return any(_anchored(item) for item in tree.items)
    return False


def _names_match_of(node) -> bool:
    """Whether a rule file's expression (as written) uses match_of anywhere."""
    if isinstance(node, dict):
        return "match_of" in node or any(_names_match_of(v) for v in node.values())
    if isinstance(node, list):
        return any(_names_match_of(v) for v in node)
    return False


def _leaves_of(tree) -> list:
    found: list = []
    _collect_leaves(tree, found)
    return found


def _collect_leaves(tree, found: list, skip_negated: bool = False) -> None:
    if isinstance(tree, Leaf):
        found.append(tree)
    elif isinstance(tree, (AllOf, AnyOf)):
        for item in tree.items:
            _collect_leaves(item, found, skip_negated)
    elif isinstance(tree, NotOf) and not skip_negated:
        _collect_leaves(tree.item, found, skip_negated)


@dataclass
class RulePack:
    """All rules of one folder, their lexicons, and the text analyser they need."""

    directory: Path
    rules: tuple[Rule, ...]
    version: str
    analyser: TextAnalyser = field(repr=False)

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    @property
    def turn_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if not r.is_call_rule)

    @property
    def call_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.is_call_rule)


# --- loading -----------------------------------------------------------------------------


@dataclass
class _Lexicon:
    name: str
    terms: list[str]
    pinyin_terms: list
    # term -> phrases it must not sit inside (its `except:`), however it was matched
    exceptions: dict = field(default_factory=dict)
    matcher: TermsMatcher | None = None


class _Problems:
    def __init__(self):
        self.items: list[RuleProblem] = []

    def add(self, path: Path, line: int | None, message: str) -> None:
        self.items.append(RuleProblem(_display(path), line, message))


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _schema_problems(document, schema, path: Path, problems: _Problems) -> bool:
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    for error in errors:
        where = ".".join(str(p) for p in error.absolute_path)
        message = error.message if not where else f"{where}: {error.message}"
        if error.validator == "oneOf" and error.context:
            message = f"{where or 'value'}: " + "; or ".join(
                sorted({e.message for e in error.context})[:3]
            )
        problems.add(path, yamlfile.line_of(document, list(error.absolute_path)), message)
    return not errors


def _named_documents(folder: Path, schema: dict, problems: _Problems):
    """Each valid YAML file of a shared folder (lexicons, phrases, similar sentences) and
    its document; a syntax or schema error, or a name that is not the file name, is a
    problem located in that file, and the file is left out."""
    for path in sorted(folder.glob("*.yaml")):
        try:
            doc = yamlfile.load(path)
        except yamlfile.YamlSyntaxError as exc:
            problems.add(path, exc.line, str(exc))
            continue
        if not _schema_problems(doc, schema, path, problems):
            continue
        if doc["name"] != path.stem:
            problems.add(path, doc.key_lines["name"], f"name '{doc['name']}' must equal the file name '{path.stem}'")
            continue
        yield path, doc


def _load_lexicons(directory: Path, problems: _Problems) -> dict[str, _Lexicon]:
    lexicons: dict[str, _Lexicon] = {}
    includes: dict[str, tuple] = {}
    for path, doc in _named_documents(directory / "lexicons", LEXICON_SCHEMA, problems):
        default_pinyin = doc.get("pinyin", False)
        lexicon = _Lexicon(doc["name"], [], [])
        for item in doc.get("terms", ()):
            entry = {"term": item} if isinstance(item, str) else item
            term = normalise(entry["term"])
            lexicon.terms.append(term)
            exceptions = tuple(normalise(e) for e in entry.get("except", ()))
            if exceptions:
                lexicon.exceptions[term] = exceptions
            if entry.get("pinyin", default_pinyin):
                lexicon.pinyin_terms.append(pinyin_term(term, exceptions))
        lexicons[lexicon.name] = lexicon
        if "include" in doc:
            includes[lexicon.name] = (path, doc.key_lines.get("include"), list(doc["include"]))
    _resolve_includes(lexicons, includes, problems)
    for lexicon in lexicons.values():
        lexicon.matcher = TermsMatcher.build(lexicon.terms, lexicon.pinyin_terms, lexicon.exceptions)
    return lexicons


def compile_pattern(pattern: str, lexicons: dict) -> tuple[re.Pattern | None, str | None]:
    """One regex of a rule or phrase file, compiled as the matcher sees it; or the
    problem with it. Text is matched in simplified characters, so the pattern is
    converted too (揾 for 搵; OpenCC leaves the ASCII regex syntax alone), and each
    {lexicon_name} stands for that lexicon's exact spellings."""
    unknown = None

    def replace(m: re.Match) -> str:
        nonlocal unknown
        lexicon = lexicons.get(m.group(1))
        if lexicon is None:
            unknown = unknown or m.group(1)
            return m.group(0)
        return alternation(lexicon.terms)

    expanded = _LEXICON_REF.sub(replace, to_simplified(pattern))
    if unknown:
        return None, f"unknown lexicon {{{unknown}}} (no rules/lexicons/{unknown}.yaml)"
    try:
        compiled = re.compile(expanded)
    except re.error as exc:
        return None, f"invalid regular expression: {exc}"
    if compiled.search(""):
        return None, "pattern matches the empty string"
    return compiled, None


def _load_phrases(directory: Path, lexicons: dict, problems: _Problems) -> dict[str, RegexMatcher]:
    """rules/phrases/*.yaml: each file one matcher of its patterns' alternatives. A bad
    pattern is a problem at its own line of the phrase file."""
    phrases: dict[str, RegexMatcher] = {}
    for path, doc in _named_documents(directory / PHRASES_DIR, PHRASES_SCHEMA, problems):
        patterns = doc["patterns"]
        good = True
        for i, pattern in enumerate(patterns):
            _, problem = compile_pattern(pattern, lexicons)
            if problem:
                problems.add(path, patterns.item_lines[i], f"patterns[{i}]: {problem}")
                good = False
        if good:
            joined, _ = compile_pattern("|".join(f"(?:{p})" for p in patterns), lexicons)
            phrases[doc["name"]] = RegexMatcher.build(joined)
    return phrases


def _merge_exceptions(into: dict, more: dict) -> None:
    """Add ``more``'s `except:` phrases (term -> phrases) to ``into``, each phrase once."""
    for term, phrases in more.items():
        into[term] = tuple(dict.fromkeys(into.get(term, ()) + phrases))


def _resolve_includes(lexicons: dict[str, _Lexicon], includes: dict, problems: _Problems) -> None:
    """Add the terms of included lexicons (transitively) to each including lexicon. An
    unknown name or a cycle is a problem located at the include line."""
    own = {name: (list(lex.terms), list(lex.pinyin_terms), dict(lex.exceptions)) for name, lex in lexicons.items()}

    def gather(name: str, trail: tuple[str, ...]) -> tuple[list, list, dict] | None:
        terms, pinyin, exceptions = list(own[name][0]), list(own[name][1]), dict(own[name][2])
        for included in includes.get(name, (None, None, []))[2]:
            path, line, _ = includes[name]
            if included not in lexicons:
                problems.add(path, line, f"include: unknown lexicon {included} (no rules/lexicons/{included}.yaml)")
                return None
            if included in trail:
                problems.add(path, line, f"include: lexicon {included} includes itself ({' -> '.join(trail + (included,))})")
                return None
            sub = gather(included, trail + (included,))
            if sub is None:
                return None
            terms.extend(sub[0])
            pinyin.extend(sub[1])
            _merge_exceptions(exceptions, sub[2])
        return terms, pinyin, exceptions

    for name in includes:
        gathered = gather(name, (name,))
        if gathered is not None:
            lexicons[name].terms, lexicons[name].pinyin_terms, lexicons[name].exceptions = gathered


class _ExprCompiler:
    """Turns one rule's ``match``/``unless``/``after`` mappings into expression trees."""

    def __init__(self, rule_id: str, path: Path, lexicons: dict, guards: Guards, problems: _Problems,
                 similar: "_SimilarContext | None" = None, phrases: dict | None = None,
                 rule_documents: dict | None = None):
        self.rule_id = rule_id
        self.path = path
        self.lexicons = lexicons
        self.phrases = phrases or {}
        self.rule_documents = rule_documents or {}  # rule id -> (path, document), for match_of
        self.guards = guards
        self.problems = problems
        self.similar = similar
        self.count = 0
        self.similar_lines: list[int | None] = []

    def compile(self, node, where: str, parent: str | None = None):
        line = getattr(node, "line", None)
        if not isinstance(node, dict):
            self.problems.add(self.path, line, f"{where}: expected a mapping with one of {', '.join(_EXPR_KEYS)}")
            return None
        keys = [k for k in node if k in _EXPR_KEYS]
        if "similar" in keys and "threshold" in node:
            self.problems.add(self.path, node.key_lines.get("threshold", line), _NO_THRESHOLD)
            return None
        extra = [k for k in node if k not in _EXPR_KEYS + ("within", "ordered", "same_clause", "pinyin")]
        if len(keys) != 1 or extra:
            self.problems.add(
                self.path, line,
                f"{where}: needs exactly one of {', '.join(_EXPR_KEYS)}"
                + (f" (unknown key: {', '.join(map(str, extra))})" if extra else ""),
            )
            return None
        kind = keys[0]
        value = node[kind]
        key_line = node.key_lines.get(kind, line) if hasattr(node, "key_lines") else line
        if kind in ("all", "any"):
            if not isinstance(value, list) or not value:
                self.problems.add(self.path, key_line, f"{where}.{kind}: expected a non-empty list")
                return None
            items = [self.compile(v, f"{where}.{kind}[{i}]", kind) for i, v in enumerate(value)]
            if any(i is None for i in items):
                return None
            for i, item in enumerate(items):
                if is_similar(item) and not any(_anchored(other) for j, other in enumerate(items) if j != i):
                    self.problems.add(
                        self.path, getattr(value[i], "line", key_line),
                        f"{where}.{kind}[{i}].similar: needs a lexical anchor beside it in the same 'all:' "
                        "(a lexicon, terms, regex or near that must also match)",
                    )
                    return None
            return (AllOf if kind == "all" else AnyOf)(tuple(items))
        if kind == "similar":
            return self.similar_leaf(node, value, key_line, where, parent)
        if kind == "match_of":
            return self.match_of(value, key_line, where, parent)
        if kind == "not":
            # What excludes a turn is evidence against a finding: a denial or a quote
            # must not hide it (in "她说让您回电" the call-back request still counts).
            guards, self.guards = self.guards, Guards(negation=False, quotation=False)
            try:
                item = self.compile(value, f"{where}.not", "not")
            finally:
                self.guards = guards
            if item is None:
                return None
            if not (isinstance(item, Leaf) or (isinstance(item, AnyOf) and all(isinstance(i, Leaf) for i in item.items))):
                self.problems.add(self.path, key_line, f"{where}.not: may wrap one matcher or an 'any' of matchers only")
                return None
            return NotOf(item)
        if kind in _SIGNAL_KEYS:
            matcher = self.signal(kind, value, key_line, where)
        else:
            matcher = self.matcher(node, kind, value, key_line, where)
        if matcher is None:
            return None
        self.count += 1
        return Leaf(f"{self.rule_id}/{self.count}", matcher, self.guards, describe_leaf(node, kind))

    def match_of(self, rule_id, line, where: str, parent: str | None):
        """Another rule's `match`, compiled as part of this rule (with this rule's guards
        and leaf ids): one kind of speech that raises two categories (decision rule 2:
        public exposure is threat and third_party) is written once, in one rule."""
        target = self.rule_documents.get(rule_id) if isinstance(rule_id, str) else None
        if target is None or not isinstance(target[1], dict) or "match" not in target[1]:
            self.problems.add(self.path, line, f"{where}.match_of: unknown rule {rule_id} (no rules/{rule_id}.yaml with a 'match')")
            return None
        if rule_id == self.rule_id:
            self.problems.add(self.path, line, f"{where}.match_of: {rule_id}: a rule may not name its own match")
            return None
        path, document = target
        if _names_match_of(document["match"]):
            self.problems.add(self.path, line, f"{where}.match_of: {rule_id} names another rule's match itself; name the rule whose match is written out")
            return None
        # Problems inside the other rule's match are that rule's to report, once, at its own lines.
        before = len(self.problems.items)
        own_path, self.path = self.path, path
        try:
            tree = self.compile(document["match"], "match", parent)
        finally:
            self.path = own_path
        if len(self.problems.items) > before:
            del self.problems.items[before:]
            self.problems.add(self.path, line, f"{where}.match_of: {rule_id} does not load (see its own problems)")
            return None
        if tree is not None and any(is_similar(leaf) for leaf in _leaves_of(tree)):
            self.problems.add(self.path, line, f"{where}.match_of: {rule_id} uses similar: (its threshold is calibrated for that rule alone)")
            return None
        return tree

    def similar_leaf(self, node, value, line, where: str, parent: str | None):
        if parent != "all" or not where.startswith("match"):
            self.problems.add(
                self.path, line,
                f"{where}.similar: allowed only as an item of an 'all:' in match, beside a lexical anchor "
                "(a lexicon, terms, regex or near that must also match)",
            )
            return None
        if self.similar_lines:
            self.problems.add(self.path, line, f"{where}.similar: a rule has at most one similar leaf")
            return None
        if not isinstance(value, dict) or "examples" not in value:
            self.problems.add(self.path, line, f"{where}.similar: expected a mapping with examples: [sentences] or examples: NAME (rules/similar/NAME.yaml)")
            return None
        if "threshold" in value:
            self.problems.add(self.path, value.key_lines.get("threshold", line), _NO_THRESHOLD)
            return None
        extra = [k for k in value if k not in ("examples", "unlike")]
        if extra:
            self.problems.add(self.path, value.key_lines.get(extra[0], line), f"{where}.similar: unknown key {extra[0]} (only examples and unlike)")
            return None
        sentences = self.sentence_list(value, "examples", line, where)
        unlike = self.sentence_list(value, "unlike", line, where) if "unlike" in value else ()
        if sentences is None or unlike is None:
            return None
        digest = examples_digest(sentences + ("",) + unlike if unlike else sentences)
        threshold = None
        if self.similar is not None:
            threshold, problem = self.similar.threshold(self.rule_id, digest)
            if problem:
                self.problems.add(self.path, line, f"{where}.similar: {problem}")
                return None
        self.similar_lines.append(line)
        self.count += 1
        return Leaf(f"{self.rule_id}/{self.count}", SimilarMatcher(self.rule_id, sentences, digest, threshold, unlike),
                    self.guards, describe_leaf(node, "similar"))

    def sentence_list(self, value, key: str, line, where: str) -> tuple[str, ...] | None:
        """`examples:` or `unlike:` of a similar leaf: a list of sentences or the name of
        a sentence file (rules/similar/NAME.yaml)."""
        items = value[key]
        item_line = value.key_lines.get(key, line)
        if isinstance(items, str):
            sentences = self.similar.sentences(items) if self.similar else None
            if sentences is None:
                self.problems.add(self.path, item_line, f"{where}.similar.{key}: unknown sentence file {items} (no rules/{SIMILAR_DIR}/{items}.yaml)")
                return None
        elif isinstance(items, list) and items and all(isinstance(e, str) and e.strip() for e in items):
            sentences = [normalise(e) for e in items]
        else:
            self.problems.add(self.path, item_line, f"{where}.similar.{key}: expected a non-empty list of sentences or a sentence file name")
            return None
        return tuple(dict.fromkeys(sentences))

    def signal(self, kind, value, line, where) -> SignalCondition | None:
        if kind == "raised_voice":
            if value is not True:
                self.problems.add(self.path, line, f"{where}.raised_voice: expected true (use not: for the opposite)")
                return None
            return SignalCondition("raised_voice")
        at_least = value.get("at_least") if isinstance(value, dict) else None
        if (not isinstance(value, dict) or set(value) != {"at_least"} or isinstance(at_least, bool)
                or not isinstance(at_least, (int, float)) or not 0 < at_least <= 1):
            self.problems.add(self.path, line, f"{where}.overtalk_share: expected {{at_least: N}} with 0 < N <= 1")
            return None
        return SignalCondition("overtalk_share", float(at_least))

    def matcher(self, node, kind, value, line, where) -> Matcher | None:
        if kind == "lexicon":
            names = [value] if isinstance(value, str) else value
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                self.problems.add(self.path, line, f"{where}.lexicon: expected a lexicon name or a list of names")
                return None
            missing = [n for n in names if n not in self.lexicons]
            if missing:
                self.problems.add(self.path, line, f"{where}.lexicon: unknown lexicon {', '.join(missing)} (no rules/lexicons/{missing[0]}.yaml)")
                return None
            terms = [t for n in names for t in self.lexicons[n].terms]
            pinyin = [p for n in names for p in self.lexicons[n].pinyin_terms]
            if len(names) == 1:
                return self.lexicons[names[0]].matcher
            exceptions: dict = {}
            for n in names:
                _merge_exceptions(exceptions, self.lexicons[n].exceptions)
            return TermsMatcher.build(terms, pinyin, exceptions)
        if kind == "terms":
            if not isinstance(value, list) or not value or not all(isinstance(t, str) and t for t in value):
                self.problems.add(self.path, line, f"{where}.terms: expected a non-empty list of strings")
                return None
            terms = [normalise(t) for t in value]
            pinyin = [pinyin_term(t) for t in terms] if node.get("pinyin") else []
            return TermsMatcher.build(terms, pinyin)
        if kind == "regex":
            # A list of patterns is one matcher of their alternatives: readable one per
            # line, and one search per turn instead of one per pattern.
            if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
                value = "|".join(f"(?:{v})" for v in value)
            if not isinstance(value, str) or not value:
                self.problems.add(self.path, line, f"{where}.regex: expected a pattern string or a list of them")
                return None
            pattern, problem = compile_pattern(value, self.lexicons)
            if problem:
                self.problems.add(self.path, line, f"{where}.regex: {problem}")
                return None
            return RegexMatcher.build(pattern)
        if kind == "phrases":
            if not isinstance(value, str) or value not in self.phrases:
                self.problems.add(self.path, line, f"{where}.phrases: unknown phrase file {value} (no valid rules/{PHRASES_DIR}/{value}.yaml)")
                return None
            return self.phrases[value]
        if kind == "near":
            within = node.get("within")
            if not isinstance(value, list) or len(value) != 2 or not isinstance(within, int) or within < 0:
                self.problems.add(self.path, line, f"{where}.near: expected a list of two expressions and 'within: N' (tokens)")
                return None
            parts = []
            for i, sub in enumerate(value):
                sub_keys = [k for k in sub if k in ("lexicon", "terms", "regex", "phrases", "near")] if isinstance(sub, dict) else []
                if len(sub_keys) != 1:
                    self.problems.add(self.path, getattr(sub, "line", line), f"{where}.near[{i}]: each side is one lexicon, terms, regex, phrases or near")
                    return None
                part = self.matcher(sub, sub_keys[0], sub[sub_keys[0]], getattr(sub, "line", line), f"{where}.near[{i}]")
                if part is None:
                    return None
                parts.append(part)
            return NearMatcher(parts[0], parts[1], within, bool(node.get("ordered", False)),
                               bool(node.get("same_clause", False)))
        return None


def describe_leaf(node, kind: str) -> str:
    """A short label of a leaf as its rule file writes it."""
    value = node.get(kind)
    if kind == "lexicon":
        return "lexicon: " + (value if isinstance(value, str) else ", ".join(map(str, value)))
    if kind == "terms":
        terms = [str(t) for t in value]
        return "terms: " + ", ".join(terms[:4]) + (f" … ({len(terms)})" if len(terms) > 4 else "")
    if kind == "regex":
        text = str(value)
        return "regex: " + (text if len(text) <= 40 else text[:40] + "…")
    if kind == "phrases":
        return f"phrases: {value}"
    if kind == "near":
        sides = []
        for side in value:
            side_kind = next((k for k in ("lexicon", "terms", "regex", "phrases", "near") if k in side), None)
            sides.append(describe_leaf(side, side_kind) if side_kind else "?")
        return f"near({' ~ '.join(sides)})"
    if kind == "similar":
        examples = value.get("examples") if isinstance(value, dict) else None
        return "similar: " + (examples if isinstance(examples, str) else "inline examples")
    return kind


_NO_THRESHOLD = (
    "similar: a threshold is not typed into a rule file; `monitor rules calibrate` computes it "
    f"from labelled data into rules/{CALIBRATION_FILE}"
)


def examples_digest(sentences) -> str:
    """Identifies a similar leaf's example sentences: a calibrated threshold holds only
    for the sentences it was computed with."""
    return hashlib.sha256("\n".join(sentences).encode()).hexdigest()[:16]


class _SimilarContext:
    """What `similar:` leaves need while a pack loads: the example-sentence files and
    the calibration file. ``calibrating`` loads leaves without thresholds (for
    `monitor rules calibrate` itself)."""

    def __init__(self, directory: Path, problems: _Problems, calibrating: bool):
        self.directory = directory
        self.problems = problems
        self.calibrating = calibrating
        self._sentences: dict[str, list[str]] = {}
        for _, doc in _named_documents(directory / SIMILAR_DIR, SENTENCES_SCHEMA, problems):
            self._sentences[doc["name"]] = [normalise(t) for t in doc["sentences"]]
        self.calibration = self._read_calibration()

    def _read_calibration(self) -> dict:
        path = self.directory / CALIBRATION_FILE
        if not path.exists():
            return {}
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self.problems.add(path, getattr(exc, "lineno", None), f"not valid JSON: {exc}")
            return {}
        if not isinstance(doc, dict) or doc.get("format") != CALIBRATION_FORMAT or not isinstance(doc.get("rules"), dict):
            self.problems.add(path, None, f"not a calibration file of format {CALIBRATION_FORMAT}: run `monitor rules calibrate`")
            return {}
        return doc

    def sentences(self, name: str) -> list[str] | None:
        return self._sentences.get(name)

    def threshold(self, rule_id: str, digest: str) -> tuple[float | None, str | None]:
        if self.calibrating:
            return None, None
        entry = self.calibration.get("rules", {}).get(rule_id)
        if entry and entry.get("threshold", 0) is None:
            return None, (f"calibration found no threshold that keeps precision ≥ {self.calibration.get('precision_floor')} "
                          "for this rule's category: narrow its anchor or improve its examples, then calibrate again")
        if not entry or not isinstance(entry.get("threshold"), (int, float)):
            return None, (f"no calibrated threshold for rule {rule_id} in rules/{CALIBRATION_FILE}: "
                          "run `monitor rules calibrate` on labelled data")
        if entry.get("examples") != digest:
            return None, (f"the example sentences changed since rules/{CALIBRATION_FILE} was computed: "
                          "run `monitor rules calibrate` again")
        return float(entry["threshold"]), None


def _parse_clock(text: str) -> int:
    hours, minutes = (int(x) for x in text.split(":"))
    dtime(hours % 24, minutes)  # validates
    return hours * 60 + minutes


def _compile_call(doc, path: Path, problems: _Problems) -> CallSpec | None:
    spec = doc["call"]
    if not _schema_problems(spec, CALL_SCHEMA, path, problems):
        return None
    line = doc.key_lines.get("call")
    try:
        zone = ZoneInfo(spec["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        problems.add(path, spec.key_lines.get("timezone", line), f"call.timezone: unknown time zone '{spec['timezone']}'")
        return None
    directions = tuple(spec.get("directions", ["outbound"]))
    if spec["kind"] == "off_hours":
        if "window" not in spec:
            problems.add(path, line, "call: an off_hours rule needs window: {start: 'HH:MM', end: 'HH:MM'}")
            return None
        try:
            start = _parse_clock(spec["window"]["start"])
            end = _parse_clock(spec["window"]["end"])
        except ValueError as exc:
            problems.add(path, spec.key_lines.get("window", line), f"call.window: {exc}")
            return None
        return CallSpec("off_hours", zone, directions, window_start=start, window_end=end)
    if "limit" not in spec:
        problems.add(path, line, "call: a call_frequency rule needs limit: N")
        return None
    return CallSpec("call_frequency", zone, directions, limit=spec["limit"], days=spec.get("days", 1))


def _examples(doc, path: Path, is_call_rule: bool, problems: _Problems) -> tuple[Example, ...]:
    found = []
    for verdict in ("fire", "quiet"):
        items = doc["examples"][verdict]
        for i, item in enumerate(items):
            line = items.item_lines[i]
            if isinstance(item, str):
                item = {"text": item}
            if is_call_rule:
                if "calls" not in item:
                    problems.add(path, line, f"examples.{verdict}[{i}]: a call rule's example needs calls: [...]")
                    continue
                found.append(Example(verdict == "fire", calls=tuple(item["calls"]), line=line))
                continue
            if "turns" in item:
                turns, raised = [], []
                for t in item["turns"]:
                    if not isinstance(t.get("text"), str) or not t["text"]:
                        problems.add(path, line, f"examples.{verdict}[{i}]: every turn needs text")
                        break
                    if not isinstance(t.get("raised_voice", False), bool):
                        problems.add(path, line, f"examples.{verdict}[{i}]: raised_voice must be true or false")
                        break
                    turns.append((t.get("speaker", "collector"), t["text"]))
                    raised.append(t.get("raised_voice", False))
                else:
                    found.append(Example(verdict == "fire", turns=tuple(turns), line=line, raised=tuple(raised),
                                         overtalk_share=item.get("overtalk_share")))
            elif "text" in item:
                found.append(Example(verdict == "fire", turns=((item.get("speaker", "collector"), item["text"]),), line=line,
                                     raised=(item.get("raised_voice", False),), overtalk_share=item.get("overtalk_share")))
            else:
                problems.add(path, line, f"examples.{verdict}[{i}]: needs text or turns")
    return tuple(found)


def _read_rule_documents(directory: Path, problems: _Problems) -> dict[str, tuple[Path, object]]:
    """Every rule file's document by file name; a syntax error is a problem at its line."""
    documents = {}
    for path in rule_files(directory):
        try:
            documents[path.stem] = (path, yamlfile.load(path))
        except yamlfile.YamlSyntaxError as exc:
            problems.add(path, exc.line, str(exc))
    return documents


def _load_rule(path: Path, doc, lexicons: dict, problems: _Problems, similar: _SimilarContext | None = None,
               phrases: dict | None = None, rule_documents: dict | None = None) -> Rule | None:
    if not isinstance(doc, dict):
        problems.add(path, None, "a rule file must be a YAML mapping")
        return None
    if not _schema_problems(doc, RULE_SCHEMA, path, problems):
        return None
    before = len(problems.items)
    if doc["id"] != path.stem:
        problems.add(path, doc.key_lines["id"], f"id '{doc['id']}' must equal the file name '{path.stem}'")
    has_match, has_call = "match" in doc, "call" in doc
    if has_match == has_call:
        problems.add(path, doc.line, "a rule needs exactly one of 'match' (what is said) or 'call' (call metadata)")
        return None
    if has_call and doc["category"] not in ("off_hours", "call_frequency"):
        problems.add(path, doc.key_lines["category"], "only off_hours and call_frequency rules use 'call'")
    if has_match and doc["category"] in ("off_hours", "call_frequency"):
        problems.add(path, doc.key_lines["category"], f"a {doc['category']} rule is decided by call metadata: use 'call'")
    guards_doc = doc.get("guards", {})
    guards = Guards(
        negation=guards_doc.get("negation", True),
        quotation=guards_doc.get("quotation", True),
        allow=tuple(normalise(a) for a in doc.get("allow", ())),
    )
    compiler = _ExprCompiler(doc["id"], path, lexicons, guards, problems, similar, phrases, rule_documents)
    match = unless = after = call = None
    if has_match:
        match = compiler.compile(doc["match"], "match")
        if "unless" in doc:
            unless = compiler.compile({"not": doc["unless"]}, "unless")
            unless = unless.item if unless is not None else None
        if "after" in doc:
            after = compiler.compile(doc["after"]["match"], "after.match")
    else:
        call = _compile_call(doc, path, problems)
        if call is not None and call.kind != doc["category"]:
            problems.add(path, doc.key_lines["call"], f"call.kind '{call.kind}' differs from category '{doc['category']}'")
    if match is not None and not _has_positive(match):
        problems.add(path, doc.key_lines["match"], "match: needs a matcher that is not under 'not' in every alternative")
    examples = _examples(doc, path, has_call, problems)
    if len(problems.items) > before:
        return None
    return Rule(
        id=doc["id"],
        title=doc["title"],
        description=doc["description"].strip(),
        category=doc["category"],
        severity=doc["severity"],
        speakers=tuple(doc.get("speakers", _RULE_SPEAKERS)),
        legal_basis=tuple(doc["legal_basis"]),
        path=path,
        match=match,
        unless=unless,
        after=after,
        after_within=doc["after"]["within_turns"] if "after" in doc else 0,
        call=call,
        examples=examples,
        description_en=doc.get("description_en", "").strip(),
    )


def rule_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml"))


def collect_rules(directory: Path | str | None = None, calibrating: bool = False) -> tuple[RulePack | None, list[RuleProblem]]:
    """Load every rule that is valid and list the problems of the others. Lets a check
    report broken files and failing examples of the good ones in one run.
    ``calibrating`` loads `similar:` leaves without thresholds (no calibration needed)."""
    directory = Path(directory) if directory else DEFAULT_RULES_DIR
    problems = _Problems()
    if not directory.is_dir():
        return None, [RuleProblem(str(directory), None, "rules folder not found")]
    lexicons = _load_lexicons(directory, problems)
    phrases = _load_phrases(directory, lexicons, problems)
    similar = _SimilarContext(directory, problems, calibrating)
    documents = _read_rule_documents(directory, problems)
    rules = []
    for path, doc in documents.values():
        rule = _load_rule(path, doc, lexicons, problems, similar, phrases, documents)
        if rule is not None:
            rules.append(rule)
    if not rules:
        if not problems.items:
            problems.add(directory, None, "no rule files (*.yaml) in this folder")
        return None, problems.items
    digest = hashlib.sha256()
    # The version covers the similar-example files and the calibration file too: a new
    # threshold is a new rule set.
    versioned = [*rule_files(directory), *(directory / "lexicons").glob("*.yaml"),
                 *(directory / PHRASES_DIR).glob("*.yaml"), *(directory / SIMILAR_DIR).glob("*.yaml")]
    if (directory / CALIBRATION_FILE).exists():
        versioned.append(directory / CALIBRATION_FILE)
    for path in sorted(versioned):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    domain_words = [t for lex in lexicons.values() for t in lex.terms]
    pack = RulePack(directory, tuple(rules), digest.hexdigest()[:12], TextAnalyser(domain_words))
    return pack, problems.items


def load_rules(directory: Path | str | None = None, calibrating: bool = False) -> RulePack:
    """Load, validate and compile every rule in ``directory``. Raises RuleError listing
    every problem found (it does not stop at the first)."""
    pack, problems = collect_rules(directory, calibrating)
    if problems or pack is None:
        raise RuleError(problems)
    return pack
