"""Precision and recall per category on a labelled set (the dev set, a held-out set).

A labelled set is scan input plus the expected ``categories`` of each line (and, for
calls, optional ``turn_labels``). Every line counts once per category: a line whose
expected and found categories both contain X is a true positive for X.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable
from zoneinfo import ZoneInfo

from monitor.detection.engine import Engine
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
    errors: list[dict] = field(default_factory=list)  # lines whose categories differ
    debtor_findings: int = 0  # must stay 0: a debtor's words are never a finding
    lines: int = 0

    def table(self) -> str:
        rows = [f"{'category':18} {'precision':>9} {'recall':>7} {'support':>7} {'tp':>4} {'fp':>4} {'fn':>4}"]
        for category, s in self.scores.items():
            rows.append(
                f"{category:18} {s.precision:9.3f} {s.recall:7.3f} {s.support:7d} {s.tp:4d} {s.fp:4d} {s.fn:4d}"
            )
        rows.append(f"lines: {self.lines}, mismatched lines: {len(self.errors)}, findings on debtor turns: {self.debtor_findings}")
        return "\n".join(rows)


def evaluate(engine: Engine, records: Iterable[dict], zone: ZoneInfo) -> Evaluation:
    records = list(records)
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    result = Evaluation()
    for record, output in zip(records, scan_lines(engine, lines, zone)):
        result.lines += 1
        if "error" in output:
            result.errors.append({"id": record.get("id"), "error": output["error"]})
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
        if expected != found:
            result.errors.append(
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


def read_jsonl(paths: Iterable[Path]) -> list[dict]:
    records = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            records.extend(json.loads(line) for line in handle if line.strip())
    return records
