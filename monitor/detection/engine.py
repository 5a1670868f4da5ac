"""The rule engine: the only module that imports durable_rules.

Each YAML rule is compiled to a durable_rules ruleset of its own, and each call is one
session (``sid``) of them. A call's turns are asserted as facts that carry the signals
their text produced, each into the rulesets of the rules whose patterns it meets;
call-level facts carry the local start time and the number of earlier calls to the same
debtor. Every finding is an action fired by a durable_rules rule compiled here from the
rule pack's expression trees. The session is
deleted afterwards, so nothing survives from one call to the next, and each thread keeps
its own compiled rulesets, so scanning from several threads at once is safe.
"""

from __future__ import annotations

import functools
import itertools
import operator
import re
import threading
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from durable.engine import MessageNotHandledException, Ruleset

from monitor.models import Call, CallResult, Finding, Turn
from monitor.detection.embedding import Embedder, shared_embedder
from monitor.detection.matching import PART_SCREEN
from monitor.detection.rules import AllOf, AnyOf, Leaf, NotOf, Rule, RulePack, SignalCondition, is_similar
from monitor.detection.screen import GramOdds, ScreenIndex, pattern_screen, screen_for, wide_regexes
from monitor.detection.text import Analysed

# Every turn fact carries this item in its signal list: durable_rules evaluates
# "all items differ from X" as false on an empty list, so `not` needs a non-empty list.
_ALWAYS = "*"
# One durable_rules session per thread, reused call after call (see Engine.scan).
_SID = "call"
SEVERITY_ORDER = {"low": 0, "medium": 1, "high": 2, "critical": 3}


# durable_rules' C engine mishandles `$or` inside patterns that join two facts (a join
# condition after an `$or` is ignored; some orders crash). Rules are therefore compiled
# to disjunctive normal form: each YAML rule becomes one durable_rules rule per
# conjunction, built only from `$and`, `$iany`, `$iall`, equality and comparisons.
# (`$or` in a one-fact pattern would not fire less often: the engine runs each branch
# as a rule of its own.)
_MAX_CONJUNCTIONS = 256


def _dnf(tree) -> list[tuple[frozenset, frozenset]]:
    """An expression tree as a list of (signals present, signals absent) conjunctions."""
    if isinstance(tree, Leaf):
        return [(frozenset([tree.signal]), frozenset())]
    if isinstance(tree, AnyOf):
        return [c for item in tree.items for c in _dnf(item)]
    if isinstance(tree, AllOf):
        result = [(frozenset(), frozenset())]
        for item in tree.items:
            result = [(p1 | p2, n1 | n2) for p1, n1 in result for p2, n2 in _dnf(item)]
            if len(result) > _MAX_CONJUNCTIONS:
                raise ValueError("expression too large")
        return result
    if isinstance(tree, NotOf):
        # not (a or b or ...) = (not a) and (not b) ...; `not` over an `all` is refused
        # at load time.
        return [(frozenset(), frozenset(leaf.signal for leaf in _leaves(tree.item)))]
    raise TypeError(tree)


def _rule_conjunctions(rule: Rule, tree) -> list[tuple[frozenset, frozenset]]:
    """Every way ``tree`` (the rule's ``match`` or ``after``) can hold on a turn, as
    (signals present, signals absent); what ``unless`` names must be absent from a turn
    that matches."""
    conjunctions = _dnf(tree)
    if tree is rule.match and rule.unless is not None:
        unless = _dnf(NotOf(rule.unless))[0][1]
        conjunctions = [(present, absent | unless) for present, absent in conjunctions]
    return conjunctions


def conjunctions(rule: Rule) -> list[tuple[tuple[Leaf, ...], frozenset]]:
    """Every way ``rule``'s ``match`` can hold on a turn: the leaves that must be present
    and the signals that must be absent (for reports on what a turn lacked)."""
    by_signal = {leaf.signal: leaf for leaf in rule.leaves}
    return [(tuple(by_signal[s] for s in sorted(present)), absent) for present, absent in _rule_conjunctions(rule, rule.match)]


def _leaves(tree) -> list[Leaf]:
    if isinstance(tree, Leaf):
        return [tree]
    if isinstance(tree, NotOf):
        return _leaves(tree.item)
    return [leaf for item in tree.items for leaf in _leaves(item)]


def _conjunction(present: frozenset, absent: frozenset) -> list[dict]:
    return [{"$iany": {"sig": {"$i": s}}} for s in sorted(present)] + [
        {"$iall": {"sig": {"$neq": {"$i": s}}}} for s in sorted(absent)
    ]


def _speakers_matched(rule: Rule) -> tuple[str, ...]:
    """The speakers whose turns meet ``_speaker_condition(rule)``: the rule's own, when
    they are collector and unknown, or the first it names."""
    if set(rule.speakers) == {"collector", "unknown"}:
        return ("collector", "unknown")
    return (rule.speakers[0],)


def _speaker_condition(rule: Rule) -> dict:
    speakers = _speakers_matched(rule)
    if len(speakers) == 2:
        return {"$neq": {"speaker": "debtor"}}
    return {"speaker": speakers[0]}


def _turn_conjunctions(rule: Rule, tree) -> list[list[dict]]:
    """Every way ``tree`` can hold on one of ``rule``'s turns, each a list of conditions."""
    return [[{"kind": "turn"}, _speaker_condition(rule), *_conjunction(p, n)] for p, n in _rule_conjunctions(rule, tree)]


def _definitions(rule: Rule, sink: "_Sink") -> dict:
    """The durable_rules ruleset definition (JSON form) of one YAML rule. Keys are
    ``rule-id#n``: one durable_rules rule per conjunction.

    Each YAML rule is a ruleset of its own: asserting a fact costs durable_rules time in
    proportion to the rules of its ruleset, and the engine knows from a turn's signals
    which few rules it can meet (see ``Engine.scan``)."""
    definition: dict = {}

    def add(patterns: list, action) -> None:
        definition[f"{rule.id}#{len(definition)}"] = {"all": patterns, "run": action}

    if rule.is_call_rule:
        for conditions in _call_conjunctions(rule):
            add([{"m": {"$and": conditions}}], sink.call_action(rule.id))
        return definition
    for later in _turn_conjunctions(rule, rule.match):
        if rule.after is None:
            add([{"m": {"$and": later}}], sink.turn_action(rule.id, "m"))
            continue
        # Both bounds are always given: with only `$gt` durable_rules can crash when
        # the later fact arrives first.
        window = [
            {"$gt": {"t": {"earlier": "t"}}},
            {"$lte": {"t": {"$add": {"$l": {"earlier": "t"}, "$r": rule.after_within}}}},
        ]
        for earlier in _turn_conjunctions(rule, rule.after):
            add([{"earlier": {"$and": earlier}}, {"later": {"$and": later + window}}],
                sink.turn_action(rule.id, "later"))
    return definition


def _call_conjunctions(rule: Rule) -> list[list[dict]]:
    spec = rule.call
    result = []
    for direction in spec.directions:
        base = [{"kind": "clock" if spec.kind == "off_hours" else "tally"}, {"rule": rule.id}, {"direction": direction}]
        if spec.kind == "call_frequency":
            result.append(base + [{"$gt": {"nth": spec.limit}}])
        elif spec.window_start > spec.window_end:  # the window wraps midnight (22:00–08:00)
            result.append(base + [{"$gte": {"minute": spec.window_start}}])
            result.append(base + [{"$lt": {"minute": spec.window_end}}])
        else:
            result.append(base + [{"$gte": {"minute": spec.window_start}}, {"$lt": {"minute": spec.window_end}}])
    return result


class _Sink:
    """Collects what the actions report for the call being scanned on this thread."""

    def __init__(self):
        # (rule id, turn index or None for call-level findings, call-level detail)
        self.hits: list[tuple[str, int | None, int | None]] = []

    def turn_action(self, rule_id: str, alias: str):
        def action(c):
            self.hits.append((rule_id, int(getattr(c, alias)["t"]), None))

        return action

    def call_action(self, rule_id: str):
        def action(c):
            self.hits.append((rule_id, None, c.m["nth"] if "nth" in c.m else None))

        return action


# The memo key (with a leaf's signal) of the spans a leaf found in a turn.
_SPANS = "leaf spans"


# --- similar leaves ------------------------------------------------------------------------

# What is embedded: a short turn whole; in a longer one the clause around the anchor,
# joined with its neighbours while it is very short and cut to a window centred on the
# anchor while it is long (ASR text often has no punctuation). The model's cost grows with the length, and a long rambling turn
# would dilute the similarity of the part that matters.
_WINDOW = 32
_SHORT_CLAUSE = 10
_CLAUSE_BREAK = re.compile(r'[,.!?;:"]')


# Before the model runs, the embedded words must share this many two-character
# sequences with one of the examples. Measured on the labelled sets: every turn that
# reached a calibrated threshold shared at least 3, and about 60% of anchored turns share
# fewer, so the model runs on less than half as many turns for the same findings.
_MIN_SHARED_BIGRAMS = 3
# The score of a turn nearer to a lawful counter-example than to any example: "not like
# them", whatever the threshold (calibration never picks a threshold that admits it).
UNLIKE_SCORE = 0.0


def _bigrams(text: str) -> frozenset:
    return frozenset(text[i : i + 2] for i in range(len(text) - 1))


@dataclass(frozen=True)
class SimilarHit:
    """How close a turn came to a similar leaf's examples."""

    score: float
    nearest_example: str
    text: str  # the normalised words that were embedded


@dataclass(frozen=True)
class _SimilarPlan:
    leaf: Leaf
    rule: Rule
    # Each way the rest of the rule holds beside the similar leaf: the lexical leaves
    # that must be present (its anchors) and the signals that must be absent.
    ways: tuple[tuple[tuple[Leaf, ...], frozenset], ...]
    # Each way another rule of the same category flags the turn by its words alone
    # (speakers, signals present, signals absent): the leaf could add nothing there.
    covered: tuple[tuple[tuple[str, ...], frozenset, frozenset], ...]
    example_bigrams: tuple[frozenset, ...] = ()


def _similar_plans(pack: RulePack) -> list[_SimilarPlan]:
    plans = []
    for rule in pack.turn_rules:
        leaf = rule.similar_leaf
        if leaf is None:
            continue
        by_signal = {other.signal: other for other in rule.leaves}
        ways = [(tuple(by_signal[s] for s in sorted(present - {leaf.signal})), absent)
                for present, absent in _rule_conjunctions(rule, rule.match) if leaf.signal in present]
        covered = []
        for other in pack.turn_rules:
            if other is rule or other.category != rule.category or other.after is not None or other.similar_leaf:
                continue
            covered.extend((other.speakers, present, absent) for present, absent in _rule_conjunctions(other, other.match))
        plans.append(_SimilarPlan(leaf, rule, tuple(ways), tuple(covered),
                                  tuple(_bigrams(e) for e in leaf.matcher.examples)))
    return plans


def _lexical_needs(pack: RulePack, similarity: bool, lexical: list[Leaf]) -> list[tuple[Leaf | None, list]]:
    """Every conjunction of the turn rules (``match``, ``after``) as the text leaves it
    needs present and those it needs absent. A `similar:` leaf or a signal condition
    (raised voice, overtalk) is decided later, so it does not stop the search for the
    leaves beside it; with similarity off a conjunction that needs one never holds.
    Returned grouped by the first text leaf each conjunction needs (None: it needs
    none): (that leaf, [(the other leaves it needs, the leaves it needs absent)])."""
    by_signal = {leaf.signal: leaf for leaf in lexical}
    order = {leaf.signal: n for n, leaf in enumerate(lexical)}
    similar = {leaf.signal for rule in pack.turn_rules for leaf in rule.leaves if is_similar(leaf)}
    needs = []
    for rule in pack.turn_rules:
        for tree in (rule.match, rule.after):
            if tree is None:
                continue
            for present, absent in _rule_conjunctions(rule, tree):
                if not similarity and present & similar:
                    continue
                # In the order the rule file gives them: an anchor usually comes first.
                needed = sorted((by_signal[s] for s in present if s in by_signal), key=lambda leaf: order[leaf.signal])
                needs.append((tuple(needed), tuple(by_signal[s] for s in sorted(absent) if s in by_signal)))
    # Grouped by the first leaf each needs: one search of it rules out the whole group.
    groups: dict = {}
    for needed, absent in needs:
        first = needed[0] if needed else None
        groups.setdefault(first.signal if first else None, (first, []))[1].append((needed[1:], absent))
    return list(groups.values())


# Screens by rule-set version and leaves: building them parses every regex, and engines
# of one rule set are made again and again (checks, calibration, tests).
_SCREENS: dict[tuple, ScreenIndex] = {}


def _screen_index(pack: RulePack, leaves: list[Leaf], triggers: tuple[str, ...] = ()) -> ScreenIndex:
    key = (pack.version, tuple(leaf.signal for leaf in leaves), triggers)
    index = _SCREENS.get(key)
    if index is None:
        # the rarest character pairs are judged from the rules' own example turns
        odds = GramOdds(pack.analyser.analyse(text).norm for rule in pack.turn_rules
                        for example in rule.examples for _, text in example.turns)
        regexes = [regex for leaf in leaves for regex in wide_regexes(leaf.matcher)]
        parts = {part.pattern: pattern_screen(part, odds) for regex in regexes for part in regex.screen}
        index = _SCREENS[key] = ScreenIndex({leaf.signal: screen_for(leaf.matcher, odds) for leaf in leaves}, parts,
                                            regexes, triggers)
    return index


def _window(norm: str, span: tuple[int, int]) -> str:
    if len(norm) <= _WINDOW:
        return norm.strip(' ,.!?;:"')  # a short turn whole: one embedding for every rule
    breaks = [m.start() for m in _CLAUSE_BREAK.finditer(norm)]
    start = max([b + 1 for b in breaks if b < span[0]], default=0)
    end = min([b for b in breaks if b >= span[1]], default=len(norm))
    while end - start < _SHORT_CLAUSE and (start > 0 or end < len(norm)):
        if end < len(norm):
            end = min([b for b in breaks if b > end], default=len(norm))
        else:
            start = max([b + 1 for b in breaks if b + 1 < start], default=0)
    if end - start > _WINDOW:
        centre = (span[0] + span[1]) // 2
        start = max(start, min(centre - _WINDOW // 2, end - _WINDOW))
        end = start + _WINDOW
    return norm[start:end].strip(' ,.!?;:"')


def _raise(error, _state):
    if error:
        raise error


class Engine:
    """Scans calls with a rule pack. Cheap to share between threads."""

    _names = itertools.count()

    def __init__(self, pack: RulePack, embedder: Embedder | None = None, similarity: bool = True,
                 fallback_only: bool = True):
        """``similarity=False`` leaves every `similar:` leaf unscored (never raised): the
        rules as they are without the embedding model, for comparisons.
        ``fallback_only=False`` scores a similar leaf even where another rule of its
        category already flags the turn by its words: what the rule itself recognises,
        for checking its own examples (in use it only adds what the words miss)."""
        self.pack = pack
        self.fallback_only = fallback_only
        self._local = threading.local()
        self._by_id = {r.id: r for r in pack.rules}
        self._rule_order = {r.id: n for n, r in enumerate(pack.rules)}
        self._rule_signals = {r.id: frozenset([_ALWAYS, *(leaf.signal for leaf in r.leaves)]) for r in pack.turn_rules}
        leaves = [leaf for rule in pack.turn_rules for leaf in rule.leaves if not is_similar(leaf)]
        self._leaves = [leaf for leaf in leaves if not isinstance(leaf.matcher, SignalCondition)]
        self._leaf_order = {leaf.signal: n for n, leaf in enumerate(self._leaves)}
        # Conditions on how a turn was said (raised voice) or on the call (overtalk).
        self._conditions = [leaf for leaf in leaves if isinstance(leaf.matcher, SignalCondition)]
        self._similar = _similar_plans(pack) if similarity else []
        # Which leaves a turn's characters already rule out (see screen.py): each group
        # of conjunctions, and each conjunction, with the screen bits its leaves need.
        groups = _lexical_needs(pack, similarity, self._leaves)
        # A group opened by a leaf with a screen is visited only when the turn meets that
        # leaf's first gram set (its trigger); the others on every turn.
        self._screens = _screen_index(pack, self._leaves, tuple(first.signal for first, _ in groups if first is not None))
        # Every way a turn fact can meet a rule's pattern (either side of an `after`),
        # by a signal it needs: a turn that meets none is not asserted (see scan).
        self._patterns: dict[str, list[tuple[str, tuple[str, ...], frozenset, frozenset]]] = {}
        for rule in pack.turn_rules:
            for tree in (rule.match, rule.after):
                for present, absent in (_rule_conjunctions(rule, tree) if tree is not None else ()):
                    for signal in present:
                        self._patterns.setdefault(signal, []).append((rule.id, _speakers_matched(rule), present, absent))
        masks = self._screens.masks
        self._needs = [
            (first, masks[first.signal] if first else 0,
             [(needed, functools.reduce(operator.or_, (masks[leaf.signal] for leaf in needed), 0), absent)
              for needed, absent in rest])
            for first, rest in groups
        ]
        trigger_bits = self._screens.trigger_bits
        self._untriggered = [group for group in self._needs if group[0] is None or group[0].signal not in trigger_bits]
        self._triggered = {trigger_bits[group[0].signal]: group for group in self._needs
                           if group[0] is not None and group[0].signal in trigger_bits}
        self._embedder = embedder
        self._example_vectors: dict[str, np.ndarray] = {}
        self._vectors_lock = threading.Lock()
        # Turns whose signals were computed, and those that reached the embedding model
        # (counted without a lock: figures for benchmarks, not accounts).
        self.stats = {"turns": 0, "embedded": 0}
        self._compiled()  # compile once now so definition errors surface at start-up

    def _compiled(self) -> tuple[dict[str, Ruleset], _Sink]:
        """This thread's rulesets, one per rule (by rule id), and the sink of their actions."""
        state = getattr(self._local, "state", None)
        if state is None:
            sink = _Sink()
            rulesets = {rule.id: Ruleset(f"monitor_{next(self._names)}", None, _definitions(rule, sink))
                        for rule in self.pack.rules}
            state = self._local.state = (rulesets, sink)
        return state

    # -- signals -------------------------------------------------------------------------

    def signals(self, text: str | Analysed, speaker: str = "unknown", complete: bool = False) -> list[str]:
        """The leaf signals a turn's text raises (after negation/quotation guards).
        `similar:` leaves are scored last, only for speakers in their rule's scope and
        only where the lexical leaves beside them already matched.

        Leaves are looked for only while a rule could still hold: once one leaf a
        conjunction needs is missing, the conjunction's other leaves are not searched
        (unless another conjunction needs them). Every rule decision is the same as
        with every leaf searched; ``complete=True`` searches them all, for reports of
        what a turn lacked."""
        analysed = self.pack.analyser.analyse(text) if isinstance(text, str) else text
        self.stats["turns"] += 1
        # The screen bits the turn meets: a leaf (or a regex part, see matching.py)
        # whose mask has a bit outside them cannot match. (Tested as ``mask & met !=
        # mask``: the complement of a wide integer is negative, and slow to AND.)
        met, triggers = self._screens.met_and_triggers(analysed)
        analysed.memo[PART_SCREEN] = (self._screens.plans, met)
        if complete:
            masks = self._screens.masks
            found = {leaf.signal for leaf in self._leaves
                     if masks[leaf.signal] & met == masks[leaf.signal] and leaf.matcher.find(analysed, leaf.guards)}
        else:
            found = self._needed_signals(analysed, met, triggers)
        raised = [_ALWAYS, *sorted(found, key=self._leaf_order.__getitem__)]
        if self._similar and speaker != "debtor" and len(raised) > 1:
            present = set(raised)
            for plan in self._similar:
                threshold = plan.leaf.matcher.threshold
                if threshold is None or speaker not in plan.rule.speakers:
                    continue
                hit = self.similarity(plan, analysed, present, speaker)
                if hit is not None and hit.score >= threshold:
                    raised.append(plan.leaf.signal)
        return raised

    def _groups_met(self, triggers: int):
        """The groups of conjunctions a turn may meet: those without a trigger, and those
        whose trigger bit is among ``triggers`` (see ``ScreenIndex.met_and_triggers``)."""
        yield from self._untriggered
        while triggers:
            low = triggers & -triggers
            yield self._triggered[low]
            triggers ^= low

    def _needed_signals(self, analysed: Analysed, met: int, triggers: int) -> set[str]:
        seen: dict[str, bool] = {}
        masks = self._screens.masks

        memo = analysed.memo

        def present(leaf: Leaf) -> bool:
            hit = seen.get(leaf.signal)
            if hit is None:
                mask = masks[leaf.signal]
                spans = leaf.matcher.find(analysed, leaf.guards) if mask & met == mask else []
                memo[(_SPANS, leaf.signal)] = spans  # kept for evidence_span
                hit = seen[leaf.signal] = bool(spans)
            return hit

        for first, first_mask, rest in self._groups_met(triggers):
            if first_mask & met != first_mask or (first is not None and not present(first)):
                continue  # every conjunction that starts with this leaf is out
            for needed, mask, absent in rest:
                if mask & met != mask:
                    continue  # a leaf it needs cannot match
                if all(present(leaf) for leaf in needed):  # stops at the first leaf missing
                    for leaf in absent:
                        present(leaf)
        return {signal for signal, hit in seen.items() if hit}

    @property
    def similar_rules(self) -> list[Rule]:
        return [plan.rule for plan in self._similar]

    def similarity(self, plan_or_rule, analysed: Analysed, present: set[str] | None = None,
                   speaker: str = "unknown") -> SimilarHit | None:
        """The score of a turn against a similar leaf's examples, or None when the leaf
        is not scored there: its anchor did not match, the guards cancel the clause
        around it, or another rule of its category already flags the turn by its words.
        Only then is the turn's embedding computed (and cached by its normalised text)."""
        plan = plan_or_rule
        if isinstance(plan_or_rule, Rule):
            plan = next((p for p in self._similar if p.rule.id == plan_or_rule.id), None)
            if plan is None:
                return None  # not a similar rule, or similarity is off
        key = ("similar", plan.leaf.signal)
        if key in analysed.memo:
            return analysed.memo[key]
        if present is None:
            present = set(self.signals(analysed, speaker))
        hit = None
        if self.fallback_only and any(speaker in speakers and needed <= present and not (absent & present)
                                      for speakers, needed, absent in plan.covered):
            analysed.memo[key] = None
            return None
        for anchors, absent in plan.ways:
            if absent & present or any(a.signal not in present for a in anchors):
                continue
            spans = [span for a in anchors for span in a.matcher.find(analysed, a.guards)]
            kept = [span for span in spans if plan.leaf.guards.keep_clause(analysed, span)]
            if not kept:
                continue
            window = _window(analysed.norm, kept[0])
            words = _bigrams(window)
            if max(len(words & example) for example in plan.example_bigrams) < _MIN_SHARED_BIGRAMS:
                break  # shares too little with every example to come near one
            self.stats["embedded"] += 1
            vector = self.embedder.embed([window])[0]
            matcher = plan.leaf.matcher
            scores = self._examples(plan) @ vector
            n = len(matcher.examples)
            best = int(np.argmax(scores[:n]))
            nearest_unlike = int(np.argmax(scores[n:])) if matcher.unlike else None
            if nearest_unlike is not None and scores[n + nearest_unlike] >= scores[best]:
                # Nearer to a lawful counter-example than to any example: not like them.
                hit = SimilarHit(UNLIKE_SCORE, matcher.unlike[nearest_unlike], window)
            else:
                hit = SimilarHit(round(float(scores[best]), 4), matcher.examples[best], window)
            break
        analysed.memo[key] = hit
        return hit

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = shared_embedder()
        return self._embedder

    def example_vectors(self, rule: Rule) -> np.ndarray:
        """The vectors of a similar rule's example (then counter-example) sentences."""
        return self._examples(next(p for p in self._similar if p.rule.id == rule.id))

    def _examples(self, plan: _SimilarPlan) -> np.ndarray:
        """The example sentences' vectors, computed once per engine."""
        vectors = self._example_vectors.get(plan.leaf.signal)
        if vectors is None:
            with self._vectors_lock:
                vectors = self._example_vectors.get(plan.leaf.signal)
                if vectors is None:
                    vectors = self.embedder.embed([*plan.leaf.matcher.examples, *plan.leaf.matcher.unlike])
                    self._example_vectors[plan.leaf.signal] = vectors
        return vectors

    def evidence_span(self, rule: Rule, text: str | Analysed) -> str | None:
        """The normalised words that made ``rule`` fire on ``text`` (for highlighting)."""
        analysed = self.pack.analyser.analyse(text) if isinstance(text, str) else text
        for leaf in rule.positive_leaves:
            if is_similar(leaf):
                continue
            spans = analysed.memo.get((_SPANS, leaf.signal))
            if spans is None:
                spans = leaf.matcher.find(analysed, leaf.guards)
            if spans:
                start, end = spans[0]
                return analysed.norm[start:end]
        return None

    # -- scanning ------------------------------------------------------------------------

    def scan(self, call: Call, earlier_calls: list[Call] | tuple[Call, ...] = ()) -> CallResult:
        """Findings for one call. ``earlier_calls`` are the calls to the same debtor that
        came before this one (from the same input or the store); the caller decides the
        order of calls that started at the same moment."""
        rulesets, sink = self._compiled()
        facts = []  # (the rule whose ruleset takes it, the fact)
        analysed = [self.pack.analyser.analyse(turn.text) for turn in call.turns]
        for i, turn in enumerate(call.turns):
            signals = self.signals(analysed[i], turn.speaker)
            signals += [leaf.signal for leaf in self._conditions if leaf.matcher.holds(turn, call)]
            # A turn goes only to the rules whose pattern it meets: most turns meet none
            # and are not asserted at all (asserting a fact is the costly part). Each
            # rule's copy carries only the signals that rule names: durable_rules
            # reads the whole fact as JSON, and nothing else in it can change its answer.
            for rule_id in self._rules_met(turn.speaker, signals):
                own = self._rule_signals[rule_id]
                facts.append((rule_id, {"sid": _SID, "kind": "turn", "t": i, "speaker": turn.speaker,
                                        "sig": [s for s in signals if s in own]}))
        facts.extend((fact["rule"], fact) for fact in self._call_facts(call, earlier_calls))
        sink.hits = []
        asserted = []
        try:
            for rule_id, fact in facts:
                ruleset = rulesets[rule_id]
                try:
                    handle = ruleset.assert_fact(fact)
                except MessageNotHandledException:
                    continue  # no rule looks at this fact
                asserted.append((ruleset, fact))
                ruleset.do_actions(handle, _raise)
        except BaseException:
            # A half-finished session could leak facts into the next call: start afresh.
            self._local.state = None
            raise
        # durable_rules' delete_state crashes on some join states; retracting every fact
        # empties the session just as well, and the session id is reused for the next call.
        for ruleset, fact in asserted:
            try:
                ruleset.retract_fact(fact)
            except MessageNotHandledException:
                pass
        return CallResult(call, self._findings(call, sink.hits, analysed))

    def _rules_met(self, speaker: str, signals: list[str]) -> list[str]:
        """The rules (in pack order) with a pattern, on either side of an `after`, that a
        turn of ``speaker`` raising ``signals`` meets."""
        raised = set(signals)
        met = {rule_id for signal in signals for rule_id, speakers, present, absent in self._patterns.get(signal, ())
               if speaker in speakers and present <= raised and not absent & raised}
        return sorted(met, key=self._rule_order.__getitem__) if len(met) > 1 else list(met)

    def _call_facts(self, call: Call, earlier_calls) -> list[dict]:
        if call.started_at is None:
            return []
        facts = []
        for rule in self.pack.call_rules:
            spec = rule.call
            local = call.started_at.astimezone(spec.timezone)
            if spec.kind == "off_hours":
                facts.append({"sid": _SID, "kind": "clock", "rule": rule.id, "direction": call.direction,
                              "minute": local.hour * 60 + local.minute})
            elif call.debtor_id is not None:
                first_day = local.date() - timedelta(days=spec.days - 1)
                before = sum(
                    1
                    for other in earlier_calls
                    if other.started_at is not None
                    and other.debtor_id == call.debtor_id
                    and other.direction in spec.directions
                    and first_day <= other.started_at.astimezone(spec.timezone).date() <= local.date()
                )
                facts.append({"sid": _SID, "kind": "tally", "rule": rule.id, "direction": call.direction, "nth": before + 1})
        return facts

    def _findings(self, call: Call, hits, analysed: list[Analysed]) -> tuple[Finding, ...]:
        findings = []
        for rule_id, turn_index, detail in sorted(set(hits), key=lambda h: (-1 if h[1] is None else h[1], h[0])):
            rule = self._by_id[rule_id]
            if turn_index is None:
                findings.append(
                    Finding(rule.id, rule.category, rule.severity, None, None, None,
                            _call_evidence(rule, call, detail), True, rule.legal_basis)
                )
                continue
            turn: Turn = call.turns[turn_index]
            leaf = rule.similar_leaf
            hit = analysed[turn_index].memo.get(("similar", leaf.signal)) if leaf is not None else None
            if hit is not None and (leaf.matcher.threshold is None or hit.score < leaf.matcher.threshold):
                hit = None  # the rule fired through another of its alternatives
            findings.append(
                Finding(
                    rule=rule.id,
                    category=rule.category,
                    severity=rule.severity,
                    turn=None if call.is_utterance else turn_index,
                    start=turn.start,
                    end=turn.end,
                    evidence=turn.text,
                    speaker_verified=_speaker_verified(turn, call),
                    legal_basis=rule.legal_basis,
                    matched=self.evidence_span(rule, analysed[turn_index]),
                    similarity=hit.score if hit else None,
                    nearest_example=hit.nearest_example if hit else None,
                )
            )
        return tuple(findings)


def _speaker_verified(turn: Turn, call: Call) -> bool:
    """A collector known from the recorder's channel, or a diarized role a person
    confirmed; an inferred role is not verified."""
    if turn.speaker != "collector":
        return False
    if turn.speaker_source == "diarized":
        return call.roles is not None and call.roles.confirmed_by is not None
    return True


def _call_evidence(rule: Rule, call: Call, nth: int | None) -> str:
    spec = rule.call
    local = call.started_at.astimezone(spec.timezone)
    if spec.kind == "off_hours":
        return f"通话开始于当地时间 {local:%Y-%m-%d %H:%M}（{spec.timezone.key}）"
    period = "当日" if spec.days == 1 else f"{spec.days} 日内"
    return f"同一债务人{period}第 {nth} 通催收电话（{local:%Y-%m-%d}，上限 {spec.limit} 通）"
