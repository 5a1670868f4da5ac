"""Downloads of the complaint letter, the incident report and the evidence package."""

from __future__ import annotations

import tempfile
from typing import Callable

from flask import Response, abort

from monitor.documents import evidence, reports
from monitor.errors import MonitorError

FORMATS = {
    "html": "text/html",
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}


def complete_debtor_side(call_id: str) -> None:
    """A document holds both sides: a debtor side the batch skipped is transcribed now."""
    from flask import current_app

    from monitor.runs.debtor_side import transcribe_debtor_side

    from . import abort_with, get_store, state

    try:
        transcribe_debtor_side(get_store(), call_id, current_app.config["ASR_OPTIONS"], state().engine)
    except MonitorError as error:
        abort_with(409, f"对方声道无法转写：{error}")


def report_response(kind: str, fmt: str, make_context: Callable, filename: str) -> Response:
    """``make_context(reports)`` builds the context with the reports module; the result
    is rendered as ``fmt`` and sent as a download. 409 when the report cannot be made
    (ReportError: e.g. no confirmed finding)."""
    from . import abort_with

    if fmt not in FORMATS:
        abort(404)
    try:
        data = reports.render(make_context(reports), kind, fmt)
    except reports.ReportError as error:
        abort_with(409, f"无法生成：{error}")
    response = Response(data, mimetype=FORMATS[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    # An HTML report may carry its own styles; it is a download, never part of the site.
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    return response


def evidence_response(call_id: str, kind: str, filename: str, actor: str, **options) -> Response:
    """The evidence zip of one call, sent as a download: 409 when it cannot be built (no
    confirmed finding, recording missing or changed since it was analysed)."""
    from . import abort_with, get_store

    complete_debtor_side(call_id)
    folder = tempfile.TemporaryDirectory(prefix="monitor-evidence-")
    try:
        path = evidence.build_evidence_package(get_store(), call_id, f"{folder.name}/{filename}.zip", kind,
                                               actor=actor, **options)
        data = open(path, "rb").read()
    except (evidence.EvidenceError, reports.ReportError) as error:
        abort_with(409, f"无法导出：{error}")
    finally:
        folder.cleanup()
    response = Response(data, mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}.zip"'
    return response
