"""The risk model: one calibrated linear scorer per turn category over character,
word and pinyin n-grams, each with the threshold above which a turn is suspected.

A model file is ``MAGIC``, one JSON header line, then the pickled model. The header
carries the model format version, the scikit-learn version it was written with, the
SHA-256 of its training data and of the payload. ``load_model`` refuses a file whose
format or scikit-learn version differs from this code's, or whose payload does not
match its hash, with a message that names the file: a model that cannot be trusted
stops the start, it never silently means "no scoring".

Scoring needs no scikit-learn import here: the vectorisers come out of the pickle, and
the calibrated scorers are kept as plain weights (``training.py`` is the one module that
imports scikit-learn).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import threading
from importlib.metadata import PackageNotFoundError, version
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monitor import settings
from monitor.errors import MonitorError
from monitor.detection.text import TextAnalyser, normalise, pinyin_keys
from monitor.learning.data import TURN_CATEGORIES

MAGIC = b"monitor-risk-model\n"
# The vectorisers are pickled scikit-learn objects: read only by the version that wrote them.
try:
    SKLEARN_VERSION = version("scikit-learn")
except PackageNotFoundError:  # then every model file is refused, with this reason
    SKLEARN_VERSION = "not installed"
# Bump when the pickled layout or the features change: older files are then refused.
MODEL_FORMAT = 2
SHIPPED_MODEL = Path(__file__).resolve().parent / "model" / "risk-model.pkl"
INSTALLED_NAME = "risk-model.pkl"


class ModelError(MonitorError):
    """The risk-model file is missing, corrupt or made for another version."""


# -- features ---------------------------------------------------------------------------

_analyser_lock = threading.Lock()
_analyser: TextAnalyser | None = None


def _tokens_analyser() -> TextAnalyser:
    """A plain jieba tokenizer (no rule lexicon words), so features do not change when
    the rules do."""
    global _analyser
    with _analyser_lock:
        if _analyser is None:
            _analyser = TextAnalyser()
        return _analyser


def feature_texts(texts: list[str]) -> tuple[list[str], list[str], list[str]]:
    """Three views of each text: normalised characters, jieba words, pinyin keys (so a
    homophone written by speech recognition shares features with the word meant)."""
    analyser = _tokens_analyser()
    chars, words, keys = [], [], []
    for text in texts:
        norm = normalise(text)
        # Dictionary words only: unknown words are single characters, which the
        # character n-grams already see, and scoring stays well under 0.5 ms a turn.
        spans, _known = analyser.tokens(norm, hmm=False)
        chars.append(norm)
        words.append(" ".join(norm[s:e] for s, e in spans))
        keys.append(" ".join(k for k in pinyin_keys(norm) if k.strip()))
    return chars, words, keys


def _tfidf(tokens: list[str], vocabulary: dict, idf: np.ndarray, offset: int, columns: list, values: list) -> None:
    """Append one view's TF-IDF features of one text (columns shifted by ``offset``)."""
    counts: dict[int, int] = {}
    for token in tokens:
        index = vocabulary.get(token)
        if index is not None:
            counts[index] = counts.get(index, 0) + 1
    if not counts:
        return
    indices = np.fromiter(counts, dtype=np.int64, count=len(counts))
    weights = (np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts))) + 1.0) * idf[indices]
    weights /= np.sqrt(weights @ weights)
    columns.extend((indices + offset).tolist())
    values.extend(weights.tolist())


def sigmoid(exponent: np.ndarray) -> np.ndarray:
    """1 / (1 + e^x), clipped so that no far-off text overflows."""
    return 1.0 / (1.0 + np.exp(np.clip(exponent, -60.0, 60.0)))


# -- the model --------------------------------------------------------------------------


@dataclass
class RiskModel:
    """Fitted vectorisers (chars, words, pinyin) and, per category, the weights of a
    linear scorer and its sigmoid calibration (Platt): p = 1 / (1 + exp(a·f + b))."""

    vectorizers: tuple
    categories: tuple[str, ...]
    weights: np.ndarray  # (features, categories), float32
    intercepts: np.ndarray  # (categories,)
    slopes: np.ndarray  # sigmoid a per category
    offsets: np.ndarray  # sigmoid b per category
    thresholds: dict[str, float]
    header: dict = field(default_factory=dict)

    @property
    def version(self) -> str:
        """Short id of this model: the first 12 hex digits of its payload hash."""
        return self.header.get("payload_sha256", "")[:12] or "unsaved"

    def score(self, texts: list[str]) -> np.ndarray:
        """Probabilities that each text violates each category, (texts, categories)."""
        if not texts:
            return np.zeros((0, len(self.categories)))
        views = self._views()
        decision = np.zeros((len(texts), len(self.categories))) + self.intercepts
        for row, parts in enumerate(zip(*feature_texts(list(texts)))):
            columns, values = [], []
            for (analyzer, vocabulary, idf, offset), part in zip(views, parts):
                _tfidf(analyzer(part), vocabulary, idf, offset, columns, values)
            if columns:
                decision[row] += np.asarray(values) @ self.weights[columns]
        return sigmoid(self.slopes * decision + self.offsets)

    def _views(self) -> list[tuple]:
        """Per vectoriser: its analyser, vocabulary, idf and first weight row. Scoring
        computes TF-IDF itself (as TfidfVectorizer.transform does: sublinear tf times
        idf, L2-normalised per view): a call's few turns cost microseconds instead of
        scikit-learn's fixed milliseconds per transform."""
        views = self.__dict__.get("_view_cache")
        if views is None:
            views, offset = [], 0
            for vectorizer in self.vectorizers:
                views.append((vectorizer.build_analyzer(), vectorizer.vocabulary_, vectorizer.idf_, offset))
                offset += len(vectorizer.idf_)
            self.__dict__["_view_cache"] = views
        return views

    def threshold(self, category: str) -> float:
        return self.thresholds[category]


# -- the file ---------------------------------------------------------------------------


def save_model(model: RiskModel, path: Path | str, header: dict | None = None) -> Path:
    """Write ``model`` to ``path`` atomically (a temporary file renamed over it)."""
    path = Path(path)
    payload = pickle.dumps(
        {
            "vectorizers": model.vectorizers, "categories": model.categories, "weights": model.weights,
            "intercepts": model.intercepts, "slopes": model.slopes, "offsets": model.offsets,
            "thresholds": model.thresholds,
        },
        protocol=pickle.HIGHEST_PROTOCOL,
    )
    full = dict(model.header) | dict(header or {})
    full.update(
        format=MODEL_FORMAT, sklearn=SKLEARN_VERSION, payload_sha256=hashlib.sha256(payload).hexdigest(),
        thresholds={c: round(float(t), 6) for c, t in model.thresholds.items()},
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as handle:
        handle.write(MAGIC + json.dumps(full, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n" + payload)
    os.replace(temporary, path)
    model.header = full
    return path


def read_header(path: Path | str) -> dict:
    """The header of a model file (no unpickling). Raises ModelError naming the file."""
    header, _payload = _read(Path(path))
    return header


def _read(path: Path) -> tuple[dict, bytes]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{path}: risk-model file not found") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the risk-model file ({exc.strerror})") from None
    if not data.startswith(MAGIC):
        raise ModelError(f"{path}: not a risk-model file (it does not start with the model header)")
    line_end = data.find(b"\n", len(MAGIC))
    try:
        header = json.loads(data[len(MAGIC):line_end].decode("utf-8")) if line_end > 0 else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        header = None
    if not isinstance(header, dict):
        raise ModelError(f"{path}: the risk-model header is damaged")
    return header, data[line_end + 1:]


def load_model(path: Path | str) -> RiskModel:
    """The model in ``path``. Raises ModelError, naming the file, when it is missing,
    corrupt, or written by another model format or scikit-learn version."""
    path = Path(path)
    header, payload = _read(path)
    if header.get("format") != MODEL_FORMAT:
        raise ModelError(
            f"{path}: risk-model format {header.get('format')!r}, but this monitor reads format {MODEL_FORMAT}; "
            "rebuild it with `monitor learn`"
        )
    if header.get("sklearn") != SKLEARN_VERSION:
        raise ModelError(
            f"{path}: risk model written with scikit-learn {header.get('sklearn')}, but {SKLEARN_VERSION} "
            "is installed; rebuild it with `monitor learn` or install the pinned version"
        )
    if hashlib.sha256(payload).hexdigest() != header.get("payload_sha256"):
        raise ModelError(f"{path}: the risk-model file is corrupt (its contents do not match the hash in its header)")
    try:
        parts = pickle.loads(payload)  # noqa: S301 - our own file, its hash checked above
        model = RiskModel(
            parts["vectorizers"], tuple(parts["categories"]), parts["weights"], parts["intercepts"],
            parts["slopes"], parts["offsets"], dict(parts["thresholds"]), header,
        )
    except Exception as exc:  # a damaged pickle can raise nearly anything
        raise ModelError(f"{path}: the risk-model file cannot be read ({type(exc).__name__}: {exc})") from None
    if model.categories != TURN_CATEGORIES:
        raise ModelError(f"{path}: the risk model scores {list(model.categories)}, not {list(TURN_CATEGORIES)}")
    return model


# -- which file ---------------------------------------------------------------------------


def installed_path() -> Path:
    """Where ``monitor learn`` installs a retrained model: MONITOR_RISK_MODEL when set,
    else ``risk-model.pkl`` in the instance folder (never over the shipped file)."""
    chosen = settings.get("risk_model")
    if chosen:
        return Path(chosen)
    return Path(settings.get("instance_dir") or "instance") / INSTALLED_NAME


def model_path() -> Path:
    """The model in use: MONITOR_RISK_MODEL when set (it must exist), else one installed
    in the instance folder, else the model shipped with the monitor."""
    chosen = settings.get("risk_model")
    if chosen:
        return Path(chosen)
    installed = installed_path()
    return installed if installed.exists() else SHIPPED_MODEL


_cache_lock = threading.Lock()
_cache: dict[Path, tuple[tuple, RiskModel]] = {}


def current_model(path: Path | str | None = None) -> RiskModel:
    """The model in use (see ``model_path``), loaded once per process and again when
    its file changes (``monitor learn`` installed a new one). Raises ModelError."""
    path = Path(path) if path is not None else model_path()
    try:
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        stamp = None
    with _cache_lock:
        cached = _cache.get(path)
        if cached is not None and stamp is not None and cached[0] == stamp:
            return cached[1]
        model = load_model(path)
        _cache[path] = (stamp, model)
        return model
