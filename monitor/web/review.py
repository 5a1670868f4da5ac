"""Staff review: the queue of flagged calls, a call's page (transcript with evidence,
audio, decisions), assignment, incident reports. Every view of evidence and every
decision goes into the append-only audit log."""

from __future__ import annotations

import json
import os
from pathlib import Path

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, send_file, url_for
from werkzeug.utils import secure_filename

from monitor.audit import Action
from monitor.models import CATEGORIES
from monitor.store import StoreError
from . import abort_with, get_store, present, state
from .auth import _safe_next
from .reporting import evidence_response, report_response

bp = Blueprint("review", __name__)

REVIEW_STATUSES = ("unreviewed", "confirmed", "dismissed")


def _filters() -> dict:
    args = request.args
    chosen = {
        "category": args.get("category") if args.get("category") in CATEGORIES else None,
        "collector": args.get("collector") or None,
        "since": args.get("since") or None,
        "until": args.get("until") or None,
        "review_status": args.get("status") if args.get("status") in REVIEW_STATUSES else None,
        "origin": "debtor" if args.get("origin") == "debtor" else None,
    }
    assigned = args.get("assigned", "")
    chosen["assignee"] = {"me": g.user["username"], "none": ""}.get(assigned, assigned or None)
    return chosen


@bp.route("/")
def queue():
    store = get_store()
    filters = _filters()
    calls = store.review_queue(**filters)
    return render_template(
        "queue.html", calls=calls, args=request.args, categories=CATEGORIES, collectors=store.collectors(),
        reviewers=[u["username"] for u in store.users() if u["active"]],
    )


def _call_or_404(call_id: str) -> dict:
    row = get_store().call_row(call_id)
    if row is None:
        abort(404)
    return row


@bp.route("/calls/<call_id>")
def call(call_id: str):
    store = get_store()
    row = _call_or_404(call_id)
    user = g.user["username"]
    store.audit(user, Action.CALL_VIEWED, call_id, {})
    call = store.call(call_id)
    findings = store.findings(call_id)
    turns = present.transcript(call, findings)
    reviews: dict[str, list] = {}
    for review in store.reviews(call_id):
        reviews.setdefault(review["finding_id"], []).append(review)
    return render_template(
        "call.html", row=row, call=call, turns=turns, findings=findings, reviews=reviews,
        assignment=store.assignment(call_id), reviewers=[u["username"] for u in store.users() if u["active"]],
        uploads=[u for u in store.uploads(limit=1000) if u["call_id"] == call_id],
        history=[a for a in store.audit_log(call_id) if a["subject"] == call_id or a["subject"].startswith(call_id + ":")], metadata=json.loads(row["metadata"] or "{}"),
        has_audio=_recording_path(row) is not None,
    )


def _recording_path(row: dict) -> Path | None:
    source = row.get("source")
    if not source:
        return None
    path = Path(source)
    if not path.is_absolute():
        path = Path(current_app.config["RECORDINGS_ROOT"]) / path
    return path if path.is_file() else None


@bp.route("/calls/<call_id>/audio")
def audio(call_id: str):
    row = _call_or_404(call_id)
    path = _recording_path(row)
    if path is None:
        abort_with(404, "录音文件不在服务器上。")
    download = request.args.get("download") == "1"
    # A player asks for the start (no Range, or bytes=0-) once, then for pieces as it
    # seeks: log each listening or download, not every piece.
    span = request.headers.get("Range", "")
    if download or not span or span.replace(" ", "").startswith("bytes=0-"):
        get_store().audit(g.user["username"], Action.AUDIO_DOWNLOADED if download else Action.AUDIO_PLAYED, call_id,
                          {"range": span or None})
    name = secure_filename(f"{call_id}{path.suffix}") or f"recording{path.suffix}"
    return send_file(os.fspath(path), conditional=True, as_attachment=download, download_name=name, max_age=0)


@bp.route("/calls/<call_id>/decide", methods=["POST"])
def decide(call_id: str):
    _call_or_404(call_id)
    finding_id = request.form.get("finding_id", "")
    decision = request.form.get("decision", "")
    note = request.form.get("note", "").strip()
    store = get_store()
    if not any(f.id == finding_id for f in store.findings(call_id, active_only=False)):
        abort(404)
    if decision not in ("confirmed", "dismissed"):
        abort_with(400, "请选择“确认违规”或“驳回”。")
    store.review(finding_id, decision, g.user["username"], note)
    flash(f"已记录：{present.DECISION_LABELS[decision]}", "ok")
    return redirect(url_for("review.call", call_id=call_id, _anchor=f"f-{finding_id}"))


@bp.route("/calls/<call_id>/roles", methods=["POST"])
def roles(call_id: str):
    """Staff confirm or swap which diarized voice is the collector; the rules run again
    and the findings follow (audited)."""
    from monitor.runs.roles import set_roles

    _call_or_404(call_id)
    voice = request.form.get("collector_voice", "")
    try:
        set_roles(get_store(), state().engine, call_id, voice, g.user["username"], Action.ROLES_SET)
    except ValueError as error:
        abort_with(400, str(error))
    flash(f"已确认：声音 {voice} 是催收员，规则已重新运行", "ok")
    return redirect(url_for("review.call", call_id=call_id))


@bp.route("/calls/<call_id>/assign", methods=["POST"])
def assign(call_id: str):
    _call_or_404(call_id)
    store = get_store()
    reviewer = request.form.get("reviewer", "").strip()
    me = g.user["username"]
    if reviewer == "me":
        reviewer = me
    if g.user["role"] != "admin" and reviewer not in ("", me):
        abort_with(403, "只有管理员可以把通话分配给别人。")
    if reviewer:
        user = store.user(reviewer)
        if user is None or not user["active"]:
            abort_with(400, f"没有这个审核员：{reviewer}")
    try:
        store.assign(call_id, reviewer or None, me)
    except StoreError as error:
        abort_with(400, str(error))
    flash(f"已分配给 {reviewer}" if reviewer else "已取消分配", "ok")
    return redirect(_safe_next(request.form.get("back")) or url_for("review.call", call_id=call_id))


@bp.route("/calls/<call_id>/incident.<fmt>")
def incident(call_id: str, fmt: str):
    _call_or_404(call_id)
    get_store().audit(g.user["username"], Action.INCIDENT_REPORT, call_id, {"format": fmt})
    name = secure_filename(f"incident-{call_id}") or "incident"
    return report_response("incident", fmt, lambda reports: reports.incident_context(get_store(), call_id), name)


@bp.route("/calls/<call_id>/evidence.zip")
def evidence(call_id: str):
    _call_or_404(call_id)
    name = secure_filename(f"evidence-{call_id}") or "evidence"
    return evidence_response(call_id, "incident", name, g.user["username"])
