"""The pipeline: recording → turns → findings, and the one way calls get into the store.

    load_recording (speech.audio) → turns_from_recording (speech.transcribe)
      → simplified text (detection.text) → Engine.scan (detection.engine) → CallResult

``transcribe_recording`` is what a worker runs (on a local process or a Dask worker,
see ``executor``). ``analyse_and_store`` is what the nightly batch, a staff upload and a
debtor submission all call: transcribe on an executor, store each transcript or the
reason it failed, then run the rules over every stored call waiting for them, in
start-time order (so ``call_frequency`` sees the calls before). ``analyse_files`` is the
same without a store, for ``monitor analyze``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from monitor.detection.engine import Engine
from monitor.errors import MonitorError
from monitor.models import Call, CallResult, SpeakerRoles
from monitor.runs.roles import assign_roles
from monitor.detection.text import to_simplified
from monitor.runs.metadata import CallMetadata, Job

if TYPE_CHECKING:
    from monitor.store import Store

# A collection call rarely lasts an hour; anything longer is refused before decoding it
# all (a mistaken upload of a day-long recording would otherwise tie up a worker).
DEFAULT_MAX_SECONDS = 2 * 60 * 60


@dataclass(frozen=True)
class AsrOptions:
    """How to turn audio into turns."""

    engine: str = "faster-whisper"
    model: str | None = None  # name or path; None: the packaged offline base model
    compute_type: str | None = None  # None: the engine's default (int8 / float32)
    collector_channel: str = "left"
    max_seconds: float = DEFAULT_MAX_SECONDS
    cpu_threads: int | None = None
    diarize: bool = True  # mono recordings: find the two voices (monitor.speech.diarize)


def transcribe_recording(path: str | os.PathLike[str], options: AsrOptions = AsrOptions()) -> Call:
    """Decode and transcribe one recording into a Call (no metadata yet). Raises
    AudioError for a file that is not usable audio, TranscriptionError for ASR trouble."""
    from monitor.speech.audio import load_recording  # heavy imports stay out of text-only use
    from monitor.speech.signals import conversation_signals
    from monitor.speech.transcribe import get_transcriber, transcribe_with_voices

    recording = load_recording(path, max_seconds=options.max_seconds)
    transcriber = get_transcriber(options.engine, options.model, options.compute_type, options.cpu_threads)
    turns, diarization = transcribe_with_voices(recording, transcriber, options.collector_channel, options.diarize)
    # Whisper often writes traditional characters; reviewers and reports read simplified.
    turns = [replace(t, text=to_simplified(t.text)) for t in turns]
    turns, signals = conversation_signals(recording, turns, diarization, options.collector_channel)
    notes = (f"speakers: {diarization.note}",) if diarization is not None and diarization.note else ()
    return Call(
        id=Path(path).stem,
        turns=tuple(turns),
        sha256=recording.sha256,
        duration=recording.duration,
        source=os.fspath(path),
        signals=signals,
        notes=notes,
        # Voices found but not yet named: monitor.runs.roles decides who is the collector.
        roles=SpeakerRoles(voices=diarization.voices, collector_voice=None, confidence=0.0)
        if diarization is not None else None,
    )


def with_metadata(call: Call, metadata: CallMetadata | None) -> Call:
    if metadata is None:
        return call
    return replace(
        call,
        id=metadata.call_id or call.id,
        started_at=metadata.started_at,
        collector_id=metadata.collector_id,
        debtor_id=metadata.debtor_id,
        direction=metadata.direction,
    )


@dataclass(frozen=True)
class FileOutcome:
    path: str
    result: CallResult | None = None
    error: MonitorError | str | None = None


def analyse_files(paths: Iterable[str | os.PathLike[str]], engine: Engine, executor) -> Iterator[FileOutcome]:
    """Transcribe files on ``executor`` and run the rules over each, without a store; a
    file that fails yields its error and the rest go on (``monitor analyze``)."""
    for outcome in executor.run([os.fspath(p) for p in paths]):
        if outcome.error is not None:
            yield FileOutcome(outcome.path, error=outcome.error)
        else:
            yield FileOutcome(outcome.path, result=engine.scan(assign_roles(outcome.call, engine)))


def analyse_and_store(
    store: "Store",
    engine: Engine,
    executor,
    jobs: list[Job],
    origin: str,
    on_stored: Callable[[Job, str, str | None], None] = lambda job, call_id, error: None,
    progress: Callable[[Iterator, int], Iterator] | None = None,
) -> tuple[int, dict[str, int]]:
    """Transcribe ``jobs`` on ``executor``, store each transcript (with its metadata) or
    the reason it failed as it arrives, then run the rules over every waiting call.
    ``on_stored(job, call_id, error)`` is told of each job once the rules have run over
    it (so a status shown as done has its findings). Returns what ``scan_stored``
    returns. A job whose storing raises is stored as failed with the reason: every job
    ends stored or failed, never half-way."""
    by_path = {job.path: job for job in jobs}
    stored: list[tuple[Job, str, str | None]] = []
    outcomes = executor.run(list(by_path))
    if progress is not None:
        outcomes = progress(outcomes, len(by_path))
    for outcome in outcomes:
        job = by_path[outcome.path]
        error = outcome.error
        call_id = None
        if error is None:
            try:
                call = assign_roles(with_metadata(outcome.call, job.metadata), engine)
                call_id = store.save_transcript(call, origin=origin, extra=job.extra)
            except Exception as failure:  # a value the store cannot keep must not lose the job
                error = f"{job.path}: could not store the transcript: {type(failure).__name__}: {failure}"
        if error is not None:
            call_id = store.save_failure(job.sha256 or outcome.path, job.path, error, origin=origin, call_id=job.metadata.call_id)
        stored.append((job, call_id, error))
    scanned = scan_stored(store, engine, ("transcribed",))
    for job, call_id, error in stored:
        on_stored(job, call_id, error)
    return scanned


def scan_stored(store: "Store", engine: Engine, statuses: tuple[str, ...]) -> tuple[int, dict[str, int]]:
    """Run the rules over the stored calls with these statuses, oldest first (so
    ``call_frequency`` sees the calls before); returns (calls scanned, findings per
    category)."""
    counts: dict[str, int] = {}
    calls = store.calls_with_status(*statuses)
    for call in calls:
        result = engine.scan(call, store.earlier_calls(call))
        store.save_findings(call.id, result, engine.pack.version)
        for finding in result.findings:
            counts[finding.category] = counts.get(finding.category, 0) + 1
    return len(calls), counts
