"""The nightly batch: every recording of an archive analysed once, and only once.

1. Discover the recordings and their metadata (a folder tree, or a CSV/JSONL manifest;
   a JSON file beside a recording; a file-name pattern).
2. Hash each file. A recording whose hash is already stored is skipped: a second run
   transcribes nothing, and a run killed half-way (even with SIGKILL) resumes where it
   stopped, because each transcript is committed on its own.
3. Transcribe the rest on the executor (local processes or a Dask cluster); store each
   transcript, or the reason it failed, as it arrives. With ``debtor_side``
   ``when-flagged`` (the batch's default) a stereo call's debtor channel is transcribed
   only when its collector channel may hold a finding (see ``collector_first``).
4. Run the rules over every stored call still waiting for them, in start-time order, so
   the frequency rule counts calls from this night and from earlier nights alike.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Callable, Iterator
from zoneinfo import ZoneInfo

from monitor import settings
from monitor.detection.engine import Engine
from monitor.errors import InputError, MonitorError
from monitor.hashing import file_sha256
from monitor.runs.metadata import (
    CallMetadata,
    Job,
    fields_from_filename,
    manifest_rows,
    metadata_from_fields,
    read_sidecar,
    sidecar_of,
)
from monitor.runs.pipeline import analyse_and_store, scan_stored
from monitor.store import Store

MANIFEST_SUFFIXES = (".csv", ".jsonl")
# Documents that live beside recordings in an archive folder; anything else (whatever its
# extension) is tried as a recording and stored as failed with a reason if it is not one.
NOT_RECORDINGS = {".md", ".txt", ".yaml", ".yml", ".csv", ".jsonl", ".pdf", ".docx", ".xlsx", ".py", ".sh", ".log"}


@dataclass
class BatchReport:
    discovered: int = 0
    skipped: int = 0  # already stored by an earlier run
    transcribed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    scanned: int = 0
    findings_by_category: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    debtor_side: str = "always"
    debtor_side_skipped: int = 0  # stereo calls stored with the debtor side not transcribed
    device_note: str = ""  # where the speech model ran, when it was not simply the CPU asked for

    def summary(self) -> str:
        lines = [
            f"recordings found: {self.discovered}; already stored: {self.skipped}; "
            f"transcribed now: {self.transcribed}; failed: {len(self.failed)}; calls scanned: {self.scanned}",
        ]
        if self.debtor_side != "always" and self.transcribed:
            lines.append(f"debtor side ({self.debtor_side}): not transcribed for {self.debtor_side_skipped} of "
                         f"{self.transcribed} call(s), done when a call is opened or a document asked for")
        if self.device_note:
            lines.append(self.device_note)
        if self.findings_by_category:
            lines.append("findings: " + ", ".join(f"{k} {v}" for k, v in sorted(self.findings_by_category.items())))
        for path, reason in self.failed:
            lines.append(f"failed: {reason}" if path in reason else f"failed: {path}: {reason}")
        lines.append(f"time: {self.seconds:.1f} s")
        return "\n".join(lines)


# --- discovery ---------------------------------------------------------------------------


def discover(source: Path, zone: ZoneInfo, filename_pattern: str | None = None) -> tuple[list[Job], list[tuple[str, str]]]:
    """The jobs a source holds, and the problems found while reading it (a manifest line
    that names a missing file, a sidecar that is not JSON …)."""
    problems: list[tuple[str, str]] = []
    jobs: list[Job] = []
    if source.is_file() and source.suffix.lower() in MANIFEST_SUFFIXES:
        rows = manifest_rows(source)
        for where, fields in rows:
            if "error" in fields:
                problems.append((where, fields["error"]))
                continue
            path = (source.parent / str(fields["path"])).resolve() if not os.path.isabs(str(fields["path"])) else Path(fields["path"])
            try:
                merged = {**fields_from_filename(path.name, filename_pattern), **{k: v for k, v in fields.items() if v not in (None, "")}}
                metadata, extra = metadata_from_fields(merged, zone, where)
            except InputError as error:
                problems.append((str(path), str(error)))
                continue
            jobs.append(Job(str(path), metadata, extra))
        return jobs, problems
    if not source.is_dir():
        raise MonitorError(f"{source}: not a folder of recordings nor a .csv/.jsonl manifest")
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        if path.name.startswith(".") or path.suffix.lower() == ".json":
            continue  # hidden files, and sidecars (read with their recording)
        if path.suffix.lower() in NOT_RECORDINGS:
            continue  # notes and manifests kept beside an archive are not calls
        fields = fields_from_filename(path.name, filename_pattern)
        sidecar = sidecar_of(path)
        try:
            if sidecar is not None:
                fields.update(read_sidecar(sidecar))
            metadata, extra = metadata_from_fields(fields, zone, str(sidecar or path))
        except InputError as error:
            problems.append((str(path), str(error)))
            metadata, extra = CallMetadata(), {}
        jobs.append(Job(str(path), metadata, extra))
    return jobs, problems


def _started_date(job: Job) -> date | None:
    if job.metadata.started_at is not None:
        return job.metadata.started_at.date()
    try:
        return datetime.fromtimestamp(os.path.getmtime(job.path)).date()
    except OSError:
        return None


# --- the run -----------------------------------------------------------------------------


def run_batch(
    source: Path,
    store: Store,
    engine: Engine,
    executor,
    zone: ZoneInfo,
    since: date | None = None,
    filename_pattern: str | None = None,
    retry_failed: bool = False,
    progress: Callable[[Iterator, int], Iterator] | None = None,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
    debtor_side: str | None = None,
) -> BatchReport:
    """``debtor_side``: always | when-flagged | never (default: the debtor_side setting)."""
    started = time.monotonic()
    policy = debtor_side or settings.get("debtor_side")
    report = BatchReport(debtor_side=policy, device_note=getattr(executor, "device_note", ""))
    jobs, problems = discover(source, zone, filename_pattern)
    for where, reason in problems:
        log(f"warning: {reason}" if where in reason else f"warning: {where}: {reason}")
    if since is not None:
        jobs = [j for j in jobs if (_started_date(j) or since) >= since]
    report.discovered = len(jobs)

    known = store.known_hashes()
    by_path: dict[str, Job] = {}
    for job in jobs:
        try:
            digest = file_sha256(job.path)
        except OSError:
            reason = f"{job.path}: file not found or unreadable"
            store.save_failure(hashlib.sha256(job.path.encode()).hexdigest(), job.path, reason, call_id=job.metadata.call_id)
            report.failed.append((job.path, reason))
            continue
        status = known.get(digest)
        if status in ("transcribed", "done") or (status == "failed" and not retry_failed):
            report.skipped += 1
            continue
        if digest in {j.sha256 for j in by_path.values()}:
            report.skipped += 1  # the same recording twice in one source
            continue
        by_path[job.path] = Job(job.path, job.metadata, job.extra, digest)

    stored_ids: list[str] = []

    def stored(job: Job, call_id: str, error: str | None) -> None:
        if error is None:
            report.transcribed += 1
            stored_ids.append(call_id)
        else:
            report.failed.append((job.path, error))

    jobs_to_run = list(by_path.values())
    report.scanned, report.findings_by_category = analyse_and_store(
        store, engine, executor, jobs_to_run, origin="batch", on_stored=stored, progress=progress, debtor_side=policy
    )
    if policy != "always":
        report.debtor_side_skipped = len(store.calls_missing_debtor_side(stored_ids))
    report.seconds = time.monotonic() - started
    return report


def rescan(store: Store, engine: Engine) -> tuple[int, dict[str, int]]:
    """Run the current rules over every stored transcript again (no transcription),
    recording the new rule-set version on each call and finding."""
    return scan_stored(store, engine, ("transcribed", "done"))
