"""Labelled lines to train and measure the risk scorers on.

A line knows, for some of the turn categories, whether it is a violation of that
category: the shipped labelled sets know all five; a rule's ``fire`` or ``quiet``
example and a reviewer's decision know only their own category. Only collector and
unknown turns are kept (a debtor's words are never a violation, whatever they say).

Two blind sets are never read here: ``bench/data/blind12_*``, on which the shipped
model's figures were measured, and ``bench/data/blind16_*``, the fresh set that scores
the final rules (scored once, its errors never read). Blind sets 5–15, which the rules
were tuned on, are not training data either, so that the shipped model and its measured
figures stay those of the sets listed below.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from monitor.errors import InputError
from monitor.models import CATEGORIES

# Categories a single turn can carry; off_hours and call_frequency belong to calls.
TURN_CATEGORIES = tuple(c for c in CATEGORIES if c not in ("off_hours", "call_frequency"))
SCORED_SPEAKERS = ("collector", "unknown")

REPO = Path(__file__).resolve().parents[2]
# The labelled sets shipped in the repository that training reads (paths from its root).
SHIPPED_SETS = (
    "tests/data/probe_utterances.jsonl",
    "tests/data/probe_calls.jsonl",
    "corpus/utterances_abuse_threat_impersonation.jsonl",
    "corpus/utterances_third_party_cash.jsonl",
    "corpus/calls.jsonl",
    "bench/data/blind_utterances.jsonl",
    "bench/data/blind3_utterances.jsonl",
    "bench/data/blind4_utterances.jsonl",
)
# Never training data: the blind set that scores the model, and the sets whose first look
# scores the rules.
FORBIDDEN_PREFIXES = ("blind12", "blind16", "blind18", *(f"blind{n}" for n in range(22, 40)))


@dataclass(frozen=True)
class LabelledLine:
    """One turn's text and what is known about it: category → violation or not."""

    text: str
    speaker: str
    known: dict = field(hash=False)
    source: str = ""
    # Lines of one call (or one labelled file line) share a group, so that a held-out
    # split never puts two turns of the same call on both sides.
    group: str = ""

    @property
    def fully_labelled(self) -> bool:
        return all(c in self.known for c in TURN_CATEGORIES)

    @property
    def lawful(self) -> bool:
        return self.fully_labelled and not any(self.known.values())

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(c for c in TURN_CATEGORIES if self.known.get(c))


def _full(categories: Iterable[str]) -> dict:
    chosen = set(categories)
    return {c: c in chosen for c in TURN_CATEGORIES}


def _refuse_forbidden(path: Path) -> None:
    if path.name.startswith(FORBIDDEN_PREFIXES):
        raise InputError(f"{path}: the fresh blind set is kept for scoring and is never training data")


def read_labelled(path: Path | str, root: Path | None = None) -> list[LabelledLine]:
    """The collector/unknown turns of one labelled JSON Lines file (utterances with
    ``categories``, or calls with ``turn_labels``). Raises InputError naming the line."""
    path = Path(path)
    _refuse_forbidden(path)
    name = _relative(path, root)
    lines: list[LabelledLine] = []
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise InputError(f"{name}:{number}: not valid JSON: {exc.msg}") from None
            group = f"{name}:{record.get('id', number)}"
            if "turns" in record:
                labels = record.get("turn_labels")
                if not isinstance(labels, list) or len(labels) != len(record["turns"]):
                    raise InputError(f"{name}:{number}: turn_labels must give one list per turn")
                for turn, turn_labels in zip(record["turns"], labels):
                    speaker = turn.get("speaker") or "unknown"
                    if speaker in SCORED_SPEAKERS:
                        lines.append(LabelledLine(turn["text"], speaker, _full(turn_labels), name, group))
                continue
            if "text" not in record or "categories" not in record:
                raise InputError(f"{name}:{number}: a labelled line needs text and categories")
            speaker = record.get("speaker") or "unknown"
            if speaker in SCORED_SPEAKERS:
                lines.append(LabelledLine(record["text"], speaker, _full(record["categories"]), name, group))
    return lines


def _relative(path: Path, root: Path | None) -> str:
    try:
        return path.resolve().relative_to((root or REPO).resolve()).as_posix()
    except ValueError:
        return path.name


def rule_example_lines(pack) -> list[LabelledLine]:
    """Each turn rule's examples as lines labelled for its category only: ``fire`` a
    violation, ``quiet`` not (it may still violate another category). Only the judged
    (last) turn counts, and only when a collector or unknown speaker says it."""
    lines = []
    for rule in pack.turn_rules:
        if rule.category not in TURN_CATEGORIES:
            continue
        for example in rule.examples:
            if not example.turns:
                continue
            speaker, text = example.turns[-1]
            if speaker in SCORED_SPEAKERS:
                source = f"rules/{rule.id}.yaml"
                lines.append(LabelledLine(text, speaker, {rule.category: example.fire}, source, f"{source}:{example.line}"))
    return lines


def shipped_lines(pack=None, root: Path | None = None, exclude: Iterable[str] = ()) -> list[LabelledLine]:
    """Every labelled line shipped in the repository (``SHIPPED_SETS`` plus the rule
    pack's examples), without the sets named in ``exclude`` (to measure on them)."""
    root = root or REPO
    skipped = set(exclude)
    lines: list[LabelledLine] = []
    for name in SHIPPED_SETS:
        if name not in skipped:
            lines.extend(read_labelled(root / name, root))
    if pack is not None and "rules" not in skipped:
        lines.extend(rule_example_lines(pack))
    return lines


def data_sha256(lines: Iterable[LabelledLine]) -> str:
    """SHA-256 of the training lines (text, speaker, known labels, weight-relevant
    source kind), independent of their order: it identifies what a model learnt from."""
    digest = hashlib.sha256()
    rows = sorted(
        json.dumps([line.text, line.speaker, sorted(line.known.items()), line.source.split(":")[0]], ensure_ascii=False)
        for line in lines
    )
    for row in rows:
        digest.update(row.encode("utf-8") + b"\n")
    return digest.hexdigest()
