"""Where transcription runs: a local process pool, or an existing Dask cluster.

Workers only turn recordings into transcripts (the slow, parallel part); the
coordinating process runs the rules and is the only one that writes to SQLite. Each
worker process loads its Whisper model once and keeps it for every job it gets.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Iterable, Iterator

from monitor.errors import MonitorError, import_optional
from monitor.models import Call
from monitor.runs.pipeline import AsrOptions, transcribe_recording


@dataclass(frozen=True)
class Transcribed:
    """The outcome of one job: a call, or the reason there is none."""

    path: str
    call: Call | None = None
    error: str | None = None


def transcribe_job(path: str, options: AsrOptions) -> Transcribed:
    """Runs in a worker. Never raises for a bad recording: a broken file is a result."""
    try:
        return Transcribed(path, call=transcribe_recording(path, options))
    except MonitorError as error:
        return Transcribed(path, error=str(error))
    except Exception as error:  # a decoder or model crash on one file must not stop a batch
        return Transcribed(path, error=f"{path}: {type(error).__name__}: {error}")


def _warm_worker(options: AsrOptions) -> None:
    from monitor.speech.transcribe import get_transcriber

    get_transcriber(options.engine, options.model, options.compute_type, options.cpu_threads)


class InlineExecutor:
    """Jobs run one by one in this process (``monitor analyze``: a few files, no pool
    start-up); the model is loaded once and kept."""

    def __init__(self, options: AsrOptions):
        self.options = options

    def run(self, paths: Iterable[str]) -> Iterator[Transcribed]:
        for path in paths:
            yield transcribe_job(path, self.options)


class LocalExecutor:
    """A pool of worker processes on this machine (spawned, not forked: model
    libraries keep threads that do not survive a fork)."""

    def __init__(self, workers: int, options: AsrOptions):
        self.workers = max(1, workers)
        threads = options.cpu_threads or max(1, (os.cpu_count() or 1) // self.workers)
        self.options = AsrOptions(**{**options.__dict__, "cpu_threads": threads})

    def run(self, paths: Iterable[str]) -> Iterator[Transcribed]:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(self.workers, mp_context=context, initializer=_warm_worker, initargs=(self.options,)) as pool:
            pending: set[Future] = set()
            for path in paths:
                pending.add(pool.submit(transcribe_job, path, self.options))
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()


class DaskExecutor:
    """Jobs sent to an existing Dask distributed scheduler (`dask scheduler`, workers
    started with `dask worker ADDRESS`). Workers read the recordings by path, so the
    archive must be mounted at the same path on every worker."""

    def __init__(self, address: str, options: AsrOptions):
        self.address = address
        self.options = options

    def run(self, paths: Iterable[str]) -> Iterator[Transcribed]:
        distributed = import_optional("distributed", "running on a Dask cluster", "cluster")
        Client, as_completed = distributed.Client, distributed.as_completed

        try:
            client = Client(self.address, timeout="20s")
        except OSError as error:
            raise MonitorError(f"cannot reach the Dask scheduler at {self.address}: {error}") from error
        with client:
            futures = {client.submit(transcribe_job, path, self.options, pure=False): path for path in paths}
            for future in as_completed(list(futures)):
                try:
                    yield future.result()
                except Exception as error:  # a worker died on this job
                    yield Transcribed(futures[future], error=f"worker failure: {error}")


def make_executor(workers: int, scheduler: str | None, options: AsrOptions):
    return DaskExecutor(scheduler, options) if scheduler else LocalExecutor(workers, options)
