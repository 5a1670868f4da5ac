"""Conversation signals (talk share, overtalk, silence, pace, raised voice), their
storage, and rules that use them. No Whisper here: turns are given with their times, the
audio is real synthetic speech from sample_audio laid out where the test wants it."""

from __future__ import annotations

import importlib.util
import wave
from pathlib import Path

import numpy as np
import pytest

from monitor.models import Call, CallSignals, SideSignals, SpeakerRoles, Turn
from monitor.speech.audio import load_recording
from monitor.speech.signals import conversation_signals

REPO = Path(__file__).resolve().parents[1]
RATE = 16_000


def _mixes():
    spec = importlib.util.spec_from_file_location("make_mono_mixes", REPO / "scripts" / "make_mono_mixes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_stereo(path: Path, left: np.ndarray, right: np.ndarray) -> None:
    pcm = (np.clip(np.stack([left, right], axis=1), -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(2)
        handle.setsampwidth(2)
        handle.setframerate(RATE)
        handle.writeframes(pcm.tobytes())


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


@pytest.fixture(scope="module")
def constructed_call(tmp_path_factory):
    """A stereo call: the collector on the left talks over the debtor twice (known
    overlaps), and one collector turn is 12 dB louder than the others."""
    mixes = _mixes()
    clips = mixes.clips_of("compliant_instalment")
    collector = [c for c in clips if c["speaker"] == "collector"]
    debtor = [c for c in clips if c["speaker"] == "debtor"]
    margin = mixes.MARGIN
    # (speaker, clip, start of the clip's speech in seconds, gain)
    plan = [
        ("collector", collector[0], 0.5, 1.0),
        ("debtor", debtor[0], None, 1.0),  # starts 1.0 s before the collector ends
        ("collector", collector[1], None, 1.0),  # starts 0.8 s before the debtor ends
        ("debtor", debtor[1], "gap", 1.0),
        ("collector", collector[2], "gap", 4.0),  # the loud turn (+12 dB)
        ("debtor", debtor[2], "gap", 1.0),
    ]
    starts = {1: -1.0, 2: -0.8}
    length = 60 * RATE
    left, right = np.zeros(length, np.float32), np.zeros(length, np.float32)
    turns, position = [], 0.5
    for i, (speaker, clip, _, gain) in enumerate(plan):
        speech = clip["end"] - clip["start"]
        if i > 0:
            position = turns[-1].end + (starts[i] if i in starts else 1.5)
        lo = int((position - margin) * RATE)
        audio = clip["audio"] * gain
        (left if speaker == "collector" else right)[lo: lo + len(audio)] += audio
        turns.append(Turn(speaker, clip["text"], round(position, 3), round(position + speech, 3),
                          speaker_source="channel"))
    end = int((turns[-1].end + 0.5) * RATE)
    path = tmp_path_factory.mktemp("signals") / "overtalk.wav"
    _write_stereo(path, left[:end], right[:end])
    return load_recording(path), turns


def test_overtalk_seconds_and_count_match_the_constructed_overlaps(constructed_call):
    recording, turns = constructed_call
    filled, signals = conversation_signals(recording, turns)
    expected = sum(_overlap((a.start, a.end), (b.start, b.end))
                   for a in turns if a.speaker == "collector" for b in turns if b.speaker == "debtor")
    assert expected == pytest.approx(1.8, abs=0.01)
    assert signals.source == "channel"
    assert signals.overtalk_seconds == pytest.approx(expected, abs=0.2)
    assert signals.overtalk_count == 2
    # Each overlap is credited to both turns that took part in it.
    assert filled[1].overtalk == pytest.approx(1.8, abs=0.2)
    assert filled[3].overtalk == pytest.approx(0.0, abs=0.05)


def test_the_loud_turn_is_flagged_and_only_it(constructed_call):
    recording, turns = constructed_call
    filled, signals = conversation_signals(recording, turns)
    assert [t.raised_voice for t in filled] == [False, False, False, False, True, False]
    assert filled[4].loudness > max(filled[0].loudness, filled[2].loudness) + 10
    assert signals.side("collector").raised_turns == 1
    assert signals.side("debtor").raised_turns == 0


def test_talk_share_silence_and_pace(constructed_call):
    recording, turns = constructed_call
    _, signals = conversation_signals(recording, turns)
    collector, debtor = signals.side("collector"), signals.side("debtor")
    assert collector.talk_share + debtor.talk_share == pytest.approx(1.0, abs=0.01)
    spoken = {"collector": 0.0, "debtor": 0.0}
    for t in turns:
        spoken[t.speaker] += t.end - t.start
    assert collector.talk_seconds == pytest.approx(spoken["collector"], rel=0.15)
    assert debtor.talk_seconds == pytest.approx(spoken["debtor"], rel=0.15)
    # The gaps between the last three turns are 1.5 s: the longest silence.
    assert signals.longest_silence == pytest.approx(1.5, abs=0.25)
    assert 2.0 < collector.speaking_rate < 8.0  # characters per second, a human pace


def test_mono_overtalk_comes_from_overlapping_voices(tmp_path):
    tone = (0.1 * np.sin(np.arange(4 * RATE) * 2 * np.pi * 200 / RATE)).astype(np.float32)
    path = tmp_path / "mono.wav"
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(RATE)
        handle.writeframes((tone * 32767).astype("<i2").tobytes())
    turns = [Turn("unknown", "您好", 0.0, 2.0, speaker_source="diarized", voice="A"),
             Turn("unknown", "喂喂", 1.5, 3.5, speaker_source="diarized", voice="B")]
    _, signals = conversation_signals(load_recording(path), turns)
    assert signals.overtalk_seconds == pytest.approx(0.5, abs=0.02)
    assert signals.overtalk_count == 1


def test_signals_and_speakers_survive_the_store(tmp_path):
    from monitor.store import Store

    store = Store(tmp_path / "m.db")
    signals = CallSignals("diarized", (SideSignals("collector", 3.0, 0.6, 4.0, 2, 1),
                                       SideSignals("debtor", 2.0, 0.4, 3.5, 1, 0)), 0.5, 1, 0.1, 0.8)
    call = Call("c1", (Turn("collector", "你有病吧", 0.0, 1.0, 0.9, "diarized", "A", -12.0, True, 0.2),),
                sha256="ab" * 32, duration=3.0, signals=signals,
                roles=SpeakerRoles(2, "A", 0.8, (("rules", "A"),)), notes=("roles: checked",))
    call_id = store.save_transcript(call)
    back = store.call(call_id)
    assert back.turns == call.turns
    assert back.signals == signals and back.roles == call.roles and back.notes == call.notes
    row = store.call_row(call_id)
    assert row["overtalk_share"] == 0.1 and row["collector_talk_share"] == 0.6


def test_a_rule_on_raised_voice_fires_only_when_the_voice_is_raised(engine):
    from monitor.detection.examples import run_examples

    rule = engine.pack.rule("abuse-raised-voice-insult")
    outcomes = run_examples(engine, (rule,))
    assert outcomes and all(o.passed for o in outcomes)
    loud = Call("x", (Turn("collector", "你有病吧，说了多少遍了", raised_voice=True),))
    calm = Call("x", (Turn("collector", "你有病吧，说了多少遍了"),))
    debtor = Call("x", (Turn("debtor", "你有病吧，说了多少遍了", raised_voice=True),))
    fired = lambda call: [f.rule for f in engine.scan(call).findings]  # noqa: E731
    assert "abuse-raised-voice-insult" in fired(loud)
    assert "abuse-raised-voice-insult" not in fired(calm)
    assert fired(debtor) == []


def test_the_shipped_overtalk_rule_fires_only_on_a_call_talked_over(engine):
    from monitor.detection.examples import run_examples

    rule = engine.pack.rule("abuse-overtalk-silencing")
    assert rule.category == "abuse"
    outcomes = run_examples(engine, (rule,))
    assert outcomes and all(o.passed for o in outcomes)

    def fired(share, speaker="collector"):
        signals = None if share is None else CallSignals("channel", (), 0.0, 0, share, 0.0)
        call = Call("x", (Turn("debtor", "我想跟你们商量一下"), Turn(speaker, "少废话，欠的钱今天必须还上")), signals=signals)
        return [f.rule for f in engine.scan(call).findings]

    assert "abuse-overtalk-silencing" in fired(0.3)
    assert "abuse-overtalk-silencing" not in fired(0.1)
    assert "abuse-overtalk-silencing" not in fired(None)  # a typed transcript: no signals
    assert fired(0.3, "debtor") == []


def test_overtalk_share_key_compiles_and_holds_on_the_call(tmp_path):
    from monitor.detection.engine import Engine
    from monitor.detection.rules import load_rules
    from monitor.errors import RuleError

    (tmp_path / "lexicons").mkdir()
    rule = """id: talk-over
title: 压制性抢话
description: Telling the debtor to shut up on a call the collector talks over.
category: abuse
severity: medium
legal_basis: [x]
match:
  all:
    - overtalk_share: {at_least: 0.3}
    - terms: [闭嘴]
examples:
  fire:
    - {text: 你给我闭嘴, overtalk_share: 0.4}
  quiet:
    - {text: 你给我闭嘴, overtalk_share: 0.1}
    - 你给我闭嘴
"""
    (tmp_path / "talk-over.yaml").write_text(rule, encoding="utf-8")
    engine = Engine(load_rules(tmp_path))
    from monitor.detection.examples import run_examples

    assert all(o.passed for o in run_examples(engine))
    (tmp_path / "talk-over.yaml").write_text(rule.replace("{at_least: 0.3}", "{at_least: 3}"), encoding="utf-8")
    with pytest.raises(RuleError, match=r"talk-over.yaml:\d+.*overtalk_share: expected \{at_least: N\}"):
        load_rules(tmp_path)
