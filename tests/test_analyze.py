"""End to end: real recordings, the real packaged Whisper model, the real rules.

`monitor analyze` over sample_audio must find each call's expected categories and
nothing on the compliant calls, with both speech engines; broken files are reported by
name while the others are still analysed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import av
import pytest

from .conftest import REPO

SAMPLES = REPO / "sample_audio"
# Every test here runs the real Whisper model over real recordings.
pytestmark = pytest.mark.slow
MONITOR = [str(REPO / ".venv/bin/monitor")] if (REPO / ".venv/bin/monitor").exists() else [sys.executable, "-m", "monitor"]


def expected(name: str) -> dict:
    return json.loads((SAMPLES / f"{name}.expected.json").read_text(encoding="utf-8"))


def analyze(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess, dict[str, dict]]:
    done = subprocess.run([*MONITOR, "analyze", "--json", *args], capture_output=True, text=True, timeout=900, cwd=cwd)
    records = [json.loads(line) for line in done.stdout.splitlines()]
    return done, {Path(r["file"]).stem: r for r in records}


@pytest.fixture(scope="module")
def faster_whisper_results(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("analyze")
    done, results = analyze(*sorted(str(p) for p in SAMPLES.glob("*.wav")), cwd=cwd)
    assert done.returncode == 0, done.stderr
    return results


def _names():
    return sorted(p.stem for p in SAMPLES.glob("*.wav"))


@pytest.mark.parametrize("name", _names())
def test_expected_categories_per_sample_call(faster_whisper_results, name):
    result = faster_whisper_results[name]
    assert result["categories"] == expected(name)["categories"], result["findings"]
    if not expected(name)["categories"]:
        assert result["findings"] == []


def test_json_output_has_turns_hash_and_duration(faster_whisper_results):
    result = faster_whisper_results["abuse_threat"]
    assert result["sha256"] == __import__("hashlib").sha256((SAMPLES / "abuse_threat.wav").read_bytes()).hexdigest()
    assert abs(result["duration"] - 21.97) < 0.1
    assert {t["speaker"] for t in result["turns"]} == {"collector", "debtor"}
    for finding in result["findings"]:
        turn = result["turns"][finding["turn"]]
        assert (finding["start"], finding["end"]) == (turn["start"], turn["end"])
        assert turn["speaker"] == "collector" and finding["speaker_verified"] is True


def test_mono_call_is_diarized_and_its_findings_stay_unverified(faster_whisper_results):
    result = faster_whisper_results["mono_threat"]
    assert {t["speaker"] for t in result["turns"]} == {"collector", "debtor"}
    assert {t["speaker_source"] for t in result["turns"]} == {"diarized"}
    assert result["roles"]["voices"] == 2 and result["roles"]["collector_voice"] in ("A", "B")
    assert result["findings"] and all(f["speaker_verified"] is False for f in result["findings"])
    assert all(result["turns"][f["turn"]]["speaker"] == "collector" for f in result["findings"])


def test_stereo_turns_keep_channel_roles_and_every_call_has_signals(faster_whisper_results):
    result = faster_whisper_results["abuse_threat"]
    assert {t["speaker_source"] for t in result["turns"]} == {"channel"}
    assert result["roles"] is None
    signals = result["signals"]
    assert signals["source"] == "channel"
    shares = {side["speaker"]: side["talk_share"] for side in signals["sides"]}
    assert set(shares) == {"collector", "debtor"} and shares["collector"] > shares["debtor"]
    assert signals["overtalk_seconds"] < 0.5  # the sample calls take turns
    assert 0.3 < signals["longest_silence"] < 1.5  # 0.4–0.9 s between turns


def test_openai_whisper_engine_finds_the_same(tmp_path):
    # One short call is enough to prove the reference engine end to end; the engine's
    # transcripts are compared in tests/test_transcribe.py.
    done, results = analyze("--engine", "openai-whisper", str(SAMPLES / "impersonation_court.wav"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert results["impersonation_court"]["categories"] == expected("impersonation_court")["categories"]


def _truncated_mp3(target: Path) -> Path:
    full = target.with_name("full.mp3")
    with av.open(str(SAMPLES / "compliant_reminder.wav")) as source, av.open(str(full), "w") as sink:
        stream = sink.add_stream("mp3", rate=16000)
        for frame in source.decode(audio=0):
            frame.pts = None
            for packet in stream.encode(frame):
                sink.mux(packet)
        for packet in stream.encode(None):
            sink.mux(packet)
    data = full.read_bytes()
    target.write_bytes(data[: len(data) // 3])
    full.unlink()
    return target


def test_broken_files_are_named_and_the_others_still_analysed(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("这是一份会议记录，不是录音。", encoding="utf-8")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    truncated = _truncated_mp3(tmp_path / "cut.mp3")
    good = Path(shutil.copy(SAMPLES / "third_party_contacts.wav", tmp_path / "good.wav"))
    done, results = analyze(str(text), str(empty), str(truncated), str(good), cwd=tmp_path)
    assert done.returncode == 1
    assert f"{text}: not an audio file" in done.stderr
    assert f"{empty}: empty file (0 bytes)" in done.stderr
    assert f"{truncated}: " in done.stderr and "incomplete recording" in done.stderr
    assert results["good"]["categories"] == ["third_party"]
    assert set(results) == {"notes", "empty", "cut", "good"}  # one line per file, broken ones too
    assert all(results[name]["error"] for name in ("notes", "empty", "cut"))
    assert "error" not in results["good"]
