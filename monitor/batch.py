"""The nightly batch: every recording of an archive analysed once, and only once.

1. Discover the recordings and their metadata (a folder tree, or a CSV/JSONL manifest;
   a JSON file beside a recording; a file-name pattern).
2. Hash each file. A recording whose hash is already stored is skipped: a second run
   transcribes nothing, and a run killed half-way (even with SIGKILL) resumes where it
   stopped, because each transcript is committed on its own.
3. Transcribe the rest on the executor (local processes or a Dask cluster); store each
   transcript, or the reason it failed, as it arrives.
4. Run the rules over every stored call still waiting for them, in start-time order, so
   the frequency rule counts calls from this night and from earlier nights alike.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Callable, Iterator
from zoneinfo import ZoneInfo

from .engine import Engine
from .errors import InputError, MonitorError
from .pipeline import CallMetadata, with_metadata
from .scan import DIRECTIONS, parse_time
from .store import Store

MANIFEST_SUFFIXES = (".csv", ".jsonl")
# Documents that live beside recordings in an archive folder; anything else (whatever its
# extension) is tried as a recording and stored as failed with a reason if it is not one.
NOT_RECORDINGS = {".md", ".txt", ".yaml", ".yml", ".csv", ".jsonl", ".pdf", ".docx", ".xlsx", ".py", ".sh", ".log"}
METADATA_FIELDS = ("call_id", "started_at", "collector_id", "debtor_id", "direction", "caller_number", "callee_number")
_COMPACT_TIME = ("%Y%m%dT%H%M%S", "%Y%m%d-%H%M%S", "%Y%m%d_%H%M%S", "%Y%m%d%H%M%S", "%Y%m%d-%H%M", "%Y%m%d")


@dataclass(frozen=True)
class Job:
    """One recording to analyse and what is known about it."""

    path: str
    metadata: CallMetadata = CallMetadata()
    extra: dict = field(default_factory=dict)  # phone numbers and other fields, kept as given
    sha256: str | None = None


@dataclass
class BatchReport:
    discovered: int = 0
    skipped: int = 0  # already stored by an earlier run
    transcribed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    scanned: int = 0
    findings_by_category: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [
            f"recordings found: {self.discovered}; already stored: {self.skipped}; "
            f"transcribed now: {self.transcribed}; failed: {len(self.failed)}; calls scanned: {self.scanned}",
        ]
        if self.findings_by_category:
            lines.append("findings: " + ", ".join(f"{k} {v}" for k, v in sorted(self.findings_by_category.items())))
        for path, reason in self.failed:
            lines.append(f"failed: {reason}" if path in reason else f"failed: {path}: {reason}")
        lines.append(f"time: {self.seconds:.1f} s")
        return "\n".join(lines)


# --- discovery ---------------------------------------------------------------------------


def parse_started_at(value: str, zone: ZoneInfo, where: str) -> datetime:
    for pattern in _COMPACT_TIME:
        try:
            return datetime.strptime(value, pattern).replace(tzinfo=zone)
        except ValueError:
            continue
    return parse_time(value, zone, where)


def metadata_from_fields(fields: dict, zone: ZoneInfo, where: str) -> tuple[CallMetadata, dict]:
    """Known fields as CallMetadata, the rest (phone numbers …) as extra. Raises
    InputError naming ``where`` and the field."""
    started = fields.get("started_at")
    direction = fields.get("direction") or "outbound"
    if direction not in DIRECTIONS:
        raise InputError(f"{where}: direction must be outbound or inbound, not {direction!r}")
    metadata = CallMetadata(
        call_id=str(fields["call_id"]) if fields.get("call_id") else None,
        started_at=parse_started_at(str(started), zone, f"{where}: started_at") if started else None,
        collector_id=str(fields["collector_id"]) if fields.get("collector_id") else None,
        debtor_id=str(fields["debtor_id"]) if fields.get("debtor_id") else None,
        direction=direction,
    )
    extra = {k: v for k, v in fields.items() if k not in ("path", "call_id", "started_at", "collector_id", "debtor_id", "direction") and v not in (None, "")}
    return metadata, extra


def _from_pattern(path: Path, pattern: re.Pattern | None) -> dict:
    if pattern is None:
        return {}
    match = pattern.search(path.name)
    return {k: v for k, v in match.groupdict().items() if v} if match else {}


def _sidecar(path: Path) -> Path | None:
    for candidate in (path.with_name(path.name + ".json"), path.with_suffix(".json")):
        if candidate.is_file() and candidate != path:
            return candidate
    return None


def discover(source: Path, zone: ZoneInfo, filename_pattern: str | None = None) -> tuple[list[Job], list[tuple[str, str]]]:
    """The jobs a source holds, and the problems found while reading it (a manifest line
    that names a missing file, a sidecar that is not JSON …)."""
    pattern = re.compile(filename_pattern) if filename_pattern else None
    problems: list[tuple[str, str]] = []
    jobs: list[Job] = []
    if source.is_file() and source.suffix.lower() in MANIFEST_SUFFIXES:
        rows = _manifest_rows(source)
        for where, fields in rows:
            if "error" in fields:
                problems.append((where, fields["error"]))
                continue
            path = (source.parent / str(fields["path"])).resolve() if not os.path.isabs(str(fields["path"])) else Path(fields["path"])
            try:
                merged = {**_from_pattern(path, pattern), **{k: v for k, v in fields.items() if v not in (None, "")}}
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
        fields = _from_pattern(path, pattern)
        sidecar = _sidecar(path)
        try:
            if sidecar is not None:
                try:
                    loaded = json.loads(sidecar.read_text(encoding="utf-8"))
                except (json.JSONDecodeError, UnicodeDecodeError) as error:
                    raise InputError(f"{sidecar}: not valid JSON ({error})") from None
                if not isinstance(loaded, dict):
                    raise InputError(f"{sidecar}: expected a JSON object")
                fields.update(loaded)
            metadata, extra = metadata_from_fields(fields, zone, str(sidecar or path))
        except InputError as error:
            problems.append((str(path), str(error)))
            metadata, extra = CallMetadata(), {}
        jobs.append(Job(str(path), metadata, extra))
    return jobs, problems


def _manifest_rows(source: Path) -> list[tuple[str, dict]]:
    rows: list[tuple[str, dict]] = []
    try:
        text = source.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise MonitorError(f"{source}: not UTF-8 text ({error.reason})") from None
    if source.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or "path" not in reader.fieldnames:
            raise MonitorError(f"{source}:1: a manifest needs a 'path' column (and may have {', '.join(METADATA_FIELDS)})")
        for number, row in enumerate(reader, start=2):
            rows.append((f"{source}:{number}", row if row.get("path") else {"error": "missing path"}))
        return rows
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            rows.append((where, {"error": f"not valid JSON ({error.msg})"}))
            continue
        rows.append((where, row if isinstance(row, dict) and row.get("path") else {"error": "missing path"}))
    return rows


def file_sha256(path: str) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


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
) -> BatchReport:
    started = time.monotonic()
    report = BatchReport()
    jobs, problems = discover(source, zone, filename_pattern)
    for where, reason in problems:
        log(f"warning: {reason}" if where in reason else f"warning: {where}: {reason}")
    if since is not None:
        jobs = [j for j in jobs if (_started_date(j) or since) >= since]
    report.discovered = len(jobs)

    known = store.known_hashes()
    by_path: dict[str, Job] = {}
    for job in jobs:
        digest = file_sha256(job.path)
        if digest is None:
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

    outcomes = executor.run(list(by_path))
    if progress is not None:
        outcomes = progress(outcomes, len(by_path))
    for outcome in outcomes:
        job = by_path[outcome.path]
        if outcome.error is not None:
            store.save_failure(job.sha256, job.path, outcome.error, call_id=job.metadata.call_id)
            report.failed.append((job.path, outcome.error))
            continue
        call = with_metadata(outcome.call, job.metadata)
        store.save_transcript(call, origin="batch", extra=job.extra)
        report.transcribed += 1

    report.scanned, report.findings_by_category = scan_waiting(store, engine)
    report.seconds = time.monotonic() - started
    return report


def scan_waiting(store: Store, engine: Engine) -> tuple[int, dict[str, int]]:
    """Run the rules over every stored call still waiting for them, oldest first."""
    return _scan(store, engine, ("transcribed",))


def rescan(store: Store, engine: Engine) -> tuple[int, dict[str, int]]:
    """Run the current rules over every stored transcript again (no transcription),
    recording the new rule-set version on each call and finding."""
    return _scan(store, engine, ("transcribed", "done"))


def _scan(store: Store, engine: Engine, statuses: tuple[str, ...]) -> tuple[int, dict[str, int]]:
    counts: dict[str, int] = {}
    calls = store.calls_with_status(*statuses)
    for call in calls:  # in start-time order, so call_frequency sees the calls before
        result = engine.scan(call, store.earlier_calls(call))
        store.save_findings(call.id, result, engine.pack.version)
        for finding in result.findings:
            counts[finding.category] = counts.get(finding.category, 0) + 1
    return len(calls), counts
