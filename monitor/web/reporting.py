"""Downloads of the complaint letter, the incident report and the evidence package."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

from flask import Response, abort

from monitor.documents import evidence, reports
from monitor.errors import MonitorError

FORMATS = {
    "html": "text/html",
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}


# What a report or evidence refusal means, for the person who asked (the reason the
# documents give is English and names internal ids; it goes to the log).
_REFUSALS = (
    ("no confirmed finding", "这个通话还没有已确认的违规：请先在通话页审核违规提示，确认后才能生成。"),
    ("found no violation", "自动分析没有在这段录音里发现违规，没有可以写进投诉书的内容。"),
    ("not scanned", "这个通话还没有分析完，请稍后再试。"),
    ("is failed", "这个通话无法分析，没有可以生成的内容。"),
    ("changed since", "服务器上的录音文件与分析时不一致（可能被改动），不能导出证据包。"),
    ("SHA-256 now", "服务器上的录音文件与分析时不一致（可能被改动），不能导出证据包。"),
    ("not found", "录音文件不在服务器上，不能导出证据包。"),
    ("missing", "录音文件不在服务器上，不能导出证据包。"),
)


def refusal(error: Exception) -> str:
    """A document refusal in Chinese."""
    import logging

    logging.getLogger("monitor.web").info("document refused: %s", error)
    text = str(error)
    for needle, chinese in _REFUSALS:
        if needle in text:
            return chinese
    return "现在无法生成这份文件。"

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
        abort_with(409, f"无法生成：{refusal(error)}")
    # mimetype, not content_type: werkzeug adds "; charset=utf-8" to text types itself.
    response = Response(data, mimetype=FORMATS[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    # An HTML report may carry its own styles; it is a download, never part of the site.
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    return response


def evidence_response(call_id: str, kind: str, filename: str, actor: str, store=None, **options) -> Response:
    """The evidence zip of one call, sent as a download: 409 when it cannot be built (no
    confirmed finding, recording missing or changed since it was analysed)."""
    from . import abort_with, get_store

    if store is None:  # a private copy was made from a call whose sides are complete
        complete_debtor_side(call_id)
    folder = tempfile.TemporaryDirectory(prefix="monitor-evidence-")
    try:
        path = evidence.build_evidence_package(store or get_store(), call_id, f"{folder.name}/{filename}.zip", kind,
                                               actor=actor, **options)
        data = Path(path).read_bytes()
    except (evidence.EvidenceError, reports.ReportError) as error:
        abort_with(409, f"无法导出：{refusal(error)}")
    finally:
        folder.cleanup()
    response = Response(data, mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}.zip"'
    return response
