"""The one function that chains the stages: recording → turns → findings.

    load_recording (audio.py) → turns_from_recording (transcribe.py)
      → simplified text (text.py) → Engine.scan (engine.py) → CallResult

A batch, the CLI and the web app all call ``analyse_recording``; ``analyse_files`` runs
it over many files and reports a broken one without stopping the rest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Iterable, Iterator

from .engine import Engine
from .errors import MonitorError
from .models import Call, CallResult
from .text import to_simplified

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


@dataclass(frozen=True)
class CallMetadata:
    """What is known about a call besides its audio (from a manifest, a form, a file)."""

    call_id: str | None = None
    started_at: datetime | None = None
    collector_id: str | None = None
    debtor_id: str | None = None
    direction: str = "outbound"


def transcribe_recording(path: str | os.PathLike[str], options: AsrOptions = AsrOptions()) -> Call:
    """Decode and transcribe one recording into a Call (no metadata yet). Raises
    AudioError for a file that is not usable audio, TranscriptionError for ASR trouble."""
    from .audio import load_recording  # heavy imports stay out of text-only use
    from .transcribe import get_transcriber, turns_from_recording

    recording = load_recording(path, max_seconds=options.max_seconds)
    transcriber = get_transcriber(options.engine, options.model, options.compute_type, options.cpu_threads)
    turns = turns_from_recording(recording, transcriber, options.collector_channel)
    return Call(
        id=Path(path).stem,
        # Whisper often writes traditional characters; reviewers and reports read simplified.
        turns=tuple(replace(t, text=to_simplified(t.text)) for t in turns),
        sha256=recording.sha256,
        duration=recording.duration,
        source=os.fspath(path),
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


def analyse_recording(
    path: str | os.PathLike[str],
    engine: Engine,
    options: AsrOptions = AsrOptions(),
    metadata: CallMetadata | None = None,
    earlier_calls: Iterable[Call] = (),
) -> CallResult:
    """Transcribe one recording and run the rules over it."""
    call = with_metadata(transcribe_recording(path, options), metadata)
    return engine.scan(call, tuple(earlier_calls))


@dataclass(frozen=True)
class FileOutcome:
    path: str
    result: CallResult | None = None
    error: MonitorError | None = None


def analyse_files(
    paths: Iterable[str | os.PathLike[str]], engine: Engine, options: AsrOptions = AsrOptions()
) -> Iterator[FileOutcome]:
    """Analyse files one by one; a file that fails yields its error and the rest go on."""
    for path in paths:
        try:
            yield FileOutcome(os.fspath(path), result=analyse_recording(path, engine, options))
        except MonitorError as error:
            yield FileOutcome(os.fspath(path), error=error)
