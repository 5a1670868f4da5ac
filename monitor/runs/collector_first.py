"""Collector side first: which stereo calls need their debtor channel transcribed.

Findings are only raised on the collector's words (a rule's ``speakers`` never include
the debtor), and most calls of a night are compliant, so the batch transcribes the
collector channel, runs the rules over it, and transcribes the debtor channel only when
the call may hold a finding. The debtor's words still matter in one way: rules with an
``after:`` context (threat-veiled-followup: "注意安全" within four turns of talk about
the debtor's home) count turns, and debtor turns sit between collector turns; without
them, neighbouring collector segments may also merge into one turn. So the first look
is deliberately wider than the final scan, and a call is flagged when any of these has
a finding:

- the collector-only turns, and each collector segment as a turn of its own, scanned
- with every ``after:`` context dropped (a "suspected line": "注意安全" alone flags)
- with the history of earlier calls to the same debtor, this night's included

A flagged call gets both channels, and the final scan runs over exactly the turns a
both-channel run gives (``merge_halves``), so its findings are those of ``always``.
"""

from __future__ import annotations

import weakref
from dataclasses import replace

from monitor.detection.engine import Engine
from monitor.detection.rules import RulePack
from monitor.models import Call

DEBTOR_SIDE_POLICIES = ("always", "when-flagged", "never")
# The calls.debtor_side column: NULL for mono recordings (nothing to skip).
TRANSCRIBED = "transcribed"
NOT_TRANSCRIBED = "not transcribed"

_context_free: "weakref.WeakKeyDictionary[Engine, Engine]" = weakref.WeakKeyDictionary()


def merge_halves(collector: tuple, debtor: tuple, collector_channel: str = "left") -> list:
    """The turns of a stereo call from its two channels' (speaker, Segment) pairs,
    labelled in channel order as ``turns_from_recording`` does (ties keep that order)."""
    from monitor.speech.transcribe import merge_segments

    first, second = (collector, debtor) if collector_channel == "left" else (debtor, collector)
    return merge_segments(list(first) + list(second))


def context_free_engine(engine: Engine) -> Engine:
    """The same rules with every ``after:`` context dropped (compiled once per engine)."""
    if not any(rule.after is not None for rule in engine.pack.rules):
        return engine
    if engine not in _context_free:
        pack = engine.pack
        rules = tuple(replace(rule, after=None, after_within=0) if rule.after is not None else rule for rule in pack.rules)
        _context_free[engine] = Engine(RulePack(pack.directory, rules, pack.version, pack.analyser))
    return _context_free[engine]


class Decider:
    """Decides, from the collector channel alone, whether a call needs its debtor side."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def flagged(self, call: Call, segments: tuple | None, history) -> bool:
        from monitor.runs.pipeline import simplified
        from monitor.speech.transcribe import merge_segments

        wide = context_free_engine(self.engine)
        if wide.scan(call, tuple(history)).findings:
            return True
        pieces = tuple(turn for pair in segments or () for turn in simplified(merge_segments([pair])))
        return bool(pieces) and bool(wide.scan(replace(call, turns=pieces), tuple(history)).findings)


class History:
    """The calls of this night (metadata only), added to the stored history so the
    frequency rule's first look counts calls not stored yet. Counting a call twice or
    one that later fails only flags more: the safe side."""

    def __init__(self, calls: list[Call]):
        self.by_debtor: dict[str, list[Call]] = {}
        for call in calls:
            if call.debtor_id and call.started_at:
                self.by_debtor.setdefault(call.debtor_id, []).append(call)

    def before(self, call: Call, stored: list[Call]) -> list[Call]:
        if not (call.debtor_id and call.started_at):
            return list(stored)
        seen = {c.id for c in stored}
        tonight = [c for c in self.by_debtor.get(call.debtor_id, ())
                   if c.id != call.id and c.id not in seen and c.started_at <= call.started_at]
        return list(stored) + tonight
