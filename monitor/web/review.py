"""Staff review: the queue of flagged calls, a call's page (transcript with evidence,
audio, decisions), assignment, incident reports. Every view of evidence and every
decision goes into the append-only audit log."""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import date
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, flash, g, redirect, render_template, request, send_file, url_for
from werkzeug.utils import secure_filename

from monitor.audit import Action
from monitor.models import CATEGORIES, SPEAKERS
from monitor.store import StoreError
from monitor.runs.debtor_side import start_debtor_side
from . import abort_with, get_store, present, rule_info, state, timeline
from .auth import _safe_next
from .signal_filters import RAISED_VOICE_LABELS, BadSignalFilter, signal_filters
from .reporting import complete_debtor_side, evidence_response, report_response

bp = Blueprint("review", __name__)

REVIEW_STATUSES = ("unreviewed", "confirmed", "dismissed")


PAGE_SIZES = (25, 50, 100, 200)
SORTS = {"severity": "严重程度", "newest": "最新", "oldest": "最早", "findings": "违规条数", "collector": "催收员"}
# Why a finding is dismissed: a reason from this list is required, free text may add to it.
DISMISS_REASONS = {
    "asr_error": "转写错误（原话不是这样）",
    "wrong_speaker": "说话人判断错误（是债务人说的）",
    "context": "结合上下文不构成违规",
    "quoted": "转述或引用他人的话",
    "lawful": "属于合法的催收表述",
    "duplicate": "重复提示",
    "other": "其他（请在备注说明）",
}


def day_or_none(value: str | None, field: str) -> str | None:
    """A YYYY-MM-DD date from a filter, or None; a malformed one is refused in Chinese."""
    if not value:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        abort_with(400, f"{field}的日期格式不对：“{value[:40]}”。请用 年-月-日，例如 2025-03-01。")


def _filters() -> dict:
    args = request.args
    chosen = {
        "category": args.get("category") if args.get("category") in CATEGORIES else None,
        "collector": args.get("collector") or None,
        "team": args.get("team") or None,
        "since": day_or_none(args.get("since"), "开始日期"),
        "until": day_or_none(args.get("until"), "结束日期"),
        "review_status": args.get("status") if args.get("status") in REVIEW_STATUSES else None,
        "origin": "debtor" if args.get("origin") == "debtor" else None,
        "second_look": {"me": g.user["username"], "all": True}.get(args.get("second_look", "")),
    }
    assigned = args.get("assigned", "")
    chosen["assignee"] = {"me": g.user["username"], "none": ""}.get(assigned, assigned or None)
    try:
        chosen.update(signal_filters(args, percent=True))
    except BadSignalFilter as bad:
        abort_with(400, bad.chinese)
    return chosen


def _page() -> tuple[int, int]:
    try:
        size = int(request.args.get("size", 50))
        page = max(1, int(request.args.get("page", 1)))
    except ValueError:
        size, page = 50, 1
    return (size if size in PAGE_SIZES else 50), page


def masked(value: str | None) -> str:
    """Phone and ID numbers in lists and exports: full for admins, masked for reviewers."""
    if g.user and g.user["role"] == "admin":
        return value or ""
    return present.mask(value)


@bp.route("/")
def queue():
    store = get_store()
    filters = _filters()
    size, page = _page()
    sort = request.args.get("sort") if request.args.get("sort") in SORTS else "severity"
    total = store.queue_count(**filters)
    pages = max(1, -(-total // size))
    page = min(page, pages)
    calls = store.review_queue(**filters, limit=size, offset=(page - 1) * size, sort=sort)
    return render_template(
        "queue.html", calls=calls, args=request.args, categories=CATEGORIES, collectors=store.collectors(),
        reviewers=[u["username"] for u in store.users() if u["active"]], total=total, page=page, pages=pages,
        size=size, sizes=PAGE_SIZES, sort=sort, sorts=SORTS, reasons=DISMISS_REASONS, masked=masked,
        raised_voice_labels=RAISED_VOICE_LABELS, percent=present.percent,
        page_url=lambda n: url_for("review.queue", **{**request.args.to_dict(), "page": n}),
    )


def _selected() -> list[str]:
    ids = [i for i in request.form.getlist("call_id") if i][:1000]
    if not ids:
        abort_with(400, "请先勾选至少一个通话。")
    return ids


def dismissal_note(reason: str, note: str) -> str:
    if reason not in DISMISS_REASONS:
        abort_with(400, "驳回需要选择一个原因。")
    if reason == "other" and not note:
        abort_with(400, "原因选“其他”时，请在备注里写明原因。")
    return f"{DISMISS_REASONS[reason]}" + (f"：{note}" if note else "")


@bp.route("/bulk", methods=["POST"])
def bulk():
    """Act on the calls ticked in the queue: confirm or dismiss (reason required) every
    unreviewed finding, assign, or export them as CSV."""
    store = get_store()
    ids = _selected()
    action = request.form.get("action", "")
    me = g.user["username"]
    back = _safe_next(request.form.get("back")) or url_for("review.queue")
    if action == "export":
        return _export_csv(ids)
    if action == "assign":
        reviewer = request.form.get("reviewer", "").strip()
        reviewer = me if reviewer == "me" else reviewer
        if g.user["role"] != "admin" and reviewer != me:
            abort_with(403, "只有管理员可以把通话分配给别人。")
        if reviewer:
            user = store.user(reviewer)
            if user is None or not user["active"]:
                abort_with(400, f"没有这个审核员：{reviewer}")
        for call_id in ids:
            _check_may_assign(store.assignment(call_id), reviewer or None)
        store.assign_many([i for i in ids if store.call_row(i)], reviewer or None, me)
        flash(f"已把 {len(ids)} 个通话分配给 {reviewer}" if reviewer else f"已取消 {len(ids)} 个通话的分配", "ok")
        return redirect(back)
    if action not in ("confirmed", "dismissed"):
        abort_with(400, "请选择要做的操作。")
    note = request.form.get("note", "").strip()[:500]
    if action == "dismissed":
        note = dismissal_note(request.form.get("reason", ""), note)
    decided = 0
    for call_id in ids:
        for stored in store.findings(call_id):
            if stored.decision is None:
                store.review(stored.id, action, me, note)
                store.close_second_look(stored.id, me)
                decided += 1
    flash(f"{present.DECISION_LABELS[action]} {decided} 条违规提示（{len(ids)} 个通话）", "ok")
    return redirect(back)


def _export_csv(ids: list[str]) -> Response:
    store = get_store()
    rows = store.review_queue(ids=ids, limit=len(ids))
    out = io.StringIO()
    out.write("\ufeff")  # Excel opens UTF-8 with a BOM as Chinese, not mojibake
    writer = csv.writer(out)
    writer.writerow(["通话", "开始时间", "催收员", "债务人", "来电号码", "严重程度", "违规类别", "违规条数", "待审", "确认", "驳回", "分配给",
                     "抢话占比", "催收员说话占比", "提高音量的话轮"])
    for c in rows:
        writer.writerow([
            c["id"], present.local_time(c["started_at"] or c["created_at"]), c["collector_id"] or "", masked(c["debtor_id"]),
            masked(c["caller_number"]), present.SEVERITY_LABELS.get(c["max_severity"], ""),
            "、".join(present.CATEGORY_LABELS.get(k, k) for k in c["categories"]), c["findings"], c["unreviewed"],
            c["confirmed"], c["dismissed"], c["assignee"] or "",
            present.percent(c["overtalk_share"]), present.percent(c["collector_talk_share"]),
            c["raised_turns"] if c["overtalk_share"] is not None else "",  # no signals: not "none raised"
        ])
    store.audit(g.user["username"], Action.QUEUE_EXPORTED, "queue", {"calls": len(rows)})
    response = Response(out.getvalue().encode("utf-8"), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="queue.csv"'
    return response


@bp.route("/search")
def search():
    """Transcript search over the full-text index: phrases, speaker, dates, collector;
    each hit opens the call at that moment of the recording."""
    store = get_store()
    args = request.args
    query = args.get("q", "").strip()[:200]
    speaker = args.get("speaker") if args.get("speaker") in SPEAKERS else None
    since, until = day_or_none(args.get("since"), "开始日期"), day_or_none(args.get("until"), "结束日期")
    collector = args.get("collector") or None
    size, page = _page()
    hits, total = [], 0
    if query:
        hits, total = store.search_transcripts(query, speaker, since, until, collector, limit=size, offset=(page - 1) * size)
        store.audit(g.user["username"], Action.TRANSCRIPTS_SEARCHED, "search",
                    {"q": query, "speaker": speaker, "since": since, "until": until, "collector": collector})
    for hit in hits:
        hit["pieces"] = present.marked(hit["marked"])
    pages = max(1, -(-total // size))
    return render_template(
        "search.html", args=args, query=query, hits=hits, total=total, page=page, pages=pages,
        collectors=store.collectors(), speakers=SPEAKERS, masked=masked,
        page_url=lambda n: url_for("review.search", **{**args.to_dict(), "page": n}),
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
    if row.get("debtor_side") == "not transcribed" and start_debtor_side(
            state().database, call_id, current_app.config["ASR_OPTIONS"], state().engine):
        flash("对方声道转写中…（刷新页面查看）", "info")
    store.audit(user, Action.CALL_VIEWED, call_id, {})
    call = store.call(call_id)
    findings = store.findings(call_id)
    turns = present.transcript(call, findings)
    reviews: dict[str, list] = {}
    for review in store.reviews(call_id):
        reviews.setdefault(review["finding_id"], []).append(review)
    try:
        seek = max(0.0, float(request.args.get("t", "")))
    except ValueError:
        seek = None
    return render_template(
        "call.html", row=row, call=call, turns=turns, findings=findings, reviews=reviews,
        cards=present.by_sentence(findings), second_looks=store.second_looks(call_id),
        chart=timeline.timeline(call, findings, lambda rule: getattr(rule_info(rule), "title", None)),
        any_confirmed=any(f.decision == "confirmed" for f in findings), reasons=DISMISS_REASONS,
        assignment=store.assignment(call_id), reviewers=[u["username"] for u in store.users() if u["active"]],
        uploads=store.uploads(limit=100, call_id=call_id),
        history=[a for a in store.audit_log(call_id) if a["subject"] == call_id or a["subject"].startswith(call_id + ":")],
        metadata=json.loads(row["metadata"] or "{}"), has_audio=_recording_path(row) is not None, seek=seek,
        seek_turn=next((i for i, t in enumerate(call.turns) if seek is not None and t.start is not None
                        and t.start <= seek < (t.end if t.end is not None else t.start + 1)), None),
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
    if decision == "dismissed" and request.form.get("reason"):
        note = dismissal_note(request.form.get("reason", ""), note)
    store.review(finding_id, decision, g.user["username"], note)
    store.close_second_look(finding_id, g.user["username"])
    flash(f"已记录：{present.DECISION_LABELS[decision]}", "ok")
    return redirect(url_for("review.call", call_id=call_id, _anchor=f"f-{finding_id}"))


def _check_may_assign(current: dict | None, reviewer: str | None) -> None:
    """A reviewer may take an unassigned call or give back their own; a call an admin
    gave someone else stays theirs until an admin changes it."""
    if g.user["role"] == "admin" or current is None:
        return
    me = g.user["username"]
    if current["reviewer"] != me:
        abort_with(403, f"这个通话已分配给 {current['reviewer']}，只有管理员可以改分配。")


@bp.route("/calls/<call_id>/second-look", methods=["POST"])
def second_look(call_id: str):
    """复核: a dismissed critical finding, or a confirmation the collector disputes, goes
    to a second reviewer; both decisions stay in the record."""
    _call_or_404(call_id)
    store = get_store()
    finding_id = request.form.get("finding_id", "")
    stored = next((f for f in store.findings(call_id) if f.id == finding_id), None)
    if stored is None:
        abort(404)
    reason = request.form.get("reason", "").strip()[:500]
    if stored.decision is None:
        abort_with(400, "这条提示还没有人审核，不需要复核。")
    if stored.decision == "confirmed" and not reason:
        abort_with(400, "对确认结果提出异议时，请写明异议理由。")
    if stored.decision == "dismissed" and stored.finding.severity != "critical" and g.user["role"] != "admin":
        abort_with(400, "只有“严重”级别的驳回可以送交复核（管理员除外）。")
    reviewer = request.form.get("reviewer", "").strip()
    user = store.user(reviewer)
    if user is None or not user["active"]:
        abort_with(400, f"没有这个审核员：{reviewer}")
    try:
        store.request_second_look(finding_id, g.user["username"], reviewer, reason or "严重违规被驳回，送交复核")
    except StoreError:
        abort_with(400, "复核要由另一位审核员来做，不能是做出第一次决定的人。")
    flash(f"已送交 {reviewer} 复核", "ok")
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
    _check_may_assign(store.assignment(call_id), reviewer or None)
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
    complete_debtor_side(call_id)
    get_store().audit(g.user["username"], Action.INCIDENT_REPORT, call_id, {"format": fmt})
    name = secure_filename(f"incident-{call_id}") or "incident"
    return report_response("incident", fmt, lambda reports: reports.incident_context(get_store(), call_id), name)


@bp.route("/calls/<call_id>/evidence.zip")
def evidence(call_id: str):
    _call_or_404(call_id)
    name = secure_filename(f"evidence-{call_id}") or "evidence"
    return evidence_response(call_id, "incident", name, g.user["username"])
