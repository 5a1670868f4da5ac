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
