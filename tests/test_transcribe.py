"""Speech recognition: turn building (fake transcriber), guards, model packaging, and the
real packaged Whisper base model on sample_audio with both engines.

The real-model tests load the model from the installed PyPI packages (no download) into
a temporary MONITOR_MODEL_DIR; together they take about a minute on two cores.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from monitor.speech import model as asr_model
from monitor.speech import transcribe
from monitor.speech.audio import SAMPLE_RATE, Recording, load_recording
from monitor.errors import TranscriptionError
from monitor.speech.transcribe import Segment, Transcriber, merge_segments, turns_from_recording

SAMPLE_AUDIO = Path(__file__).resolve().parents[1] / "sample_audio"


def seg(start: float, end: float, text: str, avg_logprob: float = -0.2, no_speech_prob: float = 0.01,
        compression_ratio: float = 1.2) -> Segment:
    return Segment(start, end, text, avg_logprob, no_speech_prob, compression_ratio)


class FakeTranscriber:
    """Answers each channel by its first sample value: a stand-in for Whisper."""

    name = "fake"

    def __init__(self, answers: dict[float, list[Segment]]):
        self.answers = answers
        self.calls = 0

    def transcribe(self, samples: np.ndarray) -> list[Segment]:
        self.calls += 1
        return self.answers[float(samples[0])]


def recording(*channel_markers: float) -> Recording:
    channels = tuple(np.full(SAMPLE_RATE, marker, dtype=np.float32) for marker in channel_markers)
    return Recording(path="call.wav", sha256="0" * 64, duration=1.0, channels=channels)


# ---- turns from a recording ---------------------------------------------------------

LEFT, RIGHT = 0.25, 0.75
STEREO_ANSWERS = {
    LEFT: [seg(0.5, 2.0, "您好，"), seg(2.3, 4.0, "请问是王先生吗？"), seg(7.0, 9.0, "您已经逾期五天了。")],
    RIGHT: [seg(4.5, 6.0, "是我，什么事？", avg_logprob=-0.5)],
}


def test_fake_transcriber_satisfies_the_protocol() -> None:
    assert isinstance(FakeTranscriber({}), Transcriber)


def test_stereo_left_is_collector_by_default() -> None:
    turns = turns_from_recording(recording(LEFT, RIGHT), FakeTranscriber(STEREO_ANSWERS))
    assert [(t.speaker, t.text) for t in turns] == [
        ("collector", "您好，请问是王先生吗？"),  # two close segments joined, no space in Chinese
        ("debtor", "是我，什么事？"),
        ("collector", "您已经逾期五天了。"),
    ]
    assert (turns[0].start, turns[0].end) == (0.5, 4.0)
    assert turns[1].confidence == pytest.approx(math.exp(-0.5), abs=1e-4)


def test_collector_on_the_right_channel() -> None:
    turns = turns_from_recording(recording(LEFT, RIGHT), FakeTranscriber(STEREO_ANSWERS), collector_channel="right")
    assert [t.speaker for t in turns] == ["debtor", "collector", "debtor"]


def test_unknown_collector_channel_is_rejected() -> None:
    with pytest.raises(ValueError, match="collector_channel"):
        turns_from_recording(recording(LEFT, RIGHT), FakeTranscriber(STEREO_ANSWERS), collector_channel="centre")


def test_mono_turns_are_unknown_and_never_joined() -> None:
    fake = FakeTranscriber({LEFT: [seg(0.0, 1.0, "喂，"), seg(1.1, 2.0, "你好。")]})
    turns = turns_from_recording(recording(LEFT), fake)
    assert [(t.speaker, t.text) for t in turns] == [("unknown", "喂，"), ("unknown", "你好。")]
    assert fake.calls == 1


def test_same_speaker_segments_apart_stay_separate_turns() -> None:
    turns = merge_segments([("collector", seg(0.0, 1.0, "一")), ("collector", seg(2.5, 3.0, "二"))])
    assert [t.text for t in turns] == ["一", "二"]


def test_joined_turn_stops_growing_at_the_length_cap() -> None:
    pieces = [("collector", seg(i * 10.0, i * 10.0 + 9.5, text)) for i, text in enumerate("一二三四五")]
    turns = merge_segments(pieces)
    assert all(t.end - t.start <= transcribe.MAX_TURN_SECONDS for t in turns)
    assert [t.text for t in turns] == ["一二三", "四五"]


def test_latin_words_keep_a_space_when_joined() -> None:
    turns = merge_segments([("debtor", seg(0.0, 1.0, "APP")), ("debtor", seg(1.2, 2.0, "store"))])
    assert turns[0].text == "APP store"


def test_joined_confidence_weights_segments_by_length() -> None:
    turns = merge_segments([("debtor", seg(0.0, 1.0, "好", avg_logprob=-2.0)),
                            ("debtor", seg(1.1, 2.0, "我今天就申请", avg_logprob=-0.1))])
    expected = math.exp((1 * -2.0 + 6 * -0.1) / 7)
    assert turns[0].confidence == pytest.approx(expected, abs=1e-4)


def test_segments_are_ordered_by_time_across_channels() -> None:
    turns = merge_segments([("debtor", seg(3.0, 4.0, "后")), ("collector", seg(1.0, 2.0, "先"))])
    assert [t.text for t in turns] == ["先", "后"]


class FakeWord:
    def __init__(self, word: str, start: float, end: float, probability: float = 0.9):
        self.word, self.start, self.end, self.probability = word, start, end, probability


class FakeEngineSegment:
    """The shape faster-whisper yields (and openai-whisper's dicts are adapted to)."""

    def __init__(self, words: list[FakeWord]):
        self.start, self.end = words[0].start, words[-1].end
        self.text = "".join(w.word for w in words)
        self.avg_logprob, self.no_speech_prob, self.compression_ratio = -0.3, 0.05, 1.1
        self.words = words


def test_engine_segment_is_cut_where_the_other_speaker_talked() -> None:
    # The VAD glued two collector sentences together across the debtor's reply.
    words = [FakeWord("您好", 0.5, 1.0), FakeWord("，", 1.0, 1.0), FakeWord("王先生", 1.1, 1.8),
             FakeWord("逾期", 6.0, 6.5, probability=0.5), FakeWord("了", 6.5, 6.7, probability=0.5)]
    pieces = transcribe._split_at_pauses(FakeEngineSegment(words))
    assert [(p.start, p.end, p.text) for p in pieces] == [(0.5, 1.8, "您好，王先生"), (6.0, 6.7, "逾期了")]
    assert pieces[1].avg_logprob == pytest.approx(math.log(0.5))


# ---- hallucination guards -----------------------------------------------------------


@pytest.mark.parametrize("text", [
    "字幕由Amara.org社区提供",
    "請不吝點贊 訂閱 轉發 打賞支持明鏡與點點欄目",
    "请不吝点赞 订阅 转发 打赏支持明镜与点点栏目",
    "优优独播剧场——YoYo Television Series Exclusive",
    "谢谢观看！",
    "謝謝觀看",
    "   ",
])
def test_known_filler_lines_are_dropped(text: str) -> None:
    assert transcribe.is_hallucination(seg(0, 1, text))


def test_real_speech_with_a_filler_word_inside_is_kept() -> None:
    assert not transcribe.is_hallucination(seg(0, 1, "谢谢观看我们的还款提醒，请今天处理。"))
    assert not transcribe.is_hallucination(seg(0, 1, "谢谢。"))


def test_silence_decoded_with_low_confidence_is_dropped() -> None:
    assert transcribe.is_hallucination(seg(0, 1, "嗯。", avg_logprob=-1.5, no_speech_prob=0.9))
    assert not transcribe.is_hallucination(seg(0, 1, "嗯。", avg_logprob=-0.3, no_speech_prob=0.9))


def test_repetition_loop_is_dropped() -> None:
    assert transcribe.is_hallucination(seg(0, 1, "还钱" * 40, compression_ratio=8.0))


# ---- the transcriber cache ----------------------------------------------------------


def test_get_transcriber_makes_one_instance_per_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[tuple] = []

    class Slow:
        def __init__(self, model, compute_type, cpu_threads):
            made.append((model, compute_type))
            threading.Event().wait(0.05)  # widen the window for a race
            self.name = f"slow:{compute_type}"

    monkeypatch.setattr(transcribe, "FasterWhisperTranscriber", Slow)
    monkeypatch.setattr(transcribe, "_transcribers", {})
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(transcribe.get_transcriber("faster-whisper")))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1 and all(t is got[0] for t in got)
    assert transcribe.get_transcriber("faster-whisper", None, "float32") is not got[0]
    assert made == [(None, "int8"), (None, "float32")]


def test_get_transcriber_rejects_unknown_engine_and_compute_type() -> None:
    with pytest.raises(TranscriptionError, match="unknown speech engine"):
        transcribe.get_transcriber("vosk")
    with pytest.raises(TranscriptionError, match="float32"):
        transcribe.get_transcriber("openai-whisper", None, "int8")


# ---- locating and assembling the packaged model -------------------------------------


def test_model_root_follows_the_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(asr_model.MODEL_DIR_ENV, str(tmp_path / "models"))
    assert asr_model.model_root() == tmp_path / "models"
    monkeypatch.delenv(asr_model.MODEL_DIR_ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert asr_model.model_root() == tmp_path / "data" / "monitor" / "models"


def test_packaged_model_files_are_found() -> None:
    packaged, files = asr_model.find_packaged_model()
    assert packaged in asr_model.PACKAGED_MODELS
    assert {"model.bin.part1", "model.bin.part2", "config.json", "tokenizer.json"} <= set(files)
    assert all(path.is_file() for path in files.values())


def test_missing_packages_give_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(asr_model, "PACKAGED_MODELS", (asr_model.PackagedModel(("no-such-dist-a", "no-such-dist-b"), "0" * 64),))
    with pytest.raises(TranscriptionError, match="not installed: install no-such-dist-a"):
        asr_model.find_packaged_model()


def test_assembly_joins_parts_writes_hash_and_reuses(tmp_path: Path) -> None:
    part1, part2, config = tmp_path / "model.bin.part1", tmp_path / "model.bin.part2", tmp_path / "config.json"
    part1.write_bytes(b"first half ")
    part2.write_bytes(b"second half")
    config.write_text("{}")
    expected = hashlib.sha256(b"first half second half").hexdigest()
    target = tmp_path / "assembled"

    assert asr_model.assemble_model([part1, part2], [config], target, expected) == target
    assert (target / "model.bin").read_bytes() == b"first half second half"
    assert (target / "model.bin.sha256").read_text().split()[0] == expected
    assert not list(target.glob("*.tmp"))

    part2.write_bytes(b"changed, but the hash file says the model is ready")
    asr_model.assemble_model([part1, part2], [config], target, expected)
    assert (target / "model.bin").read_bytes() == b"first half second half"


def test_corrupted_part_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    packaged, files = asr_model.find_packaged_model()
    parts = [tmp_path / name for name in asr_model.PART_NAMES]
    for name, copy in zip(asr_model.PART_NAMES, parts):
        shutil.copyfile(files[name], copy)
    with open(parts[1], "r+b") as handle:  # flip one byte in the middle of part 2
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    target = tmp_path / "model"

    with pytest.raises(TranscriptionError) as caught:
        asr_model.assemble_model(parts, [files["config.json"]], target, packaged.sha256)
    message = str(caught.value)
    assert "corrupt" in message and packaged.sha256 in message and "reinstall" in message
    assert not (target / "model.bin").exists() and not (target / "model.bin.sha256").exists()
    assert not list(target.glob("*.tmp"))


# ---- the real packaged model --------------------------------------------------------


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory):
    """A fresh MONITOR_MODEL_DIR for the session: assembly and conversion really run."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(asr_model.MODEL_DIR_ENV, str(tmp_path_factory.mktemp("models")))
        yield asr_model.packaged_model_dir()


@pytest.fixture(scope="session")
def openai_checkpoint(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return asr_model.convert_ct2_to_openai_whisper(model_dir, tmp_path_factory.mktemp("openai") / "base.pt")


@pytest.mark.slow
def test_assembled_model_matches_the_recorded_hash(model_dir: Path) -> None:
    digest = hashlib.sha256((model_dir / "model.bin").read_bytes()).hexdigest()
    assert digest in {p.sha256 for p in asr_model.PACKAGED_MODELS}
    assert asr_model.packaged_model_dir() == model_dir  # reused, not rebuilt


@pytest.mark.slow
def test_converted_checkpoint_has_openai_layout(openai_checkpoint: Path) -> None:
    import torch

    checkpoint = torch.load(openai_checkpoint, map_location="cpu")
    assert checkpoint["dims"] == {
        "n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 512, "n_audio_head": 8, "n_audio_layer": 6,
        "n_vocab": 51865, "n_text_ctx": 448, "n_text_state": 512, "n_text_head": 8, "n_text_layer": 6,
    }
    state = checkpoint["model_state_dict"]
    assert "encoder.blocks.0.attn.key.weight" in state and "encoder.blocks.0.attn.key.bias" not in state
    assert state["decoder.blocks.5.cross_attn.value.weight"].shape == (512, 512)


def character_error_rate(reference: str, hypothesis: str) -> float:
    """Edit distance over reference length, after t2s and with punctuation removed."""
    import opencc

    to_simplified = opencc.OpenCC("t2s")
    ref, hyp = (re.sub(r"[\W_]+", "", to_simplified.convert(text)) for text in (reference, hypothesis))
    previous = list(range(len(hyp) + 1))
    for i, a in enumerate(ref, 1):
        current = [i]
        for j, b in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b)))
        previous = current
    return previous[-1] / len(ref)


def check_against_script(name: str, transcriber: Transcriber, max_cer: float) -> None:
    script = json.loads((SAMPLE_AUDIO / f"{name}.expected.json").read_text(encoding="utf-8"))
    turns = turns_from_recording(load_recording(SAMPLE_AUDIO / f"{name}.wav"), transcriber)

    heard = "".join(t.text for t in turns)
    said = "".join(t["text"] for t in script["turns"])
    assert character_error_rate(said, heard) < max_cer, heard
    expected_speakers = [t["speaker"] for t in script["turns"]]
    if script["channels"] == "mono":
        expected_speakers = ["unknown"] * len(expected_speakers)
    # Every scripted speaker change shows up, in order (a speaker's consecutive lines may join;
    # unknown speakers never do).
    collapsed = [s for i, s in enumerate(expected_speakers) if i == 0 or s == "unknown" or s != expected_speakers[i - 1]]
    assert [t.speaker for t in turns] == collapsed
    for turn in turns:
        assert 0.0 <= turn.start < turn.end <= script["turns"][-1]["end"] + 1.0
        assert 0.0 < turn.confidence <= 1.0


@pytest.mark.slow
def test_faster_whisper_transcribes_a_stereo_call(model_dir: Path) -> None:
    transcriber = transcribe.FasterWhisperTranscriber(compute_type="int8")
    check_against_script("third_party_contacts", transcriber, max_cer=0.2)


@pytest.mark.slow
def test_faster_whisper_turn_times_follow_the_script(model_dir: Path) -> None:
    transcriber = transcribe.FasterWhisperTranscriber(compute_type="int8")
    script = json.loads((SAMPLE_AUDIO / "compliant_reminder.expected.json").read_text(encoding="utf-8"))
    turns = turns_from_recording(load_recording(SAMPLE_AUDIO / "compliant_reminder.wav"), transcriber)
    assert [t.speaker for t in turns] == [t["speaker"] for t in script["turns"]]
    for heard, said in zip(turns, script["turns"]):
        assert heard.start == pytest.approx(said["start"], abs=0.6)
        assert heard.end == pytest.approx(said["end"], abs=0.6)


@pytest.mark.slow
def test_openai_whisper_transcribes_with_a_converted_checkpoint(openai_checkpoint: Path) -> None:
    transcriber = transcribe.OpenAIWhisperTranscriber(model=openai_checkpoint, beam_size=1)
    check_against_script("mono_threat", transcriber, max_cer=0.25)


@pytest.mark.slow
def test_openai_whisper_default_converts_the_packaged_model_once(model_dir: Path) -> None:
    checkpoint = asr_model.default_openai_checkpoint()
    assert checkpoint.parent == model_dir.parent
    modified = checkpoint.stat().st_mtime_ns
    assert asr_model.default_openai_checkpoint() == checkpoint
    assert checkpoint.stat().st_mtime_ns == modified
    transcriber = transcribe.OpenAIWhisperTranscriber(beam_size=1)
    assert transcriber.name.startswith("openai-whisper:packaged-base")
    assert transcriber.transcribe(faint_noise()) == []  # no invented subtitle credits


def faint_noise(seconds: float = 3.0) -> np.ndarray:
    """A line hiss at about -60 dBFS: above the silence cut-off, so the engine runs."""
    return (np.random.default_rng(7).standard_normal(int(seconds * SAMPLE_RATE)) * 1e-3).astype(np.float32)


@pytest.mark.slow
def test_faster_whisper_hears_nothing_in_hiss(model_dir: Path) -> None:
    assert transcribe.FasterWhisperTranscriber(compute_type="int8").transcribe(faint_noise()) == []


def test_silent_channel_never_reaches_the_engine() -> None:
    assert transcribe.is_silent(np.zeros(SAMPLE_RATE, dtype=np.float32))
    assert transcribe.is_silent(np.zeros(0, dtype=np.float32))
    assert not transcribe.is_silent(faint_noise(0.1))
    engine = object.__new__(transcribe.FasterWhisperTranscriber)  # no model: it must not be used
    assert engine.transcribe(np.zeros(SAMPLE_RATE, dtype=np.float32)) == []


def test_bad_model_path_is_a_transcription_error(tmp_path: Path) -> None:
    with pytest.raises(TranscriptionError, match="could not load faster-whisper model"):
        transcribe.FasterWhisperTranscriber(model=str(tmp_path / "missing"))


def test_uncached_openai_model_name_is_not_downloaded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(TranscriptionError, match="no download is attempted"):
        transcribe.OpenAIWhisperTranscriber(model="large-v3")
