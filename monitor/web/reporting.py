"""Downloads of the complaint letter and the incident report. monitor/reports.py is
imported only when asked for, so the app runs (and says so) without it."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Callable

from flask import Response, abort

FORMATS = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}


def report_response(kind: str, fmt: str, make_context: Callable, filename: str) -> Response:
    """``make_context(reports)`` builds the context with the reports module; the result
    is rendered as ``fmt`` and sent as a download. 501 without monitor/reports.py, 409
    when the report cannot be made (ReportError: e.g. no confirmed finding)."""
    from . import abort_with

    if fmt not in FORMATS:
        abort(404)
    try:
        reports = importlib.import_module("monitor.reports")
    except ModuleNotFoundError as error:
        if error.name != "monitor.reports":
            raise
        abort_with(501, "报告模块（monitor/reports.py）还没有安装，暂时无法生成文书。")
    report_error = getattr(reports, "ReportError", ())
    try:
        data = reports.render(make_context(reports), kind, fmt)
    except report_error as error:
        abort_with(409, f"无法生成：{error}")
    response = Response(data, mimetype=FORMATS[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    # An HTML report may carry its own styles; it is a download, never part of the site.
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    return response


def evidence_response(call_id: str, kind: str, filename: str, actor: str, **options) -> Response:
    """The evidence zip of one call (monitor/evidence.py), sent as a download: 501 without
    the module, 409 when it cannot be built (no confirmed finding, recording missing or
    changed since it was analysed)."""
    import tempfile

    from flask import send_file

    from . import abort_with, get_store

    try:
        evidence = importlib.import_module("monitor.evidence")
    except ModuleNotFoundError as error:
        if error.name != "monitor.evidence":
            raise
        abort_with(501, "证据包模块（monitor/evidence.py）还没有安装，暂时无法导出。")
    refusals = tuple(e for e in (getattr(evidence, "EvidenceError", None), _report_error()) if e is not None)
    folder = tempfile.TemporaryDirectory(prefix="monitor-evidence-")
    try:
        path = evidence.build_evidence_package(get_store(), call_id, f"{folder.name}/{filename}.zip", kind,
                                               actor=actor, **options)
        data = open(path, "rb").read()
    except refusals as error:
        abort_with(409, f"无法导出：{error}")
    finally:
        folder.cleanup()
    response = Response(data, mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}.zip"'
    return response


def _report_error():
    try:
        return getattr(importlib.import_module("monitor.reports"), "ReportError", None)
    except ModuleNotFoundError:
        return None


def module_available(name: str) -> bool:
    module = sys.modules.get(name, False)
    if module is not False:
        return module is not None
    return importlib.util.find_spec(name) is not None


def reports_available() -> bool:
    """Whether monitor/reports.py can be imported (the download links show only then)."""
    return module_available("monitor.reports")


def evidence_available() -> bool:
    return module_available("monitor.evidence")
