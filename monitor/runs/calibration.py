"""`monitor rules calibrate`: the thresholds of `similar:` leaves, learnt from labelled data.

A similar leaf scores a turn by its cosine similarity to example sentences; where the
score counts as "like them" is not typed into a rule file but chosen here. For each rule
with a similar leaf, every labelled turn on which its anchor matched (a collector or
unknown turn; a debtor's words are never a finding) is scored; a turn is positive when
its labels contain the rule's category. The threshold is the lowest score at which the
turns scoring at least that much keep the precision floor (most recall that keeps
precision). To show how well that generalises, each labelled file in turn is held out:
the threshold is chosen on the other files and measured on the held-out one.

The result is written to rules/calibration.json with the data files' hashes, the model
and the code version; the rule-set version includes the file's hash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from monitor import __version__
from monitor.detection.embedding import MODEL_NAME, Embedder
from monitor.detection.engine import UNLIKE_SCORE, Engine
from monitor.detection.rules import CALIBRATION_FILE, CALIBRATION_FORMAT, load_rules
from monitor.errors import InputError

DEFAULT_FLOOR = 0.97
MIN_TRUE_POSITIVES = 3  # below this a precision estimate is noise
_CODE = [Path(__file__), Path(__file__).parents[1] / "detection" / "embedding.py",
         Path(__file__).parents[1] / "detection" / "engine.py"]


@dataclass(frozen=True)
class Scored:
    file: int  # index into the labelled files
    score: float
    positive: bool


def labelled_turns(path: Path):
    """(speaker, text, categories) for each labelled turn of a JSON Lines file: every
    utterance, and every turn of a call that carries ``turn_labels``."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: not valid JSON: {exc.msg}") from exc
            if "turns" not in record:
                if not isinstance(record.get("text"), str):
                    raise InputError(f"{path}:{number}: an utterance needs text")
                yield record.get("speaker", "unknown"), record["text"], set(record.get("categories", []))
                continue
            labels = record.get("turn_labels")
            if labels is None:
                continue  # call-level labels say nothing about which turn
            if len(labels) != len(record["turns"]):
                raise InputError(f"{path}:{number}: turn_labels has {len(labels)} items for {len(record['turns'])} turns")
            for turn, categories in zip(record["turns"], labels):
                yield turn.get("speaker", "unknown"), turn.get("text", ""), set(categories)


def choose_threshold(points: list[Scored], floor: float) -> float | None:
    """The lowest score s such that the turns scoring ≥ s have precision ≥ ``floor``
    (with at least MIN_TRUE_POSITIVES of them right); None when no score does. A turn
    scored UNLIKE_SCORE is never admitted: on data where the anchor alone keeps the floor,
    the lowest score would otherwise become the threshold, and the turns the rule's
    counter-examples were written for would fire."""
    best = None
    tp = fp = 0
    ordered = sorted((p for p in points if p.score > UNLIKE_SCORE), key=lambda p: -p.score)
    for i, point in enumerate(ordered):
        tp += point.positive
        fp += not point.positive
        if i + 1 < len(ordered) and ordered[i + 1].score == point.score:
            continue  # a threshold takes all turns of equal score together
        if tp >= MIN_TRUE_POSITIVES and tp / (tp + fp) >= floor:
            best = point.score
    return best


def _measure(points: list[Scored], threshold: float | None) -> dict:
    tp = sum(1 for p in points if p.positive and threshold is not None and p.score >= threshold)
    fp = sum(1 for p in points if not p.positive and threshold is not None and p.score >= threshold)
    positives = sum(1 for p in points if p.positive)
    return {
        "anchored": len(points),
        "positives": positives,
        "tp": tp,
        "fp": fp,
        "precision": round(tp / (tp + fp), 3) if tp + fp else None,
        "recall": round(tp / positives, 3) if positives else None,
    }


def _file_label(path: Path) -> str:
    """A path without the machine's folders: relative to the working folder when inside
    it, else its last two parts (devset/utterances.jsonl)."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return "/".join(path.resolve().parts[-2:])


def _code_version() -> str:
    digest = hashlib.sha256()
    for path in _CODE:
        digest.update(path.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:10]}"


def calibrate(directory: Path | str | None, files: list[Path], floor: float = DEFAULT_FLOOR,
              embedder: Embedder | None = None) -> dict:
    """The calibration document for the rules in ``directory`` (not written)."""
    files = [Path(f) for f in files]
    labels = [_file_label(f) for f in files]
    if len(set(labels)) != len(labels):
        raise InputError("two labelled files have the same name; give each file once")
    pack = load_rules(directory, calibrating=True)
    # Thresholds are chosen on every anchored turn, also those another rule of the same
    # category flags by its words: the leaf's own precision, measured on enough turns. In
    # use it then only adds what the words miss (Engine's fallback).
    engine = Engine(pack, embedder, fallback_only=False)
    rules = engine.similar_rules
    scored: dict[str, list[Scored]] = {rule.id: [] for rule in rules}
    data = []
    for index, path in enumerate(files):
        turns = 0
        for speaker, text, categories in labelled_turns(path):
            turns += 1
            if speaker == "debtor":
                continue
            analysed = pack.analyser.analyse(text)
            present = set(engine.signals(analysed, speaker, complete=True))
            for rule in rules:
                if speaker not in rule.speakers:
                    continue
                hit = engine.similarity(rule, analysed, present, speaker)
                if hit is not None:
                    scored[rule.id].append(Scored(index, hit.score, rule.category in categories))
        data.append({"file": labels[index], "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "turns": turns})
    result_rules = {}
    for rule in rules:
        points = scored[rule.id]
        # The rule's own quiet examples say where it must not fire: a threshold never
        # sits at or below the score of one of them, whatever the data allow.
        above = _quiet_ceiling(engine, pack, rule)
        threshold = _above(choose_threshold(points, floor), above)
        held_out = []
        for index in range(len(files)):
            inside = [p for p in points if p.file != index]
            outside = [p for p in points if p.file == index]
            chosen = _above(choose_threshold(inside, floor), above)
            held_out.append({"file": labels[index], "threshold": chosen, **_measure(outside, chosen)})
        scored_like = [p.score for p in points if p.score > UNLIKE_SCORE]
        result_rules[rule.id] = {
            "category": rule.category,
            "examples": rule.similar_leaf.matcher.digest,
            "threshold": threshold,
            # The threshold takes every scored turn: on this data the anchor alone keeps
            # the floor and the examples decide nothing, so unseen speech is not measured
            # by it. The report says so; more labelled lawful turns near the anchor help.
            "admits_every_scored_turn": threshold is not None and bool(scored_like)
            and threshold <= min(scored_like),
            "all_files": _measure(points, threshold),
            "held_out": held_out,
        }
    return {
        "format": CALIBRATION_FORMAT,
        "model": MODEL_NAME,
        "code_version": _code_version(),
        "precision_floor": floor,
        "min_true_positives": MIN_TRUE_POSITIVES,
        "data": data,
        "rules": result_rules,
    }


def _quiet_ceiling(engine: Engine, pack, rule) -> float | None:
    """The highest similarity any of ``rule``'s quiet examples reaches (judged turns of
    collector or unknown speakers only), or None when none is scored."""
    best = None
    for example in rule.examples:
        if example.fire or not example.turns:
            continue
        speaker, text = example.turns[-1]
        if speaker not in rule.speakers:
            continue
        analysed = pack.analyser.analyse(text)
        hit = engine.similarity(rule, analysed, set(engine.signals(analysed, speaker, complete=True)), speaker)
        if hit is not None and (best is None or hit.score > best):
            best = hit.score
    return best


def _above(threshold: float | None, ceiling: float | None) -> float | None:
    if threshold is None or ceiling is None or threshold > ceiling:
        return threshold
    return round(ceiling + 0.0001, 4)


def write_calibration(document: dict, directory: Path) -> Path:
    path = Path(directory) / CALIBRATION_FILE
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


def report(document: dict) -> str:
    """A table: per rule the threshold and, per held-out file, precision and recall."""
    rows = []
    for rule_id, entry in document["rules"].items():
        whole = entry["all_files"]
        rows.append(f"{rule_id} ({entry['category']}): threshold {entry['threshold']}, "
                    f"{whole['anchored']} anchored turns, {whole['positives']} positive; "
                    f"on all files precision {whole['precision']} recall {whole['recall']}")
        if entry.get("admits_every_scored_turn"):
            rows.append("  warning: the threshold admits every scored turn (the anchor alone keeps the "
                        "floor on this data); the examples decide nothing here, so check the held-out "
                        "rows and add labelled lawful turns near the anchor before trusting it")
        rows.append(f"  {'held-out file':52} {'thresh':>7} {'anch':>5} {'pos':>4} {'tp':>4} {'fp':>4} {'prec':>6} {'rec':>6}")
        for h in entry["held_out"]:
            thresh = "-" if h["threshold"] is None else f"{h['threshold']:.4f}"
            prec = "-" if h["precision"] is None else f"{h['precision']:.3f}"
            rec = "-" if h["recall"] is None else f"{h['recall']:.3f}"
            rows.append(f"  {h['file']:52} {thresh:>7} {h['anchored']:5d} {h['positives']:4d} {h['tp']:4d} {h['fp']:4d} {prec:>6} {rec:>6}")
    return "\n".join(rows)
