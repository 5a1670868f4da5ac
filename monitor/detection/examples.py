"""Run every rule's examples: the ones that must fire and the ones that must stay quiet.

A failing example is a rule problem like any other: `monitor rules check` reports it
with its file and line, and `monitor scan` refuses to start on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from monitor import settings
from monitor.detection.engine import Engine
from monitor.errors import InputError, RuleError, RuleProblem
from monitor.models import Call, CallSignals, Turn
from monitor.detection.rules import Example, Rule, collect_rules
from monitor.times import parse_time

_EXAMPLE_DEBTOR = "example-debtor"


@dataclass(frozen=True)
class ExampleOutcome:
    rule: Rule
    example: Example
    passed: bool
    detail: str

    @property
    def problem(self) -> RuleProblem:
        return RuleProblem(str(_display(self.rule.path)), self.example.line, self.detail)


def _display(path: Path) -> Path:
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def _example_call(example: Example, zone: ZoneInfo) -> tuple[Call, list[Call]]:
    """The call an example describes (its last turn or last call is judged) and the
    calls before it."""
    if example.calls:
        calls = []
        for i, spec in enumerate(example.calls):
            started = parse_time(spec.get("started_at"), zone, f"calls[{i}].started_at")
            calls.append(
                Call(
                    id=f"example-{i}",
                    turns=(),
                    started_at=started,
                    debtor_id=str(spec.get("debtor_id", _EXAMPLE_DEBTOR)),
                    direction=spec.get("direction", "outbound"),
                )
            )
        return calls[-1], calls[:-1]
    raised = example.raised or (False,) * len(example.turns)
    turns = tuple(Turn(speaker, text, raised_voice=loud) for (speaker, text), loud in zip(example.turns, raised))
    signals = None
    if example.overtalk_share is not None:
        signals = CallSignals(source="channel", sides=(), overtalk_seconds=0.0, overtalk_count=0,
                              overtalk_share=example.overtalk_share, longest_silence=0.0)
    return Call(id="example", turns=turns, is_utterance=len(turns) == 1, signals=signals), []


def run_examples(engine: Engine, rules: tuple[Rule, ...] | None = None) -> list[ExampleOutcome]:
    zone = ZoneInfo(settings.get("timezone"))
    outcomes = []
    # A similar rule is a fallback (scored only where no rule of its category flags the
    # turn by its words); its examples say what it recognises itself, so they are run
    # with that condition lifted.
    unfallback = None
    for rule in rules if rules is not None else engine.pack.rules:
        judge = engine
        if engine.fallback_only and rule.similar_leaf is not None and engine.similar_rules:
            unfallback = unfallback or Engine(engine.pack, engine._embedder, fallback_only=False)
            judge = unfallback
        for example in rule.examples:
            try:
                call, earlier = _example_call(example, zone)
            except InputError as exc:
                outcomes.append(ExampleOutcome(rule, example, False, f"example: {exc}"))
                continue
            result = judge.scan(call, earlier)
            last = len(call.turns) - 1
            fired = any(
                f.rule == rule.id and (rule.is_call_rule or f.turn in (None, last))
                for f in result.findings
            )
            passed = fired == example.fire
            if passed:
                detail = "ok"
            elif example.fire:
                detail = f"example should fire {rule.id} but does not: {_describe(example)}"
            else:
                detail = f"example must not fire {rule.id} but does: {_describe(example)}"
            outcomes.append(ExampleOutcome(rule, example, passed, detail))
    return outcomes


def _describe(example: Example) -> str:
    if example.calls:
        return " → ".join(f"{c.get('started_at')} {c.get('direction', 'outbound')}" for c in example.calls)
    raised = example.raised or (False,) * len(example.turns)
    return " / ".join(f"[{speaker}{', raised voice' if loud else ''}] {text}"
                      for (speaker, text), loud in zip(example.turns, raised))


def load_engine(directory: Path | str | None = None) -> Engine:
    """Load the rules, compile them, and run their examples. Raises RuleError with every
    problem (syntax, schema, regex, failing example), each located."""
    pack, problems = collect_rules(directory or settings.get("rules_dir") or None)
    engine = Engine(pack) if pack is not None else None
    if engine is not None:
        problems = problems + [o.problem for o in run_examples(engine) if not o.passed]
    if problems:
        raise RuleError(problems)
    return engine
