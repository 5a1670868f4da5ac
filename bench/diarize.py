"""Diarization's cost: the time it adds to a mono call's analysis, and a worker's peak
memory with it, on mono mixes of the sample calls (scripts/make_mono_mixes.py).

    .venv/bin/python bench/diarize.py [--set plain] [--repeat 2]

For each mix, the worker's job (decode, Whisper, diarization, signals) runs with
diarization off and on, alternately, with the model already loaded; the added share is
(on - off) / off over all mixes, and the time spent inside ``diarize`` itself is
reported too (less noisy on a shared machine). Peak memory: a fresh worker process
analyses every mix with diarization and reports its maximum resident set size.
Targets: at most 30% added, under 1.5 GB.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_mixes(folder: Path, kind: str) -> list[Path]:
    sys.path.insert(0, str(REPO / "scripts"))
    import make_mono_mixes

    return make_mono_mixes.make_mixes(folder, sets=(kind,))


def worker(paths: list[str]) -> None:
    """Run as a fresh process: analyse every path with diarization, report peak RSS."""
    from monitor.runs.executor import transcribe_job
    from monitor.runs.pipeline import AsrOptions

    options = AsrOptions()
    for path in paths:
        outcome = transcribe_job(path, options)
        assert outcome.error is None, outcome.error
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_mb": round(peak_kb / 1024, 1)}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", default="plain", help="which mono-mix set (default plain)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return

    import monitor.speech.diarize as diarize_module
    from monitor.runs.pipeline import AsrOptions, transcribe_recording

    with tempfile.TemporaryDirectory() as tmp:
        wavs = make_mixes(Path(tmp), args.set)
        off, on = AsrOptions(diarize=False), AsrOptions(diarize=True)
        transcribe_recording(wavs[0], on)  # load Whisper and the speaker encoder once
        inside = []
        original = diarize_module.diarize

        def timed(*a, **k):
            started = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                inside.append(time.perf_counter() - started)

        diarize_module.diarize = timed
        totals = {"off": 0.0, "on": 0.0}
        audio = 0.0
        for _ in range(args.repeat):
            for wav in wavs:
                for name, options in (("off", off), ("on", on)):
                    started = time.perf_counter()
                    call = transcribe_recording(wav, options)
                    totals[name] += time.perf_counter() - started
                audio += call.duration
        diarize_module.diarize = original
        memory = subprocess.run([sys.executable, __file__, "--worker", *map(str, wavs)],
                                capture_output=True, text=True, check=True)
        peak = json.loads(memory.stdout.strip().splitlines()[-1])["peak_mb"]

    added = (totals["on"] - totals["off"]) / totals["off"]
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"{len(wavs)} mono mixes ({args.set}), {audio / args.repeat:.0f} s of audio, {args.repeat} rounds")
    print(f"analysis without diarization: {totals['off']:.1f} s, with: {totals['on']:.1f} s "
          f"→ diarization adds {added:.0%} (target ≤ 30%)")
    print("per call inside diarize():", " ".join(f"{t:.2f}" for t in inside))
    print(f"time inside diarize(): {sum(inside):.1f} s = {sum(inside) / totals['off']:.0%} of the analysis without it, "
          f"{sum(inside) / (audio / 60):.2f} s per minute of audio")
    print(f"worker peak memory with diarization: {peak:.0f} MB (target < 1500 MB)")


if __name__ == "__main__":
    main()
