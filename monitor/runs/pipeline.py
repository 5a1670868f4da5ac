"""The pipeline: recording → turns → findings, and the one way calls get into the store.

    load_recording (speech.audio) → turns_from_recording (speech.transcribe)
      → simplified text (detection.text) → Engine.scan (detection.engine) → CallResult

``transcribe_part`` is what a worker runs (on a local process or a Dask worker, see
``executor``): both channels of a recording, or only the collector's or the debtor's.
``analyse_and_store`` is what the nightly batch, a staff upload and a debtor
submission all call: transcribe on an executor, store each transcript or the reason it
failed, then run the rules over every stored call waiting for them, in start-time order
(so ``call_frequency`` sees the calls before). ``analyse_files`` is the same without a
store, for ``monitor analyze``.

Collector side first (``debtor_side``, see ``collector_first``): with ``when-flagged``
a stereo call's collector channel is transcribed and checked first; its debtor channel
follows only when the call may hold a finding, otherwise the call is stored with the
debtor side "not transcribed" (``debtor_side.transcribe_debtor_side`` fills it in on
demand). ``always`` transcribes both channels at once; ``never`` only the collector's.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, replace

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from monitor.detection.engine import Engine
from monitor.errors import MonitorError
from monitor.models import Call, CallResult, SpeakerRoles
from monitor.runs.roles import assign_roles
from monitor.detection.text import to_simplified
from monitor.learning.model import current_model
from monitor.learning.suspects import store_assessment
from monitor.runs import collector_first
from monitor.runs.collector_first import DEBTOR_SIDE_POLICIES, NOT_TRANSCRIBED, TRANSCRIBED
from monitor.runs.metadata import CallMetadata, Job

if TYPE_CHECKING:
    from monitor.store import Store

# A collection call rarely lasts an hour; anything longer is refused before decoding it
# all (a mistaken upload of a day-long recording would otherwise tie up a worker).
DEFAULT_MAX_SECONDS = 2 * 60 * 60
# Windows decoded at once by faster-whisper's batched pipeline on a GPU.
DEFAULT_BATCH_SIZE = 8
SIDES = ("both", "collector", "debtor")


@dataclass(frozen=True)
class AsrOptions:
    """How to turn audio into turns."""

    engine: str = "faster-whisper"
    model: str | None = None  # name or path; None: the packaged offline base model
    compute_type: str | None = None  # None: the engine's default (int8 on CPU, float16 on CUDA)
    collector_channel: str = "left"
    max_seconds: float = DEFAULT_MAX_SECONDS
    cpu_threads: int | None = None
    device: str = "cpu"  # auto | cpu | cuda
    batch_size: int = DEFAULT_BATCH_SIZE
    # always | when-flagged | never: which calls get their debtor channel transcribed.
    debtor_side: str = "always"
    diarize: bool = True  # mono recordings: find the two voices (monitor.speech.diarize)


@dataclass(frozen=True)
class Heard:
    """What a worker heard. ``segments`` are the raw (speaker, Segment) pairs of the
    channels it transcribed, in channel order, kept so that two halves of a stereo call
    merge into exactly the turns a both-channel run gives; None for a whole recording."""

    call: Call
    side: str = "both"
    stereo: bool = False
    segments: tuple | None = None


def get_options_transcriber(options: AsrOptions):
    from monitor.speech.transcribe import get_transcriber

    return get_transcriber(options.engine, options.model, options.compute_type, options.cpu_threads,
                           options.device, options.batch_size)


def decode(path: str | os.PathLike[str], options: AsrOptions):
    """Decode a recording (raises AudioError): done ahead of transcription in a worker."""
    from monitor.speech.audio import load_recording  # heavy imports stay out of text-only use

    return load_recording(path, max_seconds=options.max_seconds)


def transcribe_part(path: str | os.PathLike[str], options: AsrOptions = AsrOptions(), side: str = "both",
                    recording=None) -> Heard:
    """Transcribe one recording (``recording``: already decoded) into a Call, no metadata
    yet: both channels, or of a stereo call only the collector's or only the debtor's
    (a mono recording is always transcribed whole, its two voices found by
    diarization). Conversation signals are measured when the whole call was heard.
    Raises AudioError for a file that is not usable audio, TranscriptionError for ASR
    trouble."""
    from monitor.speech.signals import conversation_signals
    from monitor.speech.transcribe import COLLECTOR_CHANNELS, merge_segments, transcribe_with_voices

    if side not in SIDES:
        raise ValueError(f"side must be one of {', '.join(SIDES)}, not {side!r}")
    if recording is None:
        recording = decode(path, options)
    transcriber = get_options_transcriber(options)
    segments = diarization = signals = None
    if side == "both" or not recording.is_stereo:
        turns, diarization = transcribe_with_voices(recording, transcriber, options.collector_channel, options.diarize)
        side = "both"
    else:
        collector_index = COLLECTOR_CHANNELS.index(options.collector_channel)
        index = collector_index if side == "collector" else 1 - collector_index
        segments = tuple((side, segment) for segment in transcriber.transcribe(recording.channels[index]))
        turns = [replace(t, speaker_source="channel") for t in merge_segments(list(segments))]
    # Whisper often writes traditional characters; reviewers and reports read simplified.
    turns = list(simplified(turns))
    if side == "both":
        turns, signals = conversation_signals(recording, turns, diarization, options.collector_channel)
    notes = (f"speakers: {diarization.note}",) if diarization is not None and diarization.note else ()
    call = Call(
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
    return Heard(call, side, recording.is_stereo, segments)


def merged_call(call: Call, turns: list, path: str, options: AsrOptions) -> Call:
    """A stereo call put together from its two halves, as a both-channel run gives it:
    the merged turns, marked as heard by channel, and the conversation signals measured
    on the recording (decoded again here: only flagged calls come this way)."""
    from monitor.speech.signals import conversation_signals

    turns = [replace(t, speaker_source="channel") for t in simplified(turns)]
    turns, signals = conversation_signals(decode(path, options), turns, None, options.collector_channel)
    return replace(call, turns=tuple(turns), signals=signals)


def simplified(turns) -> tuple:
    return tuple(replace(t, text=to_simplified(t.text)) for t in turns)


def transcribe_recording(path: str | os.PathLike[str], options: AsrOptions = AsrOptions()) -> Call:
    """Decode and transcribe both channels of one recording into a Call."""
    return transcribe_part(path, options).call


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
    debtor_side: str | None = None  # transcribed | not transcribed | None (mono)


@dataclass(frozen=True)
class CallOutcome:
    """One recording done with: its call (both halves merged when both were heard), or
    the error; ``debtor_side`` says whether the debtor channel is in the turns."""

    path: str
    call: Call | None = None
    error: str | None = None
    debtor_side: str | None = None


def transcribe_calls(
    executor,
    paths: list[str],
    policy: str,
    flagged: Callable[[str, Call, tuple], bool],
) -> Iterator[CallOutcome]:
    """Every recording of ``paths`` through the executor, yielded as each call is done.

    ``policy`` ``always`` asks for both channels at once. Otherwise the collector
    channel comes first, and ``flagged(path, call, segments)`` (called here, in the
    coordinator, as each result arrives) decides whether the debtor channel follows as
    a second task; the workers meanwhile go on with the queue."""
    if policy not in DEBTOR_SIDE_POLICIES:
        raise MonitorError(f"debtor_side must be one of {', '.join(DEBTOR_SIDE_POLICIES)}, not {policy!r}")
    first = "both" if policy == "always" else "collector"
    channel = getattr(getattr(executor, "options", None), "collector_channel", "left")
    waiting: dict[str, object] = {}  # collector halves waiting for their debtor half
    with _session_of(executor) as session:
        for path in paths:
            session.submit(path, first)
        for outcome in session.results():
            if outcome.error is not None:
                half = waiting.pop(outcome.path, None)
                if half is not None:
                    # The debtor half failed after the collector half worked: keep what was
                    # heard (its findings must not be lost); opening the call tries again.
                    yield CallOutcome(outcome.path, half.call, debtor_side=NOT_TRANSCRIBED)
                else:
                    yield CallOutcome(outcome.path, error=outcome.error)
                continue
            heard = outcome.heard or Heard(outcome.call)
            if heard.side == "both":
                yield CallOutcome(outcome.path, heard.call, debtor_side=TRANSCRIBED if heard.stereo else None)
            elif heard.side == "collector":
                if policy == "when-flagged" and flagged(outcome.path, heard.call, heard.segments):
                    waiting[outcome.path] = heard
                    session.submit(outcome.path, "debtor", urgent=True)
                else:
                    yield CallOutcome(outcome.path, heard.call, debtor_side=NOT_TRANSCRIBED)
            else:
                half = waiting.pop(outcome.path)
                call = merged_call(half.call, collector_first.merge_halves(half.segments, heard.segments, channel),
                                   outcome.path, getattr(executor, "options", AsrOptions()))
                yield CallOutcome(outcome.path, call, debtor_side=TRANSCRIBED)


@contextmanager
def _session_of(executor):
    """The executor's session; an executor that only has ``run(paths)`` gets both
    channels of every path (nothing is skipped)."""
    if hasattr(executor, "session"):
        with executor.session() as session:
            yield session
    else:
        yield _RunOnly(executor)


class _RunOnly:
    def __init__(self, executor):
        self.executor = executor
        self.queued: list[str] = []

    def submit(self, path: str, side: str = "both", urgent: bool = False) -> None:
        self.queued.append(path)

    def results(self):
        while self.queued:
            paths, self.queued = self.queued, []
            yield from self.executor.run(paths)


def analyse_files(paths: Iterable[str | os.PathLike[str]], engine: Engine, executor,
                  debtor_side: str | None = None) -> Iterator[FileOutcome]:
    """Transcribe files on ``executor`` and run the rules over each, without a store; a
    file that fails yields its error and the rest go on (``monitor analyze``)."""
    policy = debtor_side or getattr(getattr(executor, "options", None), "debtor_side", "always")
    decider = collector_first.Decider(engine)
    flagged = lambda path, call, segments: decider.flagged(call, segments, ())  # noqa: E731
    for outcome in transcribe_calls(executor, [os.fspath(p) for p in paths], policy, flagged):
        if outcome.error is not None:
            yield FileOutcome(outcome.path, error=outcome.error)
        else:
            yield FileOutcome(outcome.path, result=engine.scan(assign_roles(outcome.call, engine)),
                              debtor_side=outcome.debtor_side)


def analyse_and_store(
    store: "Store",
    engine: Engine,
    executor,
    jobs: list[Job],
    origin: str,
    on_stored: Callable[[Job, str, str | None], None] = lambda job, call_id, error: None,
    progress: Callable[[Iterator, int], Iterator] | None = None,
    debtor_side: str | None = None,
) -> tuple[int, dict[str, int]]:
    """Transcribe ``jobs`` on ``executor``, store each transcript (with its metadata) or
    the reason it failed as it arrives, then run the rules over every waiting call.
    ``on_stored(job, call_id, error)`` is told of each job once the rules have run over
    it (so a status shown as done has its findings). Returns what ``scan_stored``
    returns. A job whose storing raises is stored as failed with the reason: every job
    ends stored or failed, never half-way.

    ``debtor_side`` (default: the executor's options, else ``always``): see the module
    docstring. A debtor's own submission always gets both sides."""
    policy = debtor_side or getattr(getattr(executor, "options", None), "debtor_side", "always")
    if origin == "debtor":
        policy = "always"
    by_path = {job.path: job for job in jobs}
    channel = getattr(getattr(executor, "options", None), "collector_channel", "left")
    decider = collector_first.Decider(engine)
    night = collector_first.History([with_metadata(Call(id=Path(j.path).stem, turns=()), j.metadata) for j in jobs])

    def flagged(path: str, call: Call, segments) -> bool:
        call = with_metadata(call, by_path[path].metadata)
        return decider.flagged(call, segments, night.before(call, store.earlier_calls(call)))

    stored: list[tuple[Job, str, str | None]] = []
    outcomes = transcribe_calls(executor, list(by_path), policy, flagged)
    if progress is not None:
        outcomes = progress(outcomes, len(by_path))
    for outcome in outcomes:
        job = by_path[outcome.path]
        error = outcome.error
        call_id = None
        if error is None:
            try:
                call_id = store.save_transcript_sides(assign_roles(with_metadata(outcome.call, job.metadata), engine),
                                                      origin=origin, extra=job.extra, debtor_side=outcome.debtor_side,
                                                      collector_channel=channel)
            except Exception as failure:  # a value the store cannot keep must not lose the job
                error = f"{job.path}: could not store the transcript: {type(failure).__name__}: {failure}"
        if error is not None:
            call_id = store.save_failure(job.sha256 or outcome.path, job.path, error, origin=origin, call_id=job.metadata.call_id)
        stored.append((job, call_id, error))
    scanned = scan_stored(store, engine, ("transcribed",))
    if policy == "when-flagged":
        # The history-aware scan can flag a call the first look passed (a frequency
        # finding from a call stored meanwhile): such calls get their debtor side now.
        late = store.calls_missing_debtor_side([call_id for _, call_id, error in stored if error is None], flagged_only=True)
        if late:
            before = _category_counts(store, late)
            complete_debtor_sides(store, engine, executor, late)
            scan_stored(store, engine, ("transcribed",))
            for call_id in late:
                store.carry_reviews(call_id)
            counts = dict(scanned[1])
            for category, n in before.items():
                counts[category] -= n
            for category, n in _category_counts(store, late).items():
                counts[category] = counts.get(category, 0) + n
            scanned = (scanned[0], {k: v for k, v in counts.items() if v})
    for job, call_id, error in stored:
        on_stored(job, call_id, error)
    return scanned


def _category_counts(store: "Store", call_ids: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for call_id in call_ids:
        for finding in store.findings(call_id):
            counts[finding.finding.category] = counts.get(finding.finding.category, 0) + 1
    return counts


def complete_debtor_sides(store: "Store", engine: Engine, executor, call_ids: list[str]) -> dict[str, str]:
    """Transcribe both channels of these stored calls again on ``executor`` and replace
    their turns (status back to ``transcribed``, so the next scan sees them). Returns
    call id → error for those that failed (their collector-only turns are kept)."""
    rows = {call_id: store.call_row(call_id) for call_id in call_ids}
    by_path = {row["source"]: call_id for call_id, row in rows.items() if row and row["source"]}
    errors = {call_id: "recording path unknown" for call_id, row in rows.items() if not (row and row["source"])}
    with _session_of(executor) as session:
        for path in by_path:
            session.submit(path, "both", urgent=True)
        for outcome in session.results():
            call_id = by_path[outcome.path]
            if outcome.error is not None:
                errors[call_id] = outcome.error
                continue
            try:
                store.replace_turns(call_id, outcome.call, debtor_side=TRANSCRIBED)
            except MonitorError as error:
                errors[call_id] = str(error)
    return errors


def scan_stored(store: "Store", engine: Engine, statuses: tuple[str, ...], model=None) -> tuple[int, dict[str, int]]:
    """Run the rules over the stored calls with these statuses, oldest first (so
    ``call_frequency`` sees the calls before), and score their turns with the risk
    ``model`` (default: the one in use; a bad model file raises ModelError); returns
    (calls scanned, findings per category)."""
    counts: dict[str, int] = {}
    calls = store.calls_with_status(*statuses)
    model = model or (current_model() if calls else None)
    for call in calls:
        result = engine.scan(call, store.earlier_calls(call))
        # Risks first: the call is marked done only once both are stored.
        store_assessment(store, model, result)
        store.save_findings(call.id, result, engine.pack.version)
        for finding in result.findings:
            counts[finding.category] = counts.get(finding.category, 0) + 1
    return len(calls), counts
