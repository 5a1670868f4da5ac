"""Batch throughput: calls per minute with 1 and 2 local workers, and the speed-up.

    .venv/bin/python bench/batch.py [--copies N]

Copies of sample_audio (made distinct by a trailing WAV chunk, so each has its own hash)
go through `run_batch` into a fresh database for each worker count. Prints figures.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import struct
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]


def make_copies(folder: Path, copies: int) -> float:
    """Write ``copies`` distinct copies of every sample; return total audio seconds."""
    from monitor.speech.audio import load_recording

    total = 0.0
    for wav in sorted((REPO / "sample_audio").glob("*.wav")):
        seconds = load_recording(wav).duration
        for n in range(copies):
            target = folder / f"{wav.stem}-{n}.wav"
            shutil.copy(wav, target)
            # An unknown RIFF chunk after the audio: decoders skip it, the hash differs.
            with open(target, "ab") as handle:
                handle.write(b"bnch" + struct.pack("<I", 4) + struct.pack("<I", n))
            total += seconds
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=2, help="copies of each sample recording")
    args = parser.parse_args()

    from monitor.runs.batch import run_batch
    from monitor.runs.executor import LocalExecutor
    from monitor.runs.pipeline import AsrOptions
    from monitor.detection.examples import load_engine
    from monitor.store import Store

    engine = load_engine()
    print(f"machine: {platform.machine()}, {__import__('os').cpu_count()} cores; faster-whisper int8, packaged base model")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "night"
        source.mkdir()
        audio_seconds = make_copies(source, args.copies)
        calls = len(list(source.glob("*.wav")))
        print(f"input: {calls} recordings, {audio_seconds / 60:.1f} min of audio")
        for workers in (1, 2):
            store = Store(Path(tmp) / f"w{workers}.db")
            started = time.perf_counter()
            report = run_batch(source, store, engine, LocalExecutor(workers, AsrOptions()), ZoneInfo("Asia/Shanghai"),
                               log=lambda line: None)
            seconds = time.perf_counter() - started
            assert report.transcribed == calls, report.summary()
            results[workers] = calls / seconds * 60
            print(f"{workers} worker(s): {seconds:6.1f} s  {results[workers]:6.1f} calls/min  "
                  f"{audio_seconds / seconds:5.1f}× real time (includes start-up and model load per worker)")
    print(f"speed-up with 2 workers: {results[2] / results[1]:.2f}×")


if __name__ == "__main__":
    main()
