"""Nightly batch throughput: today's behaviour against collector side first.

    .venv/bin/python bench/batch.py [--calls 20] [--compliant 0.8] [--workers 1,2] [--device auto]

A night is built from sample_audio: ``--calls`` stereo recordings of which a share
``--compliant`` are copies of the compliant samples and the rest copies of the flagged
ones. Each copy has a different length of silence appended (20 ms steps), so every file
has its own hash and a slightly different signal. For each worker count the night goes
through ``run_batch`` into a fresh database, once with ``debtor_side=always`` (today's
behaviour: both channels of every call) and once with ``when-flagged`` (collector side
first). Printed per run: wall time, calls/min, recording-hours per wall-hour, calls/min
per core (wall), calls per CPU-minute (processor time of the coordinator and its
workers: the figure other load on a shared machine disturbs least), and the peak
resident memory of each worker; then the speed-ups, and a check that both policies
stored the same findings. Mono calls with diarization are measured
when the tree has a diarization stage. Timings include pool start-up and model loading.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
import wave
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout, package not installed
    sys.path.insert(0, str(REPO))

COMPLIANT = ("compliant_reminder", "compliant_instalment")
FLAGGED = ("abuse_threat", "third_party_contacts", "cash_personal_account", "impersonation_court")
SILENCE_STEP_SECONDS = 0.02


def write_copy(source: Path, target: Path, n: int) -> float:
    """``source`` with n × 20 ms of silence appended; returns its length in seconds."""
    with wave.open(str(source), "rb") as reader:
        params = reader.getparams()
        frames = reader.readframes(params.nframes)
    padding = int(params.framerate * SILENCE_STEP_SECONDS * (n + 1))
    with wave.open(str(target), "wb") as writer:
        writer.setparams(params)
        writer.writeframes(frames + b"\x00" * padding * params.sampwidth * params.nchannels)
    return (params.nframes + padding) / params.framerate


def build_night(folder: Path, calls: int, compliant_share: float) -> tuple[float, int]:
    """The night's recordings; returns (audio seconds, compliant calls)."""
    compliant = round(calls * compliant_share)
    names = [COMPLIANT[i % len(COMPLIANT)] for i in range(compliant)]
    names += [FLAGGED[i % len(FLAGGED)] for i in range(calls - compliant)]
    seconds = 0.0
    for n, name in enumerate(names):
        seconds += write_copy(REPO / "sample_audio" / f"{name}.wav", folder / f"{name}-{n:03d}.wav", n)
    return seconds, compliant


def cpu_seconds() -> float:
    """Processor time of this process and its finished children (the joined workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="recordings in the night")
    parser.add_argument("--compliant", type=float, default=0.8, help="share of compliant calls")
    parser.add_argument("--workers", default="1,2", help="worker counts to measure, comma-separated")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args()
    worker_counts = [int(w) for w in args.workers.split(",")]

    from monitor.detection.examples import load_engine
    from monitor.runs.batch import run_batch
    from monitor.runs.executor import LocalExecutor, available_cores
    from monitor.runs.pipeline import AsrOptions
    from monitor.store import Store

    engine = load_engine()
    cores = available_cores()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {platform.machine()}, {cores} cores, load average {load:.2f} before the run; "
          f"faster-whisper, packaged base model, device {args.device}")
    results: dict[tuple[str, int], float] = {}
    findings: dict[tuple[str, int], list] = {}
    cpu: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        night = Path(tmp) / "night"
        night.mkdir()
        audio_seconds, compliant = build_night(night, args.calls, args.compliant)
        print(f"night: {args.calls} stereo calls ({compliant} compliant, {args.calls - compliant} flagged), "
              f"{audio_seconds / 60:.1f} min of audio")
        print()
        print(f"{'policy':<14}{'workers':>8}{'threads':>8}{'wall s':>8}{'calls/min':>10}{'rec-h/h':>9}"
              f"{'/core':>7}{'/CPU-min':>9}{'skipped':>8}  peak RSS per worker (MB)")
        for workers in worker_counts:
            for policy in ("always", "when-flagged"):
                store = Store(Path(tmp) / f"{policy}-{workers}.db")
                executor = LocalExecutor(workers, AsrOptions(device=args.device))
                started, cpu_started = time.perf_counter(), cpu_seconds()
                report = run_batch(night, store, engine, executor, ZoneInfo("Asia/Shanghai"),
                                   log=lambda line: None, debtor_side=policy)
                seconds = time.perf_counter() - started
                used = cpu_seconds() - cpu_started  # the pool's workers are joined by now
                assert report.transcribed == args.calls and not report.failed, report.summary()
                per_minute = args.calls / seconds * 60
                results[policy, workers] = per_minute
                findings[policy, workers] = sorted((f.id, f.finding.category) for f in store.findings())
                peaks = ", ".join(f"{mb:.0f}" for _, mb in sorted(executor.peak_rss_mb.items()))
                print(f"{policy:<14}{workers:>8}{executor.options.cpu_threads:>8}{seconds:>8.1f}{per_minute:>10.1f}"
                      f"{audio_seconds / seconds:>9.1f}{per_minute / cores:>7.1f}{args.calls / used * 60:>9.1f}"
                      f"{report.debtor_side_skipped:>8}  {peaks}")
                cpu[policy, workers] = used
                if executor.device_note and workers == worker_counts[0] and policy == "always":
                    print(f"  ({executor.device_note})")
                store.close()
    print()
    for workers in worker_counts:
        print(f"collector first vs always, {workers} worker(s): "
              f"{results['when-flagged', workers] / results['always', workers]:.2f}× calls/min, "
              f"{cpu['always', workers] / cpu['when-flagged', workers]:.2f}× calls per CPU-minute")
    if len(worker_counts) > 1:
        low, high = worker_counts[0], worker_counts[-1]
        for policy in ("always", "when-flagged"):
            print(f"{low} → {high} workers, {policy}: {results[policy, high] / results[policy, low]:.2f}×")
        print(f"best collector-first against today's (always, {low} worker): "
              f"{results['when-flagged', high] / results['always', low]:.2f}×")
    same = all(findings["when-flagged", w] == findings["always", w] for w in worker_counts)
    print(f"findings identical under both policies: {'yes' if same else 'NO'}")
    print(f"load average after the run: {os.getloadavg()[0]:.2f}")
    print(f"coordinator peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if not any((REPO / "monitor" / "speech").glob("diari*.py")):
        print("mono calls with diarization: skipped (no diarization stage in this tree)")


if __name__ == "__main__":
    main()
