"""Diarization's cost: the time it adds to a mono call's analysis, and a worker's peak
memory with it, on mono mixes of the sample calls (scripts/make_mono_mixes.py).

    .venv/bin/python bench/diarize.py [--set plain] [--repeat 2]
    .venv/bin/python bench/diarize.py --accuracy        # right-role share per mix set
    .venv/bin/python bench/diarize.py --accuracy --pairs   # the same on really different voices

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
import os
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


def accuracy(pairs: bool = False) -> None:
    """Per mix set, end to end (Whisper, diarization, roles): the share of speech time
    with the right role, the share whose voice was told apart from the other side's
    whatever the roles, and the character error rate of the transcript. ``pairs``:
    the different-voice sets of make_voice_pair_mixes.py instead of the sample mixes."""
    import asr
    import make_mono_mixes
    import make_voice_pair_mixes
    from monitor.detection.examples import load_engine
    from monitor.runs.executor import InlineExecutor
    from monitor.runs.pipeline import AsrOptions, analyse_files
    from monitor.runs.roles import turn_signals

    maker = make_voice_pair_mixes if pairs else make_mono_mixes
    engine = load_engine()
    with tempfile.TemporaryDirectory() as tmp:
        maker.make_mixes(Path(tmp))
        for kind in maker.SETS:
            wavs = sorted((Path(tmp) / kind).glob("*.wav"))
            sums = dict.fromkeys(("right", "apart", "total", "right_two", "total_two", "edits", "chars"), 0.0)
            lines = []
            for wav, outcome in zip(wavs, analyse_files(wavs, engine, InlineExecutor(AsrOptions()))):
                script = wav.with_suffix("").with_suffix(".expected.json")
                truth = json.loads(script.read_text(encoding="utf-8"))
                result = outcome.result
                turns = [{"speaker": t.speaker, "start": t.start, "end": t.end, **turn_signals(t)} for t in result.call.turns]
                findings = [f.to_contract() for f in result.findings]
                score = make_mono_mixes.score_roles(truth["turns"], turns, findings)
                apart = make_mono_mixes.score_voices(truth["turns"], turns)
                edits, chars = asr._score(script, "".join(t.text for t in result.call.turns)) or (0, 0)
                missing = sorted(set(truth["categories"]) - set(result.categories))
                voices = result.call.roles.voices if result.call.roles else None
                sums["right"] += score["right_seconds"]
                sums["apart"] += apart["right_seconds"]
                sums["total"] += score["speech_seconds"]
                sums["edits"] += edits
                sums["chars"] += chars
                if voices == 2:
                    sums["right_two"] += score["right_seconds"]
                    sums["total_two"] += score["speech_seconds"]
                lines.append(f"  {wav.stem:24s} voices {voices}  right {score['right_share']:.3f}  "
                             f"apart {apart['right_share']:.3f}  CER {edits / chars if chars else 0:.3f}  "
                             f"on debtor lines {len(score['findings_on_debtor'])}  missing {missing or '-'}")
            two = sums["right_two"] / sums["total_two"] if sums["total_two"] else None
            print(f"{kind}: right role {sums['right'] / sums['total']:.3f} of speech time"
                  + (f" ({two:.3f} on the calls heard as two voices)" if two is not None else "")
                  + f", voices told apart {sums['apart'] / sums['total']:.3f}"
                  + (f", CER {sums['edits'] / sums['chars']:.3f}" if sums["chars"] else ""))
            print("\n".join(lines), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accuracy", action="store_true", help="right-role share per mix set instead of speed")
    parser.add_argument("--pairs", action="store_true",
                        help="with --accuracy: the different-voice mixes (scripts/make_voice_pair_mixes.py, needs espeak-ng)")
    parser.add_argument("--set", default="plain", help="which mono-mix set (default plain)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    if args.accuracy:
        sys.path.insert(0, str(REPO / "scripts"))
        accuracy(args.pairs)
        return

    import monitor.speech.diarize as diarize_module
    from monitor.runs.pipeline import AsrOptions, transcribe_recording

    with tempfile.TemporaryDirectory() as tmp:
        wavs = make_mixes(Path(tmp), args.set)
        off, on = AsrOptions(diarize=False), AsrOptions(diarize=True)
        transcribe_recording(wavs[0], on)  # load Whisper and the speaker encoder once
        inside, inside_cpu = [], []
        original = diarize_module.diarize

        def timed(*a, **k):
            started, started_cpu = time.perf_counter(), time.process_time()
            try:
                return original(*a, **k)
            finally:
                inside.append(time.perf_counter() - started)
                inside_cpu.append(time.process_time() - started_cpu)

        diarize_module.diarize = timed
        # Wall clock and this process's CPU time (all its threads): on a machine shared
        # with other work the CPU figures are the steadier ones.
        totals = {"off": 0.0, "on": 0.0}
        cpu = {"off": 0.0, "on": 0.0}
        audio = 0.0
        for _ in range(args.repeat):
            for wav in wavs:
                for name, options in (("off", off), ("on", on)):
                    started, started_cpu = time.perf_counter(), time.process_time()
                    call = transcribe_recording(wav, options)
                    totals[name] += time.perf_counter() - started
                    cpu[name] += time.process_time() - started_cpu
                audio += call.duration
        diarize_module.diarize = original
        memory = subprocess.run([sys.executable, __file__, "--worker", *map(str, wavs)],
                                capture_output=True, text=True, check=True)
        peak = json.loads(memory.stdout.strip().splitlines()[-1])["peak_mb"]

    added = (totals["on"] - totals["off"]) / totals["off"]
    added_cpu = (cpu["on"] - cpu["off"]) / cpu["off"]
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end")
    print(f"{len(wavs)} mono mixes ({args.set}), {audio / args.repeat:.0f} s of audio, {args.repeat} rounds")
    print(f"analysis without diarization: {totals['off']:.1f} s, with: {totals['on']:.1f} s "
          f"→ diarization adds {added:.0%} (target ≤ 30%)")
    print(f"CPU time without diarization: {cpu['off']:.1f} s, with: {cpu['on']:.1f} s → adds {added_cpu:.0%}; "
          f"inside diarize(): {sum(inside_cpu):.1f} s = {sum(inside_cpu) / cpu['off']:.0%}")
    print("per call inside diarize():", " ".join(f"{t:.2f}" for t in inside))
    print(f"time inside diarize(): {sum(inside):.1f} s = {sum(inside) / totals['off']:.0%} of the analysis without it, "
          f"{sum(inside) / (audio / 60):.2f} s per minute of audio")
    print(f"worker peak memory with diarization: {peak:.0f} MB (target < 1500 MB)")


if __name__ == "__main__":
    main()
