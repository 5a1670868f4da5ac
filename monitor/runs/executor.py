"""Where transcription runs: in this process, a local pool of worker processes, or an
existing Dask cluster.

Workers only turn recordings into transcripts (the slow, parallel part); the
coordinating process runs the rules and is the only one that writes to SQLite. Each
worker process loads its Whisper model once and keeps it for every task it gets.

Every executor offers a ``session()``: tasks (a path and the channels wanted) are
submitted to it, and ``results()`` yields each outcome as it completes, including those
of tasks submitted while iterating (the collector-first batch asks for a debtor channel
after seeing the collector's). ``run(paths)`` is the plain form: both channels of every
path.

Keeping every core busy (local pool):

- threads per worker follow the worker count: ``cores // workers`` intra-op threads
  for CTranslate2 (or torch), and the OpenMP/BLAS pools of each worker are capped to
  the same number before any model library loads, so the workers never oversubscribe;
- each worker decodes its next recording in a thread while the model transcribes the
  current one (it takes one task ahead from the queue);
- the queue holds every task from the start, so a worker never waits for the
  coordinator; results come back on a queue and are consumed as they complete, and a
  task the coordinator adds later (a debtor channel) goes to a priority queue that
  workers look at first, so a flagged call is finished and stored promptly.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import resource
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Iterable, Iterator

from monitor.errors import MonitorError, import_optional
from monitor.models import Call
from monitor.runs.pipeline import AsrOptions, Heard, decode, get_options_transcriber, transcribe_part

# Environment variables that size the thread pools of the libraries under the engines
# (CTranslate2 and PyTorch use OpenMP; numpy's BLAS has its own).
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
# How often an idle worker looks at the priority queue and whether its coordinator is
# still there (a coordinator killed with SIGKILL must not leave workers behind).
POLL_SECONDS = 0.25
# A pool gives up after this many unexpected worker deaths (a model that crashes on load).
MAX_RESTARTS_PER_WORKER = 2


@dataclass(frozen=True)
class Transcribed:
    """The outcome of one task: the call (and what was heard, for the halves of a stereo
    call), or the reason there is none."""

    path: str
    call: Call | None = None
    error: str | None = None
    side: str = "both"
    heard: Heard | None = None


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Intra-op threads for each of ``workers`` processes: the cores shared out, at least one."""
    return max(1, (cores or available_cores()) // max(1, workers))


def transcribe_job(path: str, options: AsrOptions, side: str = "both", recording=None) -> Transcribed:
    """Runs in a worker. Never raises for a bad recording: a broken file is a result.
    ``recording``: a future of the decoded recording (decoded ahead in a thread)."""
    try:
        decoded = recording.result() if recording is not None else None
        heard = transcribe_part(path, options, side, decoded)
        return Transcribed(path, call=heard.call, side=side, heard=heard)
    except MonitorError as error:
        return Transcribed(path, error=str(error), side=side)
    except Exception as error:  # a decoder or model crash on one file must not stop a batch
        return Transcribed(path, error=f"{path}: {type(error).__name__}: {error}", side=side)


def resolve_device(options: AsrOptions) -> tuple[AsrOptions, str]:
    """``options`` with ``auto`` resolved on this machine, and the note saying what was
    chosen (empty for a plain ``cpu``). ``cuda`` without a device raises here, before
    any worker starts."""
    from monitor.speech.transcribe import choose_device

    choice = choose_device(options.device, options.engine)
    return replace(options, device=choice.device), choice.note


class InlineExecutor:
    """Tasks run one by one in this process (``monitor analyze``: a few files, no pool
    start-up); the model is loaded once and kept."""

    def __init__(self, options: AsrOptions):
        self.options, self.device_note = resolve_device(options)

    @contextmanager
    def session(self):
        yield _InlineSession(self.options)

    def run(self, paths: Iterable[str]) -> Iterator[Transcribed]:
        with self.session() as session:
            for path in paths:
                session.submit(path)
            yield from session.results()


class _InlineSession:
    def __init__(self, options: AsrOptions):
        self.options = options
        self.tasks: deque = deque()

    def submit(self, path: str, side: str = "both", urgent: bool = False) -> None:
        (self.tasks.appendleft if urgent else self.tasks.append)((path, side))

    def results(self) -> Iterator[Transcribed]:
        while self.tasks:
            path, side = self.tasks.popleft()
            yield transcribe_job(path, self.options, side)


# --- the local pool ----------------------------------------------------------------------


def _cap_threads(threads: int | None) -> None:
    if threads:
        for name in THREAD_ENV:
            os.environ[name] = str(threads)


def peak_rss_mb() -> float:
    """This worker's own peak resident memory. Not ru_maxrss: a spawned child starts
    with its parent's peak there (the kernel folds the parent's high-water mark in at
    exec), so a worker started by a large process would report that process's memory.
    VmHWM belongs to the worker's own address space."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    # No /proc: ru_maxrss, in kilobytes on Linux (bytes on macOS; the pool is for Linux servers).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _worker_main(number: int, options: AsrOptions, tasks, urgent, results) -> None:
    """A pool worker: load the model, then take tasks until told to stop (None)."""
    _cap_threads(options.cpu_threads)  # before numpy, CTranslate2 or torch are imported
    from concurrent.futures import ThreadPoolExecutor

    try:
        get_options_transcriber(options)
    except Exception as error:
        results.put(("fatal", number, f"{type(error).__name__}: {error}"))
        return
    decoder = ThreadPoolExecutor(1, thread_name_prefix="decode")
    coordinator = os.getppid()

    def take(block: bool):
        """The next task (priority queue first), or None when none is there (block:
        wait for one); "stop" when the pool is closing."""
        while True:
            for source in (urgent, tasks):
                try:
                    task = source.get_nowait()
                except queue_module.Empty:
                    continue
                if task is None:
                    return "stop"
                results.put(("took", number, task))
                return task, decoder.submit(decode, task[0], options)
            if not block:
                return None
            if os.getppid() != coordinator:
                return "stop"  # the coordinator is gone: nobody will read the results
            try:
                task = tasks.get(timeout=POLL_SECONDS)
            except queue_module.Empty:
                continue
            if task is None:
                return "stop"
            results.put(("took", number, task))
            return task, decoder.submit(decode, task[0], options)

    ahead = None
    stopping = False
    while not stopping:
        current = ahead or take(block=True)
        ahead = None
        if current == "stop":
            break
        # Take the next task now, so its recording decodes while this one is transcribed.
        following = take(block=False)
        if following == "stop":
            stopping = True
        else:
            ahead = following
        (path, side), recording = current
        outcome = transcribe_job(path, options, side, recording)
        results.put(("done", number, outcome, peak_rss_mb()))
    decoder.shutdown(wait=False)
    # Results nobody reads (a coordinator gone) must not keep this process alive.
    results.cancel_join_thread()


class LocalExecutor:
    """A pool of worker processes on this machine (spawned, not forked: model
    libraries keep threads that do not survive a fork). Several workers may share one
    GPU: each loads its own copy of the model onto it."""

    def __init__(self, workers: int, options: AsrOptions):
        self.workers = max(1, workers)
        options, self.device_note = resolve_device(options)
        threads = options.cpu_threads or threads_per_worker(self.workers)
        self.options = replace(options, cpu_threads=threads)
        self.peak_rss_mb: dict[int, float] = {}  # worker number → peak resident memory seen

    @contextmanager
    def session(self):
        session = _PoolSession(self.workers, self.options, self.peak_rss_mb)
        try:
            yield session
        finally:
            session.close()

    def run(self, paths: Iterable[str]) -> Iterator[Transcribed]:
        with self.session() as session:
            for path in paths:
                session.submit(path)
            yield from session.results()


class _PoolSession:
    def __init__(self, workers: int, options: AsrOptions, peaks: dict[int, float]):
        self.context = multiprocessing.get_context("spawn")
        self.options = options
        self.tasks = self.context.Queue()
        self.urgent = self.context.Queue()
        self.outcomes = self.context.Queue()
        self.pending: dict[tuple[str, str], int] = {}  # task → times submitted and not yet done
        self.held: dict[int, list[tuple[str, str]]] = {}  # worker → tasks it took, not done
        self.processes: dict[int, multiprocessing.Process] = {}
        self.peaks = peaks
        self.restarts = 0
        self.max_restarts = MAX_RESTARTS_PER_WORKER * workers
        for number in range(workers):
            self._start(number)

    def _start(self, number: int) -> None:
        process = self.context.Process(target=_worker_main, name=f"monitor-asr-{number}", daemon=True,
                                       args=(number, self.options, self.tasks, self.urgent, self.outcomes))
        process.start()
        self.processes[number] = process
        self.held[number] = []

    def submit(self, path: str, side: str = "both", urgent: bool = False) -> None:
        task = (path, side)
        self.pending[task] = self.pending.get(task, 0) + 1
        (self.urgent if urgent else self.tasks).put(task)

    def _finish(self, task) -> None:
        self.pending[task] -= 1
        if not self.pending[task]:
            del self.pending[task]

    def results(self) -> Iterator[Transcribed]:
        while self.pending:
            try:
                message = self.outcomes.get(timeout=1.0)
            except queue_module.Empty:
                yield from self._check_workers()
                continue
            kind, number = message[0], message[1]
            if kind == "took":
                self.held[number].append(tuple(message[2]))
            elif kind == "done":
                outcome = message[2]
                task = (outcome.path, outcome.side)
                if task in self.held[number]:
                    self.held[number].remove(task)
                self.peaks[number] = max(self.peaks.get(number, 0.0), message[3])
                if task in self.pending:
                    self._finish(task)
                    yield outcome
            elif kind == "fatal":
                # The model cannot load: every task would fail the same way.
                for path, side in list(self.pending):
                    yield Transcribed(path, error=f"{path}: the speech model could not be loaded: {message[2]}", side=side)
                self.pending.clear()

    def _check_workers(self) -> Iterator[Transcribed]:
        """A worker that died (killed, out of memory, a crash in native code) fails the
        tasks it held; a new one takes its place."""
        for number, process in list(self.processes.items()):
            if process.is_alive():
                continue
            for path, side in self.held.pop(number, []):
                if (path, side) in self.pending:
                    self._finish((path, side))
                    yield Transcribed(path, error=f"{path}: the worker transcribing it stopped (exit code {process.exitcode})",
                                      side=side)
            if self.restarts >= self.max_restarts:
                for path, side in list(self.pending):
                    yield Transcribed(path, error=f"{path}: worker processes keep stopping; giving up", side=side)
                self.pending.clear()
                return
            self.restarts += 1
            self._start(number)

    def close(self) -> None:
        # Tasks nobody will read the results of are dropped; each worker finishes the
        # one it is on (at most the task it took ahead too) and stops.
        for channel in (self.tasks, self.urgent):
            try:
                while True:
                    channel.get_nowait()
            except (queue_module.Empty, OSError, ValueError):
                pass
        for _ in self.processes:
            self.tasks.put(None)
        for process in self.processes.values():
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
        for channel in (self.tasks, self.urgent, self.outcomes):
            channel.close()
            channel.cancel_join_thread()


# --- Dask ---------------------------------------------------------------------------------


class DaskExecutor:
    """Tasks sent to an existing Dask distributed scheduler (`dask scheduler`, workers
    started with `dask worker ADDRESS`). Workers read the recordings by path, so the
    archive must be mounted at the same path on every worker; ``auto`` devices are
    resolved on each worker."""

    def __init__(self, address: str, options: AsrOptions):
        self.address = address
        self.options = options
        self.device_note = ""

    @contextmanager
    def session(self):
        Client = import_optional("distributed", "running on a Dask cluster", "cluster").Client

        try:
            client = Client(self.address, timeout="20s")
        except OSError as error:
            raise MonitorError(f"cannot reach the Dask scheduler at {self.address}: {error}") from error
        with client:
            yield _DaskSession(client, self.options)

    def run(self, paths: Iterable[str]) -> Iterator[Transcribed]:
        with self.session() as session:
            for path in paths:
                session.submit(path)
            yield from session.results()


class _DaskSession:
    def __init__(self, client, options: AsrOptions):
        as_completed = import_optional("distributed", "running on a Dask cluster", "cluster").as_completed

        self.client = client
        self.options = options
        self.futures: dict = {}
        self.completed = as_completed()

    def submit(self, path: str, side: str = "both", urgent: bool = False) -> None:
        future = self.client.submit(transcribe_job, path, self.options, side, pure=False, priority=1 if urgent else 0)
        self.futures[future] = (path, side)
        self.completed.add(future)

    def results(self) -> Iterator[Transcribed]:
        for future in self.completed:
            path, side = self.futures.pop(future)
            try:
                yield future.result()
            except Exception as error:  # a worker died on this task
                yield Transcribed(path, error=f"worker failure: {error}", side=side)


def make_executor(workers: int, scheduler: str | None, options: AsrOptions):
    return DaskExecutor(scheduler, options) if scheduler else LocalExecutor(workers, options)
