"""A call whose debtor side the batch skipped gets it when someone needs it: opening the
call (in the background, the page says it is being done) or asking for a document (at
once, so the document holds both sides).

``transcribe_debtor_side`` transcribes the recording's two channels again (the
collector's too, so the turns are exactly those of a both-channel run: a collector
sentence interrupted by the debtor is two turns, not one), replaces the turns, runs the
rules over the call again with its history and stores the findings. Only one
transcription of a call runs at a time in a process; a second request waits for it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import TYPE_CHECKING

from monitor.detection.engine import Engine
from monitor.errors import MonitorError
from monitor.runs.collector_first import NOT_TRANSCRIBED, TRANSCRIBED
from monitor.runs.pipeline import AsrOptions, transcribe_part

if TYPE_CHECKING:
    from monitor.store import Store

log = logging.getLogger("monitor.runs.debtor_side")

_running: dict[tuple[str, str], threading.Event] = {}  # (database, call id) → done
_running_lock = threading.Lock()


def needs_debtor_side(store: "Store", call_id: str) -> bool:
    return store.debtor_side(call_id) == NOT_TRANSCRIBED


def transcribe_debtor_side(store: "Store", call_id: str, options: AsrOptions = AsrOptions(),
                           engine: Engine | None = None) -> bool:
    """Fill in the debtor side of a stored call, if it was skipped; returns whether it
    transcribed anything. ``engine``: the rules to run again (default: the configured
    rule pack). Raises MonitorError when the recording is gone or changed."""
    key = (str(store.path), call_id)
    while True:
        with _running_lock:
            running = _running.get(key)
            if running is None:
                if not needs_debtor_side(store, call_id):
                    return False
                done = _running[key] = threading.Event()
                break
        running.wait()  # someone else is transcribing it: use their result
    try:
        row = store.call_row(call_id)
        if not row or not row["source"]:
            raise MonitorError(f"call {call_id}: the recording's path is not known, its debtor side cannot be transcribed")
        if row.get("collector_channel") in ("left", "right"):
            options = replace(options, collector_channel=row["collector_channel"])
        heard = transcribe_part(row["source"], options, "both")
        store.replace_turns(call_id, heard.call, debtor_side=TRANSCRIBED)
        if engine is None:
            from monitor import settings
            from monitor.detection.examples import load_engine

            engine = load_engine(settings.get("rules_dir") or None)
        call = store.call(call_id)
        store.save_findings(call_id, engine.scan(call, store.earlier_calls(call)), engine.pack.version)
        store.carry_reviews(call_id)
        return True
    finally:
        with _running_lock:
            del _running[key]
        done.set()


def is_transcribing(store: "Store", call_id: str) -> bool:
    with _running_lock:
        return (str(store.path), call_id) in _running


def start_debtor_side(database: str, call_id: str, options: AsrOptions, engine: Engine | None = None) -> bool:
    """Transcribe a call's skipped debtor side in a background thread (the web app's
    call page); returns True when it is being done (now or already), False when there
    is nothing to do."""
    from monitor.store import Store

    store = Store(database)
    try:
        if is_transcribing(store, call_id):
            return True
        if not needs_debtor_side(store, call_id):
            return False
    finally:
        store.close()

    def work() -> None:
        own = Store(database)
        try:
            transcribe_debtor_side(own, call_id, options, engine)
        except Exception:  # a background job has nobody to raise to: log it
            log.exception("could not transcribe the debtor side of call %s", call_id)
        finally:
            own.close()

    threading.Thread(target=work, name=f"debtor-side-{call_id}", daemon=True).start()
    return True
