"""Uploads analysed in the background, through the same executor as the batch.

A web request only checks and stores the file and adds an ``uploads`` row (status
``queued``). One worker thread takes every queued upload, hands the recordings to an
executor (``LocalExecutor(1, options)`` by default; a Dask cluster when ``serve`` is
given a scheduler), stores each transcript or the reason it failed, and runs the rules
over the new call with the calls before it: the batch's own ``analyse_and_store``.
Every upload ends ``done`` or ``failed`` with a reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Callable

from monitor.detection.engine import Engine
from monitor.runs.executor import make_executor
from monitor.runs.metadata import Job, metadata_from_json
from monitor.runs.pipeline import AsrOptions, analyse_and_store, scan_stored
from monitor.store import Store

log = logging.getLogger("monitor.web.jobs")

def _reason(error: str, path: str) -> str:
    """An executor's error without the server-side path of the stored file."""
    return error.replace(f"{path}: ", "").replace(path, "(recording)")


class UploadQueue:
    """The background worker. ``process_pending`` runs one round synchronously (tests
    call it directly); ``start`` runs rounds in a daemon thread, woken by ``notify``."""

    def __init__(
        self,
        database: str | Path,
        engine: Engine,
        options: AsrOptions = AsrOptions(),
        executor_factory: Callable[[AsrOptions], object] | None = None,
        poll_seconds: float = 10.0,
    ):
        self.database = str(database)
        self.engine = engine
        self.options = options
        self.executor_factory = executor_factory or (lambda opts: make_executor(1, None, opts))
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._round = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- the thread ---------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        store = Store(self.database)
        try:
            requeued = store.requeue_interrupted_uploads()
        finally:
            store.close()
        if requeued:
            log.info("queued again %d upload(s) interrupted by a stop", requeued)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="monitor-uploads", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def notify(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.process_pending()
            except Exception:  # never let one bad round end the worker
                log.exception("upload round failed")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    # -- one round ----------------------------------------------------------------------

    def process_pending(self) -> int:
        """Analyse every queued upload; returns how many were taken."""
        with self._round:
            store = Store(self.database)
            try:
                rows = store.claim_queued_uploads()
                if rows:
                    self._process(store, rows)
                return len(rows)
            finally:
                store.close()

    def wait_idle(self, timeout: float = 120.0) -> bool:
        """Wait until no upload is queued or processing (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            store = Store(self.database)
            try:
                pending = store.pending_upload_count()
            finally:
                store.close()
            if not pending:
                return True
            time.sleep(0.2)
        return False

    def _process(self, store: Store, rows: list[dict]) -> None:
        """Analyse the claimed rows; whatever goes wrong, none is left ``processing``."""
        reason = "分析没有得出结果（analysis ended without a result）"
        try:
            self._analyse(store, rows)
        except Exception as error:  # a bug or a store the worker cannot write: the jobs still end
            log.exception("an upload round failed")
            reason = f"分析失败（analysis failed: {type(error).__name__}: {error}）"
        for row in rows:
            try:
                current = store.upload(row["id"])
                if current is not None and current["status"] == "processing":
                    store.update_upload(row["id"], status="failed", error=_reason(reason, row["path"]))
            except Exception:
                log.exception("could not mark upload %s failed", row["id"])

    def _analyse(self, store: Store, rows: list[dict]) -> None:
        # Recordings already stored (the same file uploaded again, or analysed by a batch)
        # are not transcribed twice; the rest go to the executor, one run per channel layout.
        by_channel: dict[tuple[str, str], dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
        for row in rows:
            call_id = store.call_id_for(row["sha256"])
            if call_id and store.status_of(row["sha256"]) in ("transcribed", "done"):
                try:
                    scan_stored(store, self.engine, ("transcribed",))
                    store.update_upload(row["id"], status="done", call_id=call_id, error=None)
                except Exception as error:
                    log.exception("upload %s: the stored call could not be scanned", row["id"])
                    store.update_upload(row["id"], status="failed", call_id=call_id,
                                        error=f"分析失败（analysis failed: {type(error).__name__}: {error}）")
                continue
            channel = row["collector_channel"] if row["collector_channel"] in ("left", "right") else "left"
            by_channel[channel, row["origin"]][row["path"]].append(row)
        for (channel, origin), by_path in by_channel.items():
            left = dict(by_path)

            def stored(job: Job, call_id: str, error: str | None) -> None:
                waiting = left.pop(job.path)
                for row in waiting:
                    if error is None:
                        store.update_upload(row["id"], status="done", call_id=call_id, error=None)
                    else:
                        store.update_upload(row["id"], status="failed", error=_reason(error, job.path), call_id=call_id)

            jobs = []
            for path, waiting in list(by_path.items()):
                try:
                    metadata, extra = metadata_from_json(waiting[0]["metadata"])
                except Exception as error:  # kept by an older version, or edited by hand
                    for row in waiting:
                        store.update_upload(row["id"], status="failed",
                                            error=f"通话信息无法读取（metadata: {type(error).__name__}: {error}）")
                    left.pop(path)
                    continue
                jobs.append(Job(path, metadata, extra, waiting[0]["sha256"]))
            if not jobs:
                continue
            try:
                executor = self.executor_factory(replace(self.options, collector_channel=channel))
                analyse_and_store(store, self.engine, executor, jobs, origin=origin, on_stored=stored)
            except Exception as error:
                log.exception("the executor failed")
                for path, waiting in left.items():
                    for row in waiting:
                        store.update_upload(row["id"], status="failed",
                                            error=f"分析失败（analysis failed: {type(error).__name__}: {error}）")
