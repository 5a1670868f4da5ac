"""``monitor learn``: retrain the risk model from the shipped data plus reviewers'
decisions, and install it only if it is not worse than the model in use.

A decision is a labelled turn for one category: a confirmed finding or suspected line is
a violation, a dismissed one is not. The decisions are split by call (about 30% of the
calls held out); the new model is trained on the shipped lines plus the rest, and both
models are scored on the held-out decisions by balanced accuracy (the mean of the share
of confirmed lines scored above their threshold and of dismissed lines below it). The
new model goes to the instance folder (never over the shipped file) when its score is at
least the old one's. Either way the audit log records both scores.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from monitor.audit import Action
from monitor.errors import MonitorError
from monitor.learning.data import SCORED_SPEAKERS, LabelledLine, shipped_lines
from monitor.learning.model import SHIPPED_MODEL, RiskModel, current_model, installed_path, model_path, save_model

HELD_OUT_SHARE = 0.3
MIN_HELD_OUT = 2


@dataclass(frozen=True)
class LearnOutcome:
    installed: bool
    reason: str
    decisions: int
    held_out: int
    old_score: float | None
    new_score: float | None
    old_version: str
    new_version: str | None
    path: Path | None
    seconds: float = 0.0

    def summary(self) -> str:
        scores = (f"held-out decisions {self.held_out}: old model {self.old_score:.3f}, new model {self.new_score:.3f}"
                  if self.new_score is not None else f"held-out decisions {self.held_out}")
        verdict = f"installed {self.path} (model {self.new_version})" if self.installed else f"kept model {self.old_version}"
        return f"{self.decisions} decision(s); {scores}; {verdict}: {self.reason}"


def decision_lines(store) -> list[LabelledLine]:
    """Reviewers' decisions as lines labelled for their category, grouped by call."""
    return [
        LabelledLine(row["text"], row["speaker"], {row["category"]: bool(row["label"])}, "decision", row["call_id"])
        for row in store.learning_decisions()
        if row["speaker"] in SCORED_SPEAKERS and row["category"] and row["text"]
    ]


def held_out(line: LabelledLine) -> bool:
    digest = hashlib.sha256(f"held-out:{line.group}".encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < HELD_OUT_SHARE


def decision_score(model: RiskModel, lines: list[LabelledLine]) -> float:
    """Balanced accuracy of "score ≥ threshold" on decisions (1.0 for no decisions)."""
    if not lines:
        return 1.0
    scores = model.score([line.text for line in lines])
    hits = {True: [], False: []}
    for line, row in zip(lines, scores):
        (category, label), = line.known.items()
        k = model.categories.index(category)
        hits[label].append((row[k] >= model.thresholds[category]) == label)
    parts = [sum(v) / len(v) for v in hits.values() if v]
    return sum(parts) / len(parts)


def learn(store, engine, target: Path | str | None = None, actor: str = "cli",
          exclude: tuple[str, ...] = ()) -> LearnOutcome:
    """Retrain from shipped data plus decisions; install if not worse (see the module
    docstring). ``exclude`` leaves shipped sets out (to measure on them). Raises
    MonitorError for a target that is the shipped model, ModelError when the model in
    use cannot be loaded."""
    from monitor.learning.training import train  # scikit-learn only when learning

    target = Path(target) if target is not None else installed_path()
    if target.resolve() == SHIPPED_MODEL.resolve():
        raise MonitorError(f"{target}: that is the shipped model; a learnt model goes in the instance folder")
    old_path = model_path()
    old = current_model(old_path)
    decisions = decision_lines(store)
    test = [line for line in decisions if held_out(line)]
    training = [line for line in decisions if not held_out(line)]
    if len(test) < MIN_HELD_OUT or not training:
        outcome = LearnOutcome(False, f"too few decisions to learn from and check on (need calls on both sides, "
                               f"{MIN_HELD_OUT}+ decisions held out)", len(decisions), len(test), None, None,
                               old.version, None, None)
        store.audit(actor, Action.MODEL_KEPT, old.version, {"reason": outcome.reason, "decisions": len(decisions)})
        return outcome
    new, report = train(shipped_lines(engine.pack, exclude=exclude), engine, decisions=training)
    old_score, new_score = decision_score(old, test), decision_score(new, test)
    detail = {"old_model": old.version, "old_path": str(old_path), "old_score": round(old_score, 4),
              "new_score": round(new_score, 4), "decisions": len(decisions), "held_out": len(test),
              "oof_lawful_rate": round(report.oof_lawful_rate, 4)}
    if new_score < old_score:
        reason = "the new model scores lower on the held-out decisions"
        store.audit(actor, Action.MODEL_KEPT, old.version, detail | {"reason": reason})
        return LearnOutcome(False, reason, len(decisions), len(test), old_score, new_score, old.version, None, None,
                            report.seconds)
    save_model(new, target, {"held_out_score": round(new_score, 4), "replaces": old.version})
    store.audit(actor, Action.MODEL_INSTALLED, new.version, detail | {"new_model": new.version, "path": str(target)})
    return LearnOutcome(True, "not worse on the held-out decisions", len(decisions), len(test), old_score, new_score,
                        old.version, new.version, target, report.seconds)
