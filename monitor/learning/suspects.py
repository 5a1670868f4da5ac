"""A call's risks and suspected lines.

Every collector or unknown turn gets a probability per turn category; the call's risk
is the highest. A (turn, category) scoring at or above the category's threshold that no
rule flagged is a suspected line (疑似): a second opinion that orders review work,
never a finding until a reviewer confirms it.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.learning.data import SCORED_SPEAKERS, TURN_CATEGORIES
from monitor.learning.model import RiskModel
from monitor.models import CallResult


@dataclass(frozen=True)
class TurnRisk:
    turn: int  # index into the call's turns (0 for an utterance)
    category: str
    score: float


@dataclass(frozen=True)
class Suspect:
    turn: int
    category: str
    score: float
    threshold: float


@dataclass(frozen=True)
class Assessment:
    """What the risk model says about one call, with the model's version."""

    model_version: str
    risks: tuple[TurnRisk, ...]
    suspected: tuple[Suspect, ...]

    @property
    def risk(self) -> float:
        return max((r.score for r in self.risks), default=0.0)


def rule_flagged(result: CallResult) -> set[tuple[int, str]]:
    """(turn, category) pairs a rule raised. An utterance's findings carry turn None."""
    flagged = set()
    for finding in result.findings:
        if finding.category in TURN_CATEGORIES:
            turn = 0 if result.call.is_utterance else finding.turn
            if turn is not None:
                flagged.add((turn, finding.category))
    return flagged


def assess(model: RiskModel, result: CallResult) -> Assessment:
    """Risks of every collector/unknown turn of ``result.call`` and its suspected lines."""
    return assess_many(model, [result])[0]


def assess_many(model: RiskModel, results: list[CallResult]) -> list[Assessment]:
    """``assess`` for many calls, scored in one pass (much faster per turn)."""
    where, texts = [], []
    for n, result in enumerate(results):
        for i, turn in enumerate(result.call.turns):
            if turn.speaker in SCORED_SPEAKERS and turn.text.strip():
                where.append((n, i))
                texts.append(turn.text)
    scores = model.score(texts)
    risks: list[list[TurnRisk]] = [[] for _ in results]
    suspects: list[list[Suspect]] = [[] for _ in results]
    flagged = [rule_flagged(r) for r in results]
    for (n, i), row in zip(where, scores):
        for category, score in zip(model.categories, row):
            score = float(score)
            risks[n].append(TurnRisk(i, category, score))
            threshold = model.thresholds[category]
            if score >= threshold and (i, category) not in flagged[n]:
                suspects[n].append(Suspect(i, category, score, threshold))
    return [Assessment(model.version, tuple(r), tuple(s)) for r, s in zip(risks, suspects)]


def suspected_lines_json(assessment: Assessment, is_utterance: bool) -> list[dict]:
    """The optional ``suspected`` key of a ``monitor scan`` output line: turn (null for
    an utterance, as in findings), category and score."""
    return [
        {"turn": None if is_utterance else s.turn, "category": s.category, "score": round(s.score, 4)}
        for s in assessment.suspected
    ]


def store_assessment(store, model: RiskModel, result: CallResult) -> Assessment:
    """Score a stored call and keep its risks and suspected lines in the store."""
    assessment = assess(model, result)
    store.save_assessment(
        result.call.id, assessment.model_version,
        [(r.turn, r.category, r.score) for r in assessment.risks],
        [(s.turn, s.category, s.score, s.threshold) for s in assessment.suspected],
    )
    return assessment


# Scan output is scored in chunks: one pass over many turns is far cheaper per turn.
_CHUNK = 256


def with_suspected(records, model: RiskModel):
    """``(record, result)`` pairs of ``monitor scan`` as records with ``suspected`` added
    (a line that could not be read keeps only its error), in the same order."""
    chunk: list = []
    for pair in records:
        chunk.append(pair)
        if len(chunk) >= _CHUNK:
            yield from _add_suspected(chunk, model)
            chunk = []
    yield from _add_suspected(chunk, model)


def _add_suspected(chunk: list, model: RiskModel):
    results = [result for _record, result in chunk if result is not None]
    assessments = iter(assess_many(model, results))
    for record, result in chunk:
        if result is not None:
            record["suspected"] = suspected_lines_json(next(assessments), result.call.is_utterance)
        yield record


def reviewer_finding_terms(pack, category: str) -> tuple[str, tuple[str, ...]]:
    """Severity and clauses for a finding a reviewer confirms from a suspected line: the
    highest severity among the rule pack's rules of that category and their clauses
    (each once, at most four), so documents cite the law as for a rule's finding."""
    rank = {"low": 0, "medium": 1, "high": 2, "critical": 3}
    rules = [r for r in pack.rules if r.category == category]
    severity = max((r.severity for r in rules), key=rank.get, default="high")
    clauses: list[str] = []
    for rule in rules:
        for clause in rule.legal_basis:
            if clause not in clauses:
                clauses.append(clause)
    return severity, tuple(clauses[:4])
