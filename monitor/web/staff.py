"""Staff pages besides review: uploads, the dashboard, the rules (with a box to try a
sentence), the audit log (read-only) and accounts (admin)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for

from monitor.errors import InputError
from monitor.models import CATEGORIES, SPEAKERS, Call, Turn
from . import get_store, present, state
from .accounts import ROLES, AccountError, add_user, create_api_token
from .auth import admin_required
from monitor.runs.metadata import metadata_from_form
from .uploads import Refused, queue_upload, receive, staff_call_id

bp = Blueprint("staff", __name__)

METADATA_FIELDS = ("started_at", "collector_id", "debtor_id", "direction", "caller_number")


def accept_files(files, form, origin: str) -> tuple[list[str], list[Refused]]:
    """Receive each file and queue it with the form's metadata; returns the queued upload
    ids and the refusals (nothing is kept of a refused file)."""
    store = get_store()
    web = state()
    zone = ZoneInfo(current_app.config["TIMEZONE"])
    channel = form.get("collector_channel") or "left"
    if channel not in ("left", "right"):
        raise Refused("请选择催收员在哪个声道（左或右）。", status=400)
    fields = {name: form.get(name, "") for name in METADATA_FIELDS}
    chosen = []
    for storage in files:
        if not storage or not storage.filename:
            continue
        try:
            # Check the metadata of every file before keeping any: a bad date stores nothing.
            metadata, extra = metadata_from_form(fields, zone, current_app.config["FILENAME_PATTERN"], storage.filename)
        except InputError as error:
            raise Refused(f"通话信息有误：{error}", status=400, filename=storage.filename) from None
        chosen.append((storage, metadata, extra))
    queued, refused = [], []
    for storage, metadata, extra in chosen:
        try:
            received = receive(storage, web.upload_folder, current_app.config["ASR_OPTIONS"].max_seconds)
        except Refused as refusal:
            refused.append(refusal)
            continue
        if metadata.call_id is None:
            metadata = replace(metadata, call_id=staff_call_id(received.filename))
        queued.append(queue_upload(store, received, origin, g.user["username"], metadata, extra, channel))
    if queued:
        web.queue.notify()
    return queued, refused


@bp.route("/upload", methods=["GET", "POST"])
def upload():
    if request.method == "GET":
        return render_template("upload.html", refused=[], form={})
    files = request.files.getlist("recordings")
    if not any(f.filename for f in files):
        return render_template("upload.html", refused=[Refused("没有选择文件。", status=400)], form=request.form), 400
    try:
        queued, refused = accept_files(files, request.form, "staff")
    except Refused as refusal:
        return render_template("upload.html", refused=[refusal], form=request.form), refusal.status
    if refused and not queued:
        return render_template("upload.html", refused=refused, form=request.form), refused[0].status
    for refusal in refused:
        flash(f"{refusal.filename}：{refusal.message}", "error")
    flash(f"已收到 {len(queued)} 个录音，正在排队分析。", "ok")
    return redirect(url_for("staff.uploads"))


@bp.route("/uploads")
def uploads():
    rows = get_store().uploads(limit=300)
    pending = any(r["status"] in ("queued", "processing") for r in rows)
    return render_template("uploads.html", uploads=rows, pending=pending, refresh=5 if pending else None)


def _day(value: str | None) -> str | None:
    try:
        return date.fromisoformat(value).isoformat() if value else None
    except ValueError:
        return None


@bp.route("/dashboard")
def dashboard():
    args = request.args
    since = _day(args.get("since")) or (date.today() - timedelta(days=29)).isoformat()
    until = _day(args.get("until"))
    counts = get_store().finding_counts(since=since, until=until)
    by = {key: defaultdict(Counter) for key in ("category", "collector", "day")}
    totals = Counter()
    for row in counts:
        decision = row["decision"] or "unreviewed"
        totals[decision] += row["n"]
        by["category"][row["category"]][decision] += row["n"]
        by["collector"][row["collector_id"] or "（未知）"][decision] += row["n"]
        by["day"][row["day"]][decision] += row["n"]

    def rows(groups, order=None):
        keys = order or sorted(groups, key=lambda k: -sum(groups[k].values()))
        return [(k, sum(groups[k].values()), groups[k]["confirmed"], groups[k]) for k in keys if k in groups]

    category_rows = rows(by["category"], [c for c in CATEGORIES])
    collector_rows = rows(by["collector"])[:20]
    days = sorted(by["day"])
    first, last = date.fromisoformat(since), date.fromisoformat(until) if until else date.today()
    if 0 <= (last - first).days <= 92:  # a readable timeline: every day, empty ones too
        days = sorted({(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)} | set(days))
    day_rows = [(d, sum(by["day"][d].values()), by["day"][d]["confirmed"], by["day"][d]) for d in days]
    return render_template(
        "dashboard.html", since=since, until=until or "", totals=totals,
        category_rows=category_rows, collector_rows=collector_rows, day_rows=day_rows,
        category_chart=present.bars([(present.CATEGORY_LABELS[k], t, c) for k, t, c, _ in category_rows]),
        collector_chart=present.bars([(k, t, c) for k, t, c, _ in collector_rows]),
        day_chart=present.columns([(k[5:], t, c) for k, t, c, _ in day_rows]),
    )


@bp.route("/rules", methods=["GET", "POST"])
def rules():
    engine = state().engine
    tried = None
    text = request.form.get("text", "").strip()[:500]
    speaker = request.form.get("speaker", "collector")
    if request.method == "POST":
        if speaker not in SPEAKERS:
            speaker = "collector"
        if text:
            result = engine.scan(Call("try", (Turn(speaker, text),), is_utterance=True))
            tried = {
                "findings": result.findings,
                "segments": present.highlight(text, [(f.matched, f.rule) for f in result.findings]),
            }
    by_category = {c: [r for r in engine.pack.rules if r.category == c] for c in CATEGORIES}
    return render_template("rules.html", by_category=by_category, version=engine.pack.version, tried=tried, text=text,
                           speaker=speaker)


@bp.route("/audit")
@admin_required
def audit():
    store = get_store()
    subject = request.args.get("subject", "").strip() or None
    entries = store.audit_log(subject)
    actor = request.args.get("actor", "").strip()
    action = request.args.get("action", "").strip()
    entries = [e for e in entries if (not actor or e["actor"] == actor) and (not action or e["action"].startswith(action))]
    return render_template("audit.html", entries=entries[-1000:][::-1], args=request.args, total=len(entries))


@bp.route("/users", methods=["GET", "POST"])
@admin_required
def users():
    store = get_store()
    token = None
    if request.method == "POST":
        me = g.user["username"]
        try:
            if request.form.get("action") == "token":
                username = request.form.get("username", "")
                token = create_api_token(store, username, request.form.get("label", "").strip(), actor=me)
            else:
                username = request.form.get("username", "").strip()
                add_user(store, username, request.form.get("password", ""), request.form.get("role", "reviewer"), actor=me)
                flash(f"已创建用户 {username}", "ok")
        except AccountError as error:
            flash(str(error), "error")
    return render_template("users.html", users=store.users(), roles=ROLES, token=token)
