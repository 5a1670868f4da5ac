"""Make mono mixes of the stereo sample calls, with the truth taken from the channels.

A debtor's own recording is mono, so diarization and role assignment are measured on
mono mixes of sample_audio/*.wav (stereo: collector left, debtor right). Each turn's
clip is cut from its own channel at the times in ``<call>.expected.json`` and laid out
again on one channel. Every set processes both sides the same way (each clip levelled
to the same loudness; the phone set puts the whole mix through one line), so no
processing mark tells the sides apart beyond what the sample voices already carry.

Sets (``<set>/<call>.wav`` plus ``<set>/<call>.expected.json`` in the sample format,
with ``channels: mono``):

  plain         the call as recorded, both sides summed
  debtor_first  the debtor speaks first (a short debtor line before the collector's)
  debtor_more   the debtor talks more than the collector (extra debtor lines)
  phone         ``plain`` through an 8 kHz phone line: 300–3400 Hz band, 8-bit mu-law,
                noise at 20 dB below the speech
  same_voice    the check: the debtor's lines replaced by uncategorised collector lines
                of other calls, so both sides are one voice with one processing; a
                diarizer should do no better than chance here (or find one voice)
  phone_same_voice  the check on a telephone line: ``same_voice`` through the line of
                ``phone`` (narrow band makes one voice's lines look less alike)

The sample debtor voice is the same synthetic voice with pitch and formants lowered by
the sample script (see sample_audio/README.md); ``same_voice`` is there to show what is
left when that difference is gone.

    python scripts/make_mono_mixes.py                 # all sets into mono_mixes/
    python scripts/make_mono_mixes.py --out DIR --sets plain phone --calls abuse_threat
"""

from __future__ import annotations

import argparse
import json
import sys
import wave
from pathlib import Path

import numpy as np
from scipy import signal as sps

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_audio"
DEFAULT_OUT = REPO / "mono_mixes"  # git-ignored
RATE = 16_000
SETS = ("plain", "debtor_first", "debtor_more", "phone", "same_voice", "phone_same_voice")
LEVEL_DBFS = -20.0  # every clip's speech RMS
MARGIN = 0.05  # seconds kept around each clip's measured speech
LEAD, TAIL = 0.5, 0.3


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as handle:
        frames = handle.readframes(handle.getnframes())
        channels = handle.getnchannels()
        assert handle.getframerate() == RATE and handle.getsampwidth() == 2, path
    audio = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    return audio.reshape(-1, channels).T


def write_wav(path: Path, audio: np.ndarray) -> None:
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(RATE)
        handle.writeframes(pcm.tobytes())


def stereo_calls() -> list[str]:
    names = []
    for truth in sorted(SAMPLES.glob("*.expected.json")):
        if json.loads(truth.read_text(encoding="utf-8"))["channels"] == "stereo":
            names.append(truth.name.removesuffix(".expected.json"))
    return names


def clips_of(name: str) -> list[dict]:
    """Each turn of a stereo sample call: its speaker, text, categories and audio."""
    audio = read_wav(SAMPLES / f"{name}.wav")
    truth = json.loads((SAMPLES / f"{name}.expected.json").read_text(encoding="utf-8"))
    clips = []
    for turn in truth["turns"]:
        channel = audio[0 if turn["speaker"] == "collector" else 1]
        lo = max(0, int((turn["start"] - MARGIN) * RATE))
        hi = min(len(channel), int((turn["end"] + MARGIN) * RATE))
        clips.append({**turn, "call": name, "audio": level(channel[lo:hi])})
    return clips


def level(clip: np.ndarray) -> np.ndarray:
    """Scale a clip so its speech (the louder half of its 20 ms frames) sits at LEVEL_DBFS."""
    frames = clip[: len(clip) // 320 * 320].reshape(-1, 320)
    energy = np.sqrt((frames ** 2).mean(axis=1))
    loud = energy[energy >= np.median(energy)]
    rms = float(np.sqrt((loud ** 2).mean())) if len(loud) else 0.0
    return clip if rms == 0 else (clip * (10 ** (LEVEL_DBFS / 20) / rms)).astype(np.float32)


def lay_out(clips: list[dict], seed: int) -> tuple[np.ndarray, list[dict]]:
    """Put clips one after another with 0.4–0.9 s gaps; return the mix and its truth."""
    rng = np.random.default_rng(seed)
    position = LEAD
    placed = []
    for clip in clips:
        placed.append((position, clip))
        position += len(clip["audio"]) / RATE + float(rng.uniform(0.4, 0.9))
    length = int((placed[-1][0] + len(placed[-1][1]["audio"]) / RATE + TAIL) * RATE)
    mix = np.zeros(length, dtype=np.float32)
    turns = []
    for start, clip in placed:
        i = int(start * RATE)
        mix[i: i + len(clip["audio"])] += clip["audio"]
        duration = len(clip["audio"]) / RATE
        turns.append({"speaker": clip["speaker"], "text": clip["text"], "start": round(start + MARGIN, 3),
                      "end": round(start + duration - MARGIN, 3), "categories": clip["categories"]})
    return mix, turns


def phone_line(mix: np.ndarray, seed: int) -> np.ndarray:
    """An 8 kHz narrow-band line with 8-bit mu-law and background noise, back at 16 kHz."""
    narrow = sps.resample_poly(mix, 1, 2)
    sos = sps.butter(4, [300, 3400], btype="bandpass", fs=8000, output="sos")
    narrow = sps.sosfilt(sos, narrow)
    mu = 255.0
    companded = np.sign(narrow) * np.log1p(mu * np.abs(np.clip(narrow, -1, 1))) / np.log1p(mu)
    quantised = np.round(companded * 127) / 127
    narrow = np.sign(quantised) * (np.power(1 + mu, np.abs(quantised)) - 1) / mu
    rng = np.random.default_rng(seed)
    noise = sps.sosfilt(sos, rng.standard_normal(len(narrow)))
    speech_rms = 10 ** (LEVEL_DBFS / 20)
    narrow = narrow + noise / np.sqrt((noise ** 2).mean()) * speech_rms * 10 ** (-20 / 20)
    return sps.resample_poly(narrow, 2, 1).astype(np.float32)


def make_set(kind: str, name: str, everything: dict[str, list[dict]]) -> tuple[np.ndarray, list[dict]]:
    clips = everything[name]
    seed = sum(map(ord, kind + name))
    others = [c for other, cs in everything.items() if other != name for c in cs]
    if kind in ("plain", "phone"):
        mix, turns = lay_out(clips, seed)
        return (phone_line(mix, seed) if kind == "phone" else mix), turns
    if kind == "debtor_first":
        opener = min((c for c in others if c["speaker"] == "debtor"), key=lambda c: len(c["audio"]))
        return lay_out([opener, *clips], seed)
    if kind == "debtor_more":
        extra = iter(sorted((c for c in others if c["speaker"] == "debtor"), key=lambda c: -len(c["audio"])))
        out, talk = [], {"collector": 0.0, "debtor": 0.0}
        for clip in clips:
            out.append(clip)
            talk[clip["speaker"]] += len(clip["audio"])
            if clip["speaker"] == "debtor":
                for more in extra:
                    out.append(more)
                    talk["debtor"] += len(more["audio"])
                    break
        # Keep adding debtor lines at the end until the debtor clearly talks more.
        for more in extra:
            if talk["debtor"] > 1.3 * talk["collector"]:
                break
            out.append(more)
            talk["debtor"] += len(more["audio"])
        return lay_out(out, seed)
    if kind == "same_voice":
        pool = sorted((c for c in others if c["speaker"] == "collector" and not c["categories"]),
                      key=lambda c: len(c["audio"]))
        out, used = [], set()
        for clip in clips:
            if clip["speaker"] != "debtor":
                out.append(clip)
                continue
            # The unused collector line closest in length stands in for the debtor's.
            index = min((i for i in range(len(pool)) if i not in used),
                        key=lambda i: abs(len(pool[i]["audio"]) - len(clip["audio"])))
            used.add(index)
            out.append({**pool[index], "speaker": "debtor", "categories": []})
        return lay_out(out, seed)
    if kind == "phone_same_voice":
        mix, turns = make_set("same_voice", name, everything)
        return phone_line(mix, seed), turns
    raise ValueError(kind)


def make_mixes(out_dir: Path, sets=SETS, calls=None) -> list[Path]:
    """Write the mixes; returns the paths of the wavs made."""
    names = stereo_calls()
    everything = {name: clips_of(name) for name in names}
    made = []
    for kind in sets:
        folder = Path(out_dir) / kind
        folder.mkdir(parents=True, exist_ok=True)
        for name in calls or names:
            mix, turns = make_set(kind, name, everything)
            made.append(write_mix(folder, name, kind, mix, turns))
    return made


def write_mix(folder: Path, name: str, kind: str, mix: np.ndarray, turns: list[dict]) -> Path:
    """``<name>.wav`` (peak at most 0.95) and its truth ``<name>.expected.json``."""
    peak = float(np.max(np.abs(mix)))
    if peak > 0.95:
        mix = mix * (0.95 / peak)
    write_wav(folder / f"{name}.wav", mix)
    categories = sorted({c for t in turns for c in t["categories"]})
    truth = {"categories": categories, "channels": "mono", "set": kind, "source": f"{name}.wav", "turns": turns}
    (folder / f"{name}.expected.json").write_text(json.dumps(truth, ensure_ascii=False, indent=2) + "\n",
                                                  encoding="utf-8")
    return folder / f"{name}.wav"


def score_roles(truth_turns: list[dict], turns: list[dict], findings: list[dict]) -> dict:
    """How a transcript of a mix matches its truth. ``turns`` and ``findings`` as in
    ``monitor analyze --json``. Returns the share of truth speech time whose transcript
    turn has the right role (``unknown`` counts as wrong), and the findings that lie
    mostly on a debtor's line."""
    def overlap(a0, a1, b0, b1):
        return max(0.0, min(a1, b1) - max(a0, b0))

    total = sum(t["end"] - t["start"] for t in truth_turns)
    right = sum(
        overlap(t["start"], t["end"], u["start"], u["end"])
        for t in truth_turns for u in turns if u["speaker"] == t["speaker"]
    )
    on_debtor = []
    for finding in findings:
        if finding.get("start") is None:
            continue
        best = max(truth_turns, key=lambda t: overlap(t["start"], t["end"], finding["start"], finding["end"]))
        if best["speaker"] == "debtor" and overlap(best["start"], best["end"], finding["start"], finding["end"]) > 0:
            on_debtor.append(finding)
    return {"speech_seconds": round(total, 2), "right_seconds": round(right, 2),
            "right_share": round(right / total, 3) if total else 0.0, "findings_on_debtor": on_debtor}


def score_voices(truth_turns: list[dict], turns: list[dict]) -> dict:
    """How well the voices were told apart, whatever the roles: the share of truth
    speech time whose transcript turn has the voice ("A"/"B") of its side, under the
    better of the two ways of naming the voices. A call heard as one voice scores the
    larger side's share."""
    def overlap(a0, a1, b0, b1):
        return max(0.0, min(a1, b1) - max(a0, b0))

    total = sum(t["end"] - t["start"] for t in truth_turns)
    best = 0.0
    for naming in ({"A": "collector", "B": "debtor"}, {"A": "debtor", "B": "collector"}):
        right = sum(
            overlap(t["start"], t["end"], u["start"], u["end"])
            for t in truth_turns for u in turns if naming.get(u.get("voice")) == t["speaker"]
        )
        best = max(best, right)
    return {"speech_seconds": round(total, 2), "right_seconds": round(best, 2),
            "right_share": round(best / total, 3) if total else 0.0}


def cli(argv: list[str] | None, doc: str, default_out: Path, sets: tuple[str, ...], make) -> int:
    """The command line of a mix script: --out, --sets, --calls, then ``make(out, sets,
    calls)``, which returns the wavs it wrote."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=default_out,
                        help=f"folder for the sets (default: {default_out.name}/)")
    parser.add_argument("--sets", nargs="+", choices=sets, default=list(sets))
    parser.add_argument("--calls", nargs="+", help="stereo sample calls to mix (default: all)")
    args = parser.parse_args(argv)
    unknown = set(args.calls or ()) - set(stereo_calls())
    if unknown:
        parser.error(f"not a stereo sample call: {', '.join(sorted(unknown))}")
    made = make(args.out, args.sets, args.calls)
    print(f"{len(made)} mixes in {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli(argv, __doc__, DEFAULT_OUT, SETS, make_mixes)


if __name__ == "__main__":
    sys.exit(main())
