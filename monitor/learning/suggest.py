"""Candidate rule examples from reviewers' decisions, as YAML ready to paste into a
rule's ``examples``: each confirmed suspected line is a ``fire`` example the rules of
its category missed; each dismissed finding a ``quiet`` example for the rule that fired.
Strings are written as JSON strings, which YAML reads unchanged."""

from __future__ import annotations

import json
from dataclasses import dataclass

from monitor.labels import CATEGORY_LABELS


@dataclass(frozen=True)
class Suggestion:
    kind: str  # fire | quiet
    target: str  # the category (fire) or rule id (quiet)
    text: str
    speaker: str
    call_id: str
    turn: int | None
    reviewer: str | None
    note: str | None

    @property
    def yaml_item(self) -> str:
        text = json.dumps(self.text, ensure_ascii=False)
        return f"- {text}" if self.speaker == "collector" else f"- {{text: {text}, speaker: {self.speaker}}}"


def suggestions(store) -> list[Suggestion]:
    found = [
        Suggestion("fire", row["category"], row["text"], row["speaker"], row["call_id"], row["turn"],
                   row["reviewer"], row["note"])
        for row in store.confirmed_suspected()
    ]
    found += [
        Suggestion("quiet", row["rule"], row["evidence"], row["speaker"] or "unknown", row["call_id"], row["turn"],
                   row["reviewer"], row["note"])
        for row in store.dismissed_findings()
    ]
    return sorted(found, key=lambda s: (s.kind, s.target, s.call_id, s.turn or 0))


def as_yaml(items: list[Suggestion]) -> str:
    """Grouped by category (fire) and rule (quiet), one comment line of provenance each."""
    lines: list[str] = []
    current = None
    for item in items:
        if (item.kind, item.target) != current:
            current = (item.kind, item.target)
            if lines:
                lines.append("")
            if item.kind == "fire":
                lines.append(f"# {item.target}（{CATEGORY_LABELS.get(item.target, item.target)}）: confirmed suspected "
                             "lines no rule flagged; candidate `fire` examples for a rule of this category")
            else:
                lines.append(f"# rules/{item.target}.yaml: dismissed findings; candidate `quiet` examples")
            lines.append("fire:" if item.kind == "fire" else "quiet:")
        where = f"call {item.call_id} turn {item.turn}" + (f", {item.reviewer}" if item.reviewer else "")
        note = f": {item.note}" if item.note else ""
        lines.append(f"  # {where}{note}".replace("\n", " "))
        lines.append(f"  {item.yaml_item}")
    return "\n".join(lines) + ("\n" if lines else "")
