"""Precision and recall per category on a labelled set (the dev set, a held-out set).

A labelled set is scan input plus the expected ``categories`` of each line (and, for
calls, optional ``turn_labels``). Every line counts once per category: a line whose
expected and found categories both contain X is a true positive for X.

Each miss is also filed under a kind: the rule of its category that came nearest (the
most of one of its conjunctions matched) and the parts of that conjunction that did not
match (a lexicon, terms, a regex, a similar leaf), so that a tuning round starts from
the kinds of speech the rules lack rather than from single lines.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable
from zoneinfo import ZoneInfo

from monitor.detection.engine import Engine, conjunctions
from monitor.detection.matching import NearMatcher
from monitor.models import CATEGORIES
from monitor.runs.scan import scan_lines


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def support(self) -> int:
        return self.tp + self.fn


@dataclass
class Evaluation:
    scores: dict[str, Score] = field(default_factory=lambda: {c: Score() for c in CATEGORIES})
    mismatches: list[dict] = field(default_factory=list)  # lines whose categories differ from the labels, or unreadable lines
    debtor_findings: int = 0  # must stay 0: a debtor's words are never a finding
    lines: int = 0
    misses: list[dict] = field(default_factory=list)  # one per missed (line, category)

    def misses_by_kind(self) -> dict[str, list[tuple[str, str, list[dict]]]]:
        """Per category, the kinds of its misses (nearest rule, parts absent), largest first."""
        groups: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
        for miss in self.misses:
            groups[(miss["category"], miss["rule"] or "-", miss["absent"])].append(miss)
        result: dict[str, list] = {}
        for (category, rule, absent), items in sorted(groups.items(), key=lambda g: (g[0][0], -len(g[1]), g[0][1:])):
            result.setdefault(category, []).append((rule, absent, items))
        return result

    def kinds_report(self, examples: int = 2) -> str:
        rows = []
        for category, kinds in self.misses_by_kind().items():
            rows.append(f"{category}: {sum(len(items) for _, _, items in kinds)} missed")
            for rule, absent, items in kinds:
                rows.append(f"  {len(items):4d}  {rule}: {absent}")
                for miss in items[:examples]:
                    similar = f"  [similar {miss['similar']['score']}]" if "similar" in miss else ""
                    rows.append(f"          {miss['id']}: {miss['text'][:60]}{similar}")
        return "\n".join(rows) if rows else "no misses"

    def table(self) -> str:
        rows = [f"{'category':18} {'precision':>9} {'recall':>7} {'support':>7} {'tp':>4} {'fp':>4} {'fn':>4}"]
        for category, s in self.scores.items():
            rows.append(
                f"{category:18} {s.precision:9.3f} {s.recall:7.3f} {s.support:7d} {s.tp:4d} {s.fp:4d} {s.fn:4d}"
            )
        rows.append(f"lines: {self.lines}, mismatched lines: {len(self.mismatches)}, findings on debtor turns: {self.debtor_findings}")
        return "\n".join(rows)


def evaluate(engine: Engine, records: Iterable[dict], zone: ZoneInfo) -> Evaluation:
    records = list(records)
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    result = Evaluation()
    for record, output in zip(records, scan_lines(engine, lines, zone)):
        result.lines += 1
        if "error" in output:
            result.mismatches.append({"id": record.get("id"), "error": output["error"]})
            continue
        expected = set(record.get("categories", []))
        found = set(output["categories"])
        for category in CATEGORIES:
            score = result.scores[category]
            if category in expected and category in found:
                score.tp += 1
            elif category in found:
                score.fp += 1
            elif category in expected:
                score.fn += 1
        for category in sorted(expected - found):
            result.misses.append(_nearest_miss(engine, record, category))
        if expected != found:
            result.mismatches.append(
                {"id": record.get("id"), "expected": sorted(expected), "found": sorted(found),
                 "findings": [(f["rule"], f["turn"], f["evidence"]) for f in output["findings"]]}
            )
        turns = record.get("turns")
        for finding in output["findings"]:
            speaker = record.get("speaker") if turns is None else (
                turns[finding["turn"]].get("speaker") if finding["turn"] is not None else None)
            if speaker == "debtor":
                result.debtor_findings += 1
    return result


def _miss_turns(record: dict, category: str) -> list[tuple[str, str]]:
    """The (speaker, text) turns where a missed category was expected."""
    if "turns" not in record:
        return [(record.get("speaker", "unknown"), record.get("text", ""))]
    labels = record.get("turn_labels")
    turns = record["turns"]
    chosen = [t for i, t in enumerate(turns) if labels and i < len(labels) and category in labels[i]]
    if not chosen:
        chosen = [t for t in turns if t.get("speaker") != "debtor"]
    return [(t.get("speaker", "unknown"), t.get("text", "")) for t in chosen]


def _absent_part(leaf, analysed) -> tuple[str, float]:
    """A leaf that did not match, as its rule file writes it, and how near it came (0;
    for a `near`, 0.5 when one side was there and 0.75 when both were, too far apart)."""
    label = leaf.source or leaf.signal
    matcher = leaf.matcher
    if isinstance(matcher, NearMatcher) and label.startswith("near(") and label.count(" ~ ") == 1:
        first, second = label[5:-1].split(" ~ ")
        has_first = bool(matcher.first.find(analysed, leaf.guards))
        has_second = bool(matcher.second.find(analysed, leaf.guards))
        if has_first and not has_second:
            return f"near: {second} (beside {first})", 0.5
        if has_second and not has_first:
            return f"near: {first} (beside {second})", 0.5
        if has_first and has_second:
            return f"near: {first} ~ {second} too far apart", 0.75
    return label, 0.0


def _nearest_miss(engine: Engine, record: dict, category: str) -> dict:
    """The lexical rule of ``category`` that came nearest on the line and what it
    lacked; the best score of a similar rule of that category rides along."""
    best = None  # ((matched, -missing), rule, missing labels, blocked, text)
    first_text = ""
    similarity = None
    for speaker, text in _miss_turns(record, category):
        first_text = first_text or text
        analysed = engine.pack.analyser.analyse(text)
        raised = set(engine.signals(analysed, speaker, complete=True))
        for rule in engine.pack.turn_rules:
            if rule.category != category:
                continue
            if rule.similar_leaf is not None:
                if speaker != "debtor":
                    hit = engine.similarity(rule, analysed, raised, speaker)
                    if hit is not None and (similarity is None or hit.score > similarity[1]):
                        similarity = (rule.id, hit.score)
                continue
            for leaves, absent in conjunctions(rule):
                matched = sum(1 for leaf in leaves if leaf.signal in raised)
                missing = [_absent_part(leaf, analysed) for leaf in leaves if leaf.signal not in raised]
                score = (matched + sum(part for _, part in missing), -len(missing))
                if score[0] > 0 and (best is None or score > best[0]):
                    best = (score, rule, [label for label, _ in missing], bool(absent & raised), text)
    miss = {"id": record.get("id"), "category": category, "text": first_text}
    if similarity is not None:
        miss["similar"] = {"rule": similarity[0], "score": similarity[1]}
    if best is None:
        return {**miss, "rule": None, "absent": "no part of any rule matched"}
    _, rule, missing, blocked, text = best
    if missing:
        absent = " + ".join(sorted(set(missing)))
    elif blocked:
        absent = "matched, cancelled by unless/not"
    else:
        absent = "matched, but needs an earlier turn (after) or another speaker"
    return {**miss, "rule": rule.id, "absent": absent, "text": text}


def read_jsonl(paths: Iterable[Path]) -> list[dict]:
    records = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            records.extend(json.loads(line) for line in handle if line.strip())
    return records
