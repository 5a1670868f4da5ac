"""How well rules plus suspected lines cover a labelled set.

Each line is scanned on its own. A violating (line, category) pair is *covered* when a
rule raised that category or the line is suspected of it; a violating line is covered
when any of its categories is. A lawful line is *suspected* when any category is.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.learning.data import TURN_CATEGORIES, LabelledLine
from monitor.learning.model import RiskModel
from monitor.learning.suspects import assess_many, rule_flagged
from monitor.models import Call, Turn


@dataclass(frozen=True)
class Coverage:
    lines: int
    violating_lines: int
    lawful_lines: int
    rules_line_recall: float  # violating lines with a finding of one of their categories
    line_coverage: float  # … or a suspected line of one of them
    pair_coverage: float  # violating (line, category) pairs covered
    suspect_recall: float  # violating pairs suspected (of those the rules missed)
    model_recall: float  # violating pairs the model scores at or above threshold, rules aside
    lawful_suspected_rate: float
    rules_lawful_flagged: int  # lawful lines a rule flagged (rule false positives)

    def table(self) -> str:
        return (
            f"lines {self.lines} (violating {self.violating_lines}, lawful {self.lawful_lines})\n"
            f"rules alone: violating lines flagged {self.rules_line_recall:.3f}; lawful lines flagged "
            f"{self.rules_lawful_flagged}\n"
            f"rules + suspected: violating lines covered {self.line_coverage:.3f}, (line, category) pairs covered "
            f"{self.pair_coverage:.3f}\n"
            f"suspected: recall on what the rules missed {self.suspect_recall:.3f}; lawful lines suspected "
            f"{self.lawful_suspected_rate:.3f}\n"
            f"model alone: violating (line, category) pairs at or above threshold {self.model_recall:.3f}"
        )


def measure(model: RiskModel, engine, lines: list[LabelledLine]) -> Coverage:
    lines = [line for line in lines if line.fully_labelled]
    results = [engine.scan(Call(id=str(i), turns=(Turn(l.speaker, l.text),), is_utterance=True))
               for i, l in enumerate(lines)]
    assessments = assess_many(model, results)
    violating = lawful = rules_hit = covered_lines = pairs = covered_pairs = missed = caught = scored = 0
    lawful_suspected = lawful_flagged = 0
    for line, result, assessment in zip(lines, results, assessments):
        flagged = {c for _, c in rule_flagged(result)}
        suspected = {s.category for s in assessment.suspected}
        wanted = set(line.categories)
        above = {r.category for r in assessment.risks if r.score >= model.thresholds[r.category]}
        if not wanted:
            lawful += 1
            lawful_suspected += bool(suspected)
            lawful_flagged += bool(flagged)
            continue
        violating += 1
        rules_hit += bool(wanted & flagged)
        covered_lines += bool(wanted & (flagged | suspected))
        for category in wanted:
            pairs += 1
            covered_pairs += category in flagged or category in suspected
            scored += category in above
            if category not in flagged:
                missed += 1
                caught += category in suspected
    return Coverage(
        lines=len(lines), violating_lines=violating, lawful_lines=lawful,
        rules_line_recall=rules_hit / max(violating, 1), line_coverage=covered_lines / max(violating, 1),
        pair_coverage=covered_pairs / max(pairs, 1), suspect_recall=caught / max(missed, 1),
        model_recall=scored / max(pairs, 1),
        lawful_suspected_rate=lawful_suspected / max(lawful, 1), rules_lawful_flagged=lawful_flagged,
    )


__all__ = ["Coverage", "measure", "TURN_CATEGORIES"]
