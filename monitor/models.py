"""Typed values passed between stages. All frozen: a stage returns new values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

SPEAKERS = ("collector", "debtor", "unknown")
DIRECTIONS = ("outbound", "inbound")

CATEGORIES = (
    "abuse",
    "threat",
    "third_party",
    "cash_to_collector",
    "impersonation",
    "off_hours",
    "call_frequency",
)

SEVERITIES = ("low", "medium", "high", "critical")


@dataclass(frozen=True)
class Turn:
    """One stretch of speech by one speaker. Times are seconds from the call start."""

    speaker: str
    text: str
    start: float | None = None
    end: float | None = None
    confidence: float | None = None


@dataclass(frozen=True)
class Call:
    """A call: its turns plus the metadata the time and frequency rules need."""

    id: str
    turns: tuple[Turn, ...]
    started_at: datetime | None = None
    collector_id: str | None = None
    debtor_id: str | None = None
    direction: str = "outbound"
    # Set for recordings: hash of the original bytes and length in seconds.
    sha256: str | None = None
    duration: float | None = None
    source: str | None = None
    # An utterance scanned on its own (no `turns` key in scan input).
    is_utterance: bool = False


@dataclass(frozen=True)
class Finding:
    """One rule firing on one turn (or on the whole call for call-level rules)."""

    rule: str
    category: str
    severity: str
    turn: int | None
    start: float | None
    end: float | None
    evidence: str
    speaker_verified: bool
    legal_basis: tuple[str, ...] = field(default=())
    # The normalised words that triggered the rule, for highlighting (None: call-level).
    matched: str | None = None
    # For a rule that fired through a `similar:` leaf: the cosine similarity of the turn
    # to the nearest of the leaf's example sentences, and that sentence.
    similarity: float | None = None
    nearest_example: str | None = None

    def to_contract(self) -> dict:
        """The keys `monitor scan` promises (see the scan contract), plus legal basis;
        ``similarity``/``nearest_example`` only when a similar leaf produced it."""
        extra = {}
        if self.similarity is not None:
            extra = {"similarity": self.similarity, "nearest_example": self.nearest_example}
        return {
            "rule": self.rule,
            "category": self.category,
            "severity": self.severity,
            "turn": self.turn,
            "start": self.start,
            "end": self.end,
            "evidence": self.evidence,
            "speaker_verified": self.speaker_verified,
            "legal_basis": list(self.legal_basis),
            "matched": self.matched,
            **extra,
        }


@dataclass(frozen=True)
class CallResult:
    """The findings for one call, in turn order."""

    call: Call
    findings: tuple[Finding, ...]

    @property
    def categories(self) -> list[str]:
        return sorted({f.category for f in self.findings})
