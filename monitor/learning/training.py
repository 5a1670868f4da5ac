"""Fit the risk model and choose each category's threshold on held-out scores.

Per category, a linear SVM over TF-IDF character (1–4), word (1–2) and pinyin-key (2–3)
n-grams, calibrated to probabilities by scikit-learn's ``CalibratedClassifierCV``
(Platt sigmoid fitted on cross-validated decision values). The calibrated scorer is
kept as its weights, intercept and sigmoid, so scoring is one sparse product.

Thresholds come from out-of-fold scores (folds by call, so no call sits on both sides):
starting from "nothing suspected", the category whose next lower threshold buys the
most recall per lawful line newly suspected is lowered, until the share of lawful lines
suspected would pass ``target_lawful_rate``. Lines a rule already flags for a category
are not suspected for it, so they cost nothing.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np
from scipy.sparse import hstack
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from monitor.learning.data import TURN_CATEGORIES, LabelledLine, data_sha256
from monitor.learning.model import RiskModel, feature_texts, sigmoid
from monitor.models import Call, Turn

FOLDS = 5
# Share of lawful training lines (out of fold) allowed to be suspected. Below the 10% the
# issue allows, to leave room for speech unlike the training data.
TARGET_LAWFUL_RATE = 0.07
# A reviewer's decision is about this team's own calls: it counts more than a shipped line.
DECISION_WEIGHT = 3.0
SVM_C = 0.5


@dataclass(frozen=True)
class TrainingReport:
    lines: int
    decisions: int
    seconds: float
    thresholds: dict[str, float]
    oof_recall: dict[str, float]  # model alone, out of fold, per category
    oof_lawful_rate: float  # lawful lines suspected (not rule-flagged), out of fold
    oof_coverage: float  # violating (line, category) pairs flagged by rules or suspected


def _vectorizers() -> tuple:
    # Word and pinyin views are pre-split with spaces; keep every token (Chinese single
    # characters included).
    return (
        TfidfVectorizer(analyzer="char", ngram_range=(1, 4), min_df=2, sublinear_tf=True, dtype=np.float32),
        TfidfVectorizer(token_pattern=r"\S+", ngram_range=(1, 2), min_df=2, sublinear_tf=True, lowercase=False,
                        dtype=np.float32),
        TfidfVectorizer(token_pattern=r"\S+", ngram_range=(2, 3), min_df=2, sublinear_tf=True, lowercase=False,
                        dtype=np.float32),
    )


def _fold_of(group: str) -> int:
    return int.from_bytes(hashlib.sha256(group.encode("utf-8")).digest()[:4], "big") % FOLDS


def _fit_category(X, y: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, float, float, float]:
    """(weights, intercept, sigmoid a, sigmoid b) of one calibrated linear scorer."""
    if y.all() or not y.any():
        # One class only (a tiny decision set): a constant score at the prior.
        constant = 0.999 if y.all() else 0.001
        return np.zeros(X.shape[1], dtype=np.float32), 0.0, 0.0, float(np.log(1 / constant - 1))
    calibrated = CalibratedClassifierCV(
        LinearSVC(C=SVM_C, class_weight="balanced", random_state=0), method="sigmoid", cv=3, ensemble=False
    )
    calibrated.fit(X, y, sample_weight=weights)
    inner = calibrated.calibrated_classifiers_[0]
    svm, sigmoid = inner.estimator, inner.calibrators[0]
    return svm.coef_.ravel().astype(np.float32), float(svm.intercept_[0]), float(sigmoid.a_), float(sigmoid.b_)


def _fit_all(X, lines: list[LabelledLine], weights: np.ndarray, rows: np.ndarray | None = None) -> tuple:
    chosen = np.arange(len(lines)) if rows is None else rows
    columns = []
    for category in TURN_CATEGORIES:
        keep = np.array([i for i in chosen if category in lines[i].known], dtype=int)
        y = np.array([lines[i].known[category] for i in keep], dtype=bool)
        columns.append(_fit_category(X[keep], y, weights[keep]))
    W = np.stack([c[0] for c in columns], axis=1)
    return W, np.array([c[1] for c in columns]), np.array([c[2] for c in columns]), np.array([c[3] for c in columns])


def _probabilities(X, fitted) -> np.ndarray:
    W, intercepts, slopes, offsets = fitted
    return sigmoid(slopes * (np.asarray(X @ W) + intercepts) + offsets)


def rule_flags(engine, lines: list[LabelledLine]) -> np.ndarray:
    """(lines, categories): which categories the rules raise on each line on its own."""
    flags = np.zeros((len(lines), len(TURN_CATEGORIES)), dtype=bool)
    for i, line in enumerate(lines):
        call = Call(id="line", turns=(Turn(line.speaker, line.text),), is_utterance=True)
        for finding in engine.scan(call).findings:
            if finding.category in TURN_CATEGORIES:
                flags[i, TURN_CATEGORIES.index(finding.category)] = True
    return flags


def choose_thresholds(scores: np.ndarray, labels: np.ndarray, lawful: np.ndarray, flags: np.ndarray,
                      target: float = TARGET_LAWFUL_RATE) -> np.ndarray:
    """Per-category thresholds (see the module docstring). ``scores``/``labels``/``flags``
    are (lines, categories) over fully labelled lines; ``lawful`` marks lawful ones."""
    n_lawful = max(int(lawful.sum()), 1)
    positives = max(int(labels.sum()), 1)
    suspectable = ~flags  # a rule-flagged (line, category) is never a suspected line
    # Candidate thresholds: scores of lawful lines (each step suspects one more), above 0.05.
    grids = []
    for c in range(scores.shape[1]):
        values = np.unique(scores[lawful & suspectable[:, c], c])
        values = values[values > 0.05]
        grids.append(np.concatenate([[1.0 + 1e-9], values[::-1] + 1e-9]))
    position = [0] * scores.shape[1]
    thresholds = np.array([g[0] for g in grids])

    def rates(t: np.ndarray) -> tuple[float, float]:
        suspected = (scores >= t) & suspectable
        lawful_rate = suspected[lawful].any(axis=1).sum() / n_lawful
        recall = (labels & (scores >= t)).sum() / positives
        return lawful_rate, recall

    lawful_now, recall_now = rates(thresholds)
    while True:
        best = None
        for c, grid in enumerate(grids):
            # Look a few steps ahead so one expensive lawful line does not stop a category.
            for step in range(1, 8):
                if position[c] + step >= len(grid):
                    break
                trial = thresholds.copy()
                trial[c] = grid[position[c] + step]
                lawful_rate, recall = rates(trial)
                if lawful_rate > target:
                    break
                gain = (recall - recall_now) / max(lawful_rate - lawful_now, 0.5 / n_lawful)
                if best is None or gain > best[0]:
                    best = (gain, c, step, lawful_rate, recall)
        if best is None or best[0] <= 0:
            return thresholds
        _, c, step, lawful_now, recall_now = best
        position[c] += step
        thresholds[c] = grids[c][position[c]]


def train(lines: list[LabelledLine], engine, decisions: list[LabelledLine] = (),
          target: float = TARGET_LAWFUL_RATE) -> tuple[RiskModel, TrainingReport]:
    """A risk model from shipped ``lines`` plus reviewers' ``decisions`` (weighted
    more), its thresholds chosen out of fold on the fully labelled shipped lines."""
    started = time.perf_counter()
    everything = list(lines) + list(decisions)
    weights = np.array([1.0] * len(lines) + [DECISION_WEIGHT] * len(decisions))
    vectorizers = _vectorizers()
    views = feature_texts([line.text for line in everything])
    X = hstack([v.fit_transform(view) for v, view in zip(vectorizers, views)]).tocsr()
    for vectorizer in vectorizers:
        if hasattr(vectorizer, "stop_words_"):
            vectorizer.stop_words_ = None  # only needed for introspection; large

    # Out-of-fold scores of the fully labelled shipped lines, to choose thresholds on.
    full = np.array([i for i, line in enumerate(lines) if line.fully_labelled], dtype=int)
    folds = np.array([_fold_of(line.group) for line in everything])
    oof = np.zeros((len(full), len(TURN_CATEGORIES)))
    for fold in range(FOLDS):
        train_rows = np.flatnonzero(folds != fold)
        held = full[folds[full] == fold]
        if len(held):
            oof[np.searchsorted(full, held)] = _probabilities(X[held], _fit_all(X, everything, weights, train_rows))
    labels = np.array([[lines[i].known[c] for c in TURN_CATEGORIES] for i in full], dtype=bool)
    lawful = ~labels.any(axis=1)
    flags = rule_flags(engine, [lines[i] for i in full])
    thresholds = choose_thresholds(oof, labels, lawful, flags, target)

    fitted = _fit_all(X, everything, weights)
    model = RiskModel(
        vectorizers, TURN_CATEGORIES, fitted[0], fitted[1], fitted[2], fitted[3],
        {c: float(t) for c, t in zip(TURN_CATEGORIES, thresholds)},
        header={"data_sha256": data_sha256(everything), "lines": len(lines), "decisions": len(decisions),
                "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
    )
    suspected = (oof >= thresholds) & ~flags
    covered = labels & ((oof >= thresholds) | flags)
    report = TrainingReport(
        lines=len(lines), decisions=len(decisions), seconds=time.perf_counter() - started,
        thresholds=model.thresholds,
        oof_recall={c: float((labels[:, k] & (oof[:, k] >= thresholds[k])).sum() / max(labels[:, k].sum(), 1))
                    for k, c in enumerate(TURN_CATEGORIES)},
        oof_lawful_rate=float(suspected[lawful].any(axis=1).sum() / max(lawful.sum(), 1)),
        oof_coverage=float(covered.sum() / max(labels.sum(), 1)),
    )
    return model, report
