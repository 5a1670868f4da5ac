"""Speech recognition speed, memory and accuracy on sample_audio/*.wav.

    python bench/asr.py                 # all three configurations, each engine's default beam
    python bench/asr.py --beam-size 1   # greedy decoding, for comparison
    python bench/asr.py --threads 1
    python bench/asr.py --device cuda   # faster-whisper float16, batched pipeline, on a GPU
    python bench/asr.py --only int8 --threads 1 --processes 2   # how the engine scales

``--processes N`` runs N copies of each configuration at once (each with ``--threads``)
and reports their combined speed: with ``--threads 2 --processes 1`` against
``--threads 1 --processes 2`` it shows what a second batch worker can add on this
machine, against a second thread in one worker.

Each configuration (faster-whisper int8, faster-whisper float32, openai-whisper
float32; all with the packaged Whisper base model) runs in its own subprocess, so the
peak resident memory it reports belongs to that configuration alone. A child loads the
model, warms it up on a few seconds of audio, then times ``turns_from_recording`` on
every file: both channels of a stereo call are transcribed, and the real-time factor
is recording seconds over wall seconds. Decoding the audio files is not timed.

Where a ``<name>.expected.json`` script lies beside a file and OpenCC is installed,
the character error rate (CER) against the script is shown too: both sides are
converted to simplified Chinese and stripped of punctuation first. Digits are left as
Whisper writes them ("3200" against "三千二百" counts as errors).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout, package not installed
    sys.path.insert(0, str(REPO))

CONFIGS = (
    ("faster-whisper", "int8"),
    ("faster-whisper", "float32"),
    ("openai-whisper", "float32"),
)
WARM_UP_SECONDS = 5.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio-dir", type=Path, default=REPO / "sample_audio")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--beam-size", type=int, default=None, help="default: each engine's own default")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="cuda: faster-whisper float16 with its batched pipeline (--batch-size)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--only", choices=["int8", "float32", "openai"],
                        help="one configuration: int8, float32 (faster-whisper) or openai")
    parser.add_argument("--processes", type=int, default=1, help="copies of each configuration run at once")
    parser.add_argument("--child", nargs=2, metavar=("ENGINE", "COMPUTE_TYPE"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    files = sorted(args.audio_dir.glob("*.wav"))
    if not files:
        print(f"no .wav files in {args.audio_dir}", file=sys.stderr)
        return 1
    if args.child:
        print(json.dumps(run_child(*args.child, files, args.threads, args.beam_size, args.device, args.batch_size)))
        return 0

    beam = args.beam_size  # None: each engine's default (greedy for int8, else 5)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, {platform.system()} {platform.release()}")
    # Other work on the machine slows every configuration: say how busy it was.
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average before the run: {load:.2f}; threads per engine: {args.threads}; beam size {beam or 'engine default (int8 greedy, otherwise 5)'}; "
          f"{len(files)} files from {args.audio_dir.name}/; model: packaged Whisper base")
    print()
    print(f"{'engine':<16}{'compute':<9}{'audio s':>8}{'wall s':>8}{'speed':>18}{'peak RSS':>10}{'load s':>8}{'CER':>7}")
    results = {}
    configs = (("faster-whisper", "float16"),) if args.device == "cuda" else CONFIGS
    if args.only:
        wanted = ("openai-whisper", "float32") if args.only == "openai" else ("faster-whisper", args.only)
        configs = tuple(c for c in configs if c == wanted)
    if args.processes > 1:
        print(f"{args.processes} copies of each configuration at once: audio and speed are their sum")
    for engine, compute_type in configs:
        command = [sys.executable, __file__, "--audio-dir", str(args.audio_dir), "--threads", str(args.threads),
                   "--device", args.device, "--batch-size", str(args.batch_size),
                   *(["--beam-size", str(beam)] if beam else []), "--child", engine, compute_type]
        children = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                    for _ in range(args.processes)]
        outputs = [(child.communicate(), child.returncode) for child in children]
        failed = [err for (_, err), code in outputs if code != 0]
        if failed:
            print(f"{engine:<16}{compute_type:<9} failed:\n{failed[0].strip()[-2000:]}")
            continue
        each = [json.loads(out.strip().splitlines()[-1]) for (out, _), _ in outputs]
        result = dict(each[0], audio_seconds=sum(r["audio_seconds"] for r in each),
                      wall_seconds=max(r["wall_seconds"] for r in each))
        results[(engine, compute_type)] = result
        speed = result["audio_seconds"] / result["wall_seconds"]
        cer = f"{result['cer']:.3f}" if result["cer"] is not None else "-"
        print(f"{engine:<16}{compute_type:<9}{result['audio_seconds']:>8.1f}{result['wall_seconds']:>8.1f}"
              f"{speed:>11.1f}× real time{result['peak_rss_mb']:>7.0f} MB{result['load_seconds']:>8.1f}{cer:>7}")

    reference = results.get(("openai-whisper", "float32"))
    if reference:
        print()
        for compute_type in ("int8", "float32"):
            fast = results.get(("faster-whisper", compute_type))
            if fast:
                ratio = reference["wall_seconds"] / fast["wall_seconds"]
                print(f"faster-whisper {compute_type} is {ratio:.1f}× as fast as openai-whisper float32")
    return 0 if len(results) == len(configs) else 1


def run_child(engine: str, compute_type: str, files: list[Path], threads: int, beam_size: int | None,
              device: str = "cpu", batch_size: int = 8) -> dict:
    from monitor.runs.executor import peak_rss_mb
    from monitor.speech import transcribe
    from monitor.speech.audio import load_recording

    started = time.perf_counter()
    if engine == "faster-whisper":
        on_gpu = {"device": device, "batch_size": batch_size} if device == "cuda" else {}
        transcriber = transcribe.FasterWhisperTranscriber(compute_type=compute_type, cpu_threads=threads,
                                                         beam_size=beam_size, **on_gpu)
    else:
        transcriber = transcribe.OpenAIWhisperTranscriber(cpu_threads=threads, beam_size=beam_size or transcribe.BEAM_SIZE)
    load_seconds = time.perf_counter() - started

    recordings = [load_recording(path) for path in files]
    first = recordings[0].channels[0]
    transcriber.transcribe(first[: int(WARM_UP_SECONDS * recordings[0].sample_rate)])

    audio_seconds = wall_seconds = 0.0
    errors = reference_chars = 0
    scored = True
    for path, recording in zip(files, recordings):
        started = time.perf_counter()
        turns = transcribe.turns_from_recording(recording, transcriber)
        wall_seconds += time.perf_counter() - started
        audio_seconds += recording.duration
        script = path.with_suffix(".expected.json")
        score = _score(script, "".join(t.text for t in turns)) if script.is_file() else None
        if score is None:
            scored = False
        else:
            errors += score[0]
            reference_chars += score[1]
    return {
        "audio_seconds": audio_seconds,
        "wall_seconds": wall_seconds,
        "load_seconds": load_seconds,
        "peak_rss_mb": peak_rss_mb(),  # this child's own, not the parent's
        "cer": errors / reference_chars if scored and reference_chars else None,
    }


_NOT_SPOKEN = re.compile(r"[\W_]+", re.UNICODE)


def _score(script: Path, hypothesis: str) -> tuple[int, int] | None:
    """(character edits, reference length) against the script, or None without OpenCC."""
    try:
        import opencc
    except ImportError:
        return None
    to_simplified = opencc.OpenCC("t2s")
    reference = "".join(turn["text"] for turn in json.loads(script.read_text(encoding="utf-8"))["turns"])
    ref = _NOT_SPOKEN.sub("", to_simplified.convert(reference))
    hyp = _NOT_SPOKEN.sub("", to_simplified.convert(hypothesis))
    return _edit_distance(ref, hyp), len(ref)


def _edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


if __name__ == "__main__":
    sys.exit(main())
