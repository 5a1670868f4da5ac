"""Conversation signals of a recorded call: who talked how much, over whom, how fast,
how loud, and the longest silence.

Stereo: each side is its own channel, so both sides' activity is heard frame by frame
(10 ms) and overtalk is measured where both channels have speech. Mono: the sides are
the diarized voices; one channel cannot show two voices in one frame, so overtalk is
where turns of the two voices overlap in time. Raised voice compares a turn's loudness
with that speaker's own other turns: a loud recorder or a quiet phone says nothing
about shouting, a jump of several decibels over one's own median does.
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np

from monitor.models import VOICES, CallSignals, SideSignals, Turn
from monitor.speech.audio import Recording
from monitor.speech.diarize import FRAME_SECONDS, Diarization, speech_frames

# A turn this many decibels above the median of the same speaker's other turns is a
# raised voice (6 dB: twice the sound pressure; everyday emphasis stays within 3–4 dB).
RAISED_VOICE_DB = 6.0
# The median needs this many other turns of the same speaker to mean anything.
MIN_OTHER_TURNS = 2
# Frames quieter than this are not speech even when the detector says so (the unused
# channel of a stereo recorder carries a noise floor around -72 dBFS).
SPEECH_FLOOR_DBFS = -50.0
# Overtalk shorter than this is a crossing of turn ends, not talking over someone;
# stretches closer than OVERTALK_JOIN_SECONDS are one episode.
MIN_OVERTALK_SECONDS = 0.1
OVERTALK_JOIN_SECONDS = 0.3

_NOT_SPOKEN = re.compile(r"[\s\W_]+", re.UNICODE)


def _frame_db(samples: np.ndarray) -> np.ndarray:
    hop = int(round(FRAME_SECONDS * 16_000))
    n = len(samples) // hop
    frames = np.asarray(samples[: n * hop], dtype=np.float64).reshape(n, hop)
    return 10 * np.log10(np.maximum((frames ** 2).mean(axis=1), 1e-12))


def _activity(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Speech flag and level (dBFS) per 10 ms frame of one channel."""
    levels = _frame_db(samples)
    flags = speech_frames(samples)[: len(levels)]
    levels = levels[: len(flags)]
    return flags & (levels >= SPEECH_FLOOR_DBFS), levels


def _loudness(levels: np.ndarray, mask: np.ndarray) -> float | None:
    """A turn's level: the energy mean of its louder half of speech frames, in dBFS."""
    values = levels[mask]
    if len(values) == 0:
        return None
    loud = values[values >= np.median(values)]
    return round(float(10 * np.log10(np.mean(10 ** (loud / 10)))), 2)


def _span(turn: Turn, n: int) -> slice:
    lo = max(0, int((turn.start or 0.0) / FRAME_SECONDS))
    hi = min(n, int(np.ceil((turn.end or 0.0) / FRAME_SECONDS)))
    return slice(lo, max(lo, hi))


def _side(turn: Turn) -> str:
    return turn.voice if turn.speaker_source == "diarized" and turn.voice else turn.speaker


def _episodes(both: np.ndarray) -> list[tuple[int, int]]:
    """Runs of overtalk frames, close ones joined, short ones dropped."""
    runs = []
    idx = np.flatnonzero(both)
    if len(idx) == 0:
        return runs
    join = int(OVERTALK_JOIN_SECONDS / FRAME_SECONDS)
    start = previous = idx[0]
    for i in idx[1:]:
        if i - previous > join:
            runs.append((start, previous + 1))
            start = i
        previous = i
    runs.append((start, previous + 1))
    return [(s, e) for s, e in runs if both[s:e].sum() * FRAME_SECONDS >= MIN_OVERTALK_SECONDS]


def conversation_signals(
    recording: Recording,
    turns: list[Turn],
    diarization: Diarization | None = None,
    collector_channel: str = "left",
) -> tuple[list[Turn], CallSignals]:
    """The turns with loudness, raised voice and overtalk filled in, and the call's
    signals. Stereo sides are the turns' speakers (by channel), mono sides the voices."""
    if recording.is_stereo:
        activity, levels = zip(*(_activity(ch) for ch in recording.channels))
        n = min(len(a) for a in activity)
        activity = [a[:n] for a in activity]
        levels = [lv[:n] for lv in levels]
        speakers = ["collector", "debtor"] if collector_channel == "left" else ["debtor", "collector"]
        active = {speakers[i]: activity[i] for i in range(2)}
        level_of = {speakers[i]: levels[i] for i in range(2)}
        source = "channel"
    else:
        levels_mono = _frame_db(recording.channels[0])
        n = len(levels_mono)
        if diarization is not None and diarization.voices == 2:
            labels = diarization.labels[:n]
            n = len(labels)
            active = {voice: labels == k for k, voice in enumerate(VOICES)}
        else:
            # One voice or none: every speech frame belongs to the one side there is.
            if diarization is not None:
                mask = diarization.speech_mask()[:n]
            else:
                mask = speech_frames(recording.channels[0])[:n]
            n = len(mask)
            names = sorted({_side(t) for t in turns}) or ["unknown"]
            active = {names[0]: mask}
            for other in names[1:]:
                active[other] = np.zeros(n, dtype=bool)
        levels_mono = levels_mono[:n]
        level_of = {side: levels_mono for side in active}
        source = "diarized" if diarization is not None else "channel"

    for turn in turns:  # a side with turns but no frames (odd labels) still gets a row
        active.setdefault(_side(turn), np.zeros(n, dtype=bool))
        level_of.setdefault(_side(turn), next(iter(level_of.values())) if level_of else np.zeros(n))

    # Overtalk: stereo from the two channels' frames; mono from overlapping turns.
    if source == "channel" and recording.is_stereo:
        stack = np.stack(list(active.values()))
        both = stack.sum(axis=0) >= 2
    else:
        coverage = {side: np.zeros(n, dtype=bool) for side in active}
        for turn in turns:
            coverage[_side(turn)][_span(turn, n)] = True
        both = np.stack(list(coverage.values())).sum(axis=0) >= 2 if len(coverage) > 1 else np.zeros(n, dtype=bool)
    episodes = _episodes(both)
    overtalk_frames = sum(int(both[s:e].sum()) for s, e in episodes)

    anyone = np.stack(list(active.values())).any(axis=0) if active else np.zeros(n, dtype=bool)
    spoken = np.flatnonzero(anyone)
    longest_silence = 0.0
    if len(spoken):
        quiet = ~anyone[spoken[0]: spoken[-1] + 1]
        longest_silence = max((e - s for v, s, e in _runs(quiet) if v), default=0) * FRAME_SECONDS

    # Per turn: loudness, overtalk; then raised voice against the side's own median.
    filled = []
    for turn in turns:
        side = _side(turn)
        span = _span(turn, n)
        own = np.zeros(n, dtype=bool)
        own[span] = active[side][span]
        if not own.any():
            own[span] = True
        others = [a for s, a in active.items() if s != side]
        if source == "channel" and recording.is_stereo:
            other_active = np.stack(others).any(axis=0) if others else np.zeros(n, dtype=bool)
            overlap = float((own & other_active).sum() * FRAME_SECONDS)
        else:
            overlap = float(both[span].sum() * FRAME_SECONDS)
        filled.append(replace(turn, loudness=_loudness(level_of[side], own), overtalk=round(overlap, 2)))
    filled = _mark_raised(filled)

    total = float(sum(a.sum() for a in active.values()) * FRAME_SECONDS) or 0.0
    side_rows = []
    for side, flags_ in active.items():
        own_turns = [t for t in filled if _side(t) == side]
        seconds = float(flags_.sum() * FRAME_SECONDS)
        turn_seconds = sum(max(0.0, (t.end or 0) - (t.start or 0)) for t in own_turns)
        chars = sum(len(_NOT_SPOKEN.sub("", t.text)) for t in own_turns)
        side_rows.append(SideSignals(
            speaker=side,
            talk_seconds=round(seconds, 2),
            talk_share=round(seconds / total, 3) if total else 0.0,
            speaking_rate=round(chars / turn_seconds, 2) if turn_seconds > 0 else None,
            turns=len(own_turns),
            raised_turns=sum(t.raised_voice for t in own_turns),
        ))
    union = float(anyone.sum() * FRAME_SECONDS)
    signals = CallSignals(
        source=source,
        sides=tuple(sorted(side_rows, key=lambda s: s.speaker)),
        overtalk_seconds=round(overtalk_frames * FRAME_SECONDS, 2),
        overtalk_count=len(episodes),
        overtalk_share=round(overtalk_frames * FRAME_SECONDS / union, 3) if union else 0.0,
        longest_silence=round(longest_silence, 2),
    )
    return filled, signals


def _mark_raised(turns: list[Turn]) -> list[Turn]:
    out = []
    for i, turn in enumerate(turns):
        others = [t.loudness for j, t in enumerate(turns)
                  if j != i and _side(t) == _side(turn) and t.loudness is not None]
        raised = (
            turn.loudness is not None
            and len(others) >= MIN_OTHER_TURNS
            and turn.loudness >= float(np.median(others)) + RAISED_VOICE_DB
        )
        out.append(replace(turn, raised_voice=bool(raised)))
    return out


def _runs(values: np.ndarray) -> list[tuple[bool, int, int]]:
    if len(values) == 0:
        return []
    edges = np.flatnonzero(np.diff(values.astype(np.int8))) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [len(values)]])
    return [(bool(values[s]), int(s), int(e)) for s, e in zip(starts, ends)]


__all__ = ["RAISED_VOICE_DB", "conversation_signals"]
