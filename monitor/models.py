"""Typed values passed between stages. All frozen: a stage returns new values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

SPEAKERS = ("collector", "debtor", "unknown")
# Where a turn's speaker came from: the recorder's channel (stereo), or diarization of
# one channel (mono; the role is inferred until a person confirms it).
SPEAKER_SOURCES = ("channel", "diarized")
# The two voices diarization tells apart in one channel, in order of first speech.
VOICES = ("A", "B")
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
    speaker_source: str | None = None  # channel | diarized | None (typed transcript)
    voice: str | None = None  # diarized voice "A" / "B" (mono recordings)
    loudness: float | None = None  # dBFS of the turn's speech
    raised_voice: bool = False  # loudness well above this speaker's own median
    overtalk: float | None = None  # seconds of this turn during which the other side spoke too


@dataclass(frozen=True)
class SideSignals:
    """One side of a conversation: how much and how fast it spoke."""

    speaker: str  # collector | debtor | unknown, or a voice (A/B) before roles are known
    talk_seconds: float
    talk_share: float  # of all speech time in the call
    speaking_rate: float | None  # characters per second of its turns
    turns: int
    raised_turns: int

    def to_dict(self) -> dict:
        return {
            "speaker": self.speaker, "talk_seconds": self.talk_seconds, "talk_share": self.talk_share,
            "speaking_rate": self.speaking_rate, "turns": self.turns, "raised_turns": self.raised_turns,
        }


@dataclass(frozen=True)
class CallSignals:
    """Conversation signals of a recorded call (see monitor.speech.signals)."""

    source: str  # channel | diarized
    sides: tuple[SideSignals, ...]
    overtalk_seconds: float  # both sides speaking at once
    overtalk_count: int
    overtalk_share: float  # overtalk seconds over all speech seconds
    longest_silence: float  # longest stretch with nobody speaking, between first and last speech

    def side(self, speaker: str) -> SideSignals | None:
        return next((s for s in self.sides if s.speaker == speaker), None)

    def to_dict(self) -> dict:
        return {
            "source": self.source, "sides": [s.to_dict() for s in self.sides],
            "overtalk_seconds": self.overtalk_seconds, "overtalk_count": self.overtalk_count,
            "overtalk_share": self.overtalk_share, "longest_silence": self.longest_silence,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "CallSignals":
        return cls(
            source=data["source"], sides=tuple(SideSignals(**s) for s in data.get("sides", ())),
            overtalk_seconds=data["overtalk_seconds"], overtalk_count=data["overtalk_count"],
            overtalk_share=data["overtalk_share"], longest_silence=data["longest_silence"],
        )


@dataclass(frozen=True)
class SpeakerRoles:
    """Which diarized voice is the collector, how sure, and on what evidence."""

    voices: int  # 0, 1 or 2 voices heard
    collector_voice: str | None  # "A" / "B"; None: not decided
    confidence: float  # 0–1
    cues: tuple[tuple[str, str | None], ...] = ()  # (cue, the voice it points at, or None)
    conflict: bool = False  # cues point at different voices
    note: str | None = None
    confirmed_by: str | None = None  # a person who confirmed (or swapped) the roles

    def to_dict(self) -> dict:
        return {
            "voices": self.voices, "collector_voice": self.collector_voice, "confidence": self.confidence,
            "cues": [{"cue": cue, "voice": voice} for cue, voice in self.cues], "conflict": self.conflict,
            "note": self.note, "confirmed_by": self.confirmed_by,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "SpeakerRoles":
        return cls(
            voices=data["voices"], collector_voice=data.get("collector_voice"), confidence=data.get("confidence", 0.0),
            cues=tuple((c["cue"], c.get("voice")) for c in data.get("cues", ())), conflict=bool(data.get("conflict")),
            note=data.get("note"), confirmed_by=data.get("confirmed_by"),
        )


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
    # Recordings: conversation signals; mono recordings: the diarized roles; and notes
    # for people on how the speakers were found (one voice heard, cues disagree...).
    signals: CallSignals | None = None
    roles: SpeakerRoles | None = None
    notes: tuple[str, ...] = ()


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
