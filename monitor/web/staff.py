"""Staff pages besides review: uploads, the dashboard, the rules (with a box to try a
sentence), the audit log (read-only) and accounts (admin)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for

from monitor.audit import Action
from monitor.errors import InputError
from monitor.models import CATEGORIES, SPEAKERS, Call, Turn
from . import get_store, present, state
from monitor.store import Store
from . import accounts
from .accounts import ROLES, AccountError, add_user, create_api_token
from .auth import admin_required, current_session_hash
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


UPLOADS_PER_PAGE = 100


@bp.route("/uploads")
def uploads():
    store = get_store()
    total = store.upload_count()
    pages = max(1, -(-total // UPLOADS_PER_PAGE))
    try:
        page = min(pages, max(1, int(request.args.get("page", 1))))
    except ValueError:
        page = 1
    rows = store.uploads(limit=UPLOADS_PER_PAGE, offset=(page - 1) * UPLOADS_PER_PAGE)
    pending = store.pending_upload_count() > 0
    return render_template("uploads.html", uploads=rows, pending=pending, refresh=5 if pending else None,
                           total=total, page=page, pages=pages,
                           page_url=lambda n: url_for("staff.uploads", page=n))


def _day(value: str | None) -> str | None:
    try:
        return date.fromisoformat(value).isoformat() if value else None
    except ValueError:
        return None


@bp.route("/dashboard")
def dashboard():
    args = request.args
    store = get_store()
    today = datetime.now(present.times.local_zone()).date()
    since, until = _day(args.get("since")), _day(args.get("until"))
    if (args.get("since") and not since) or (args.get("until") and not until):
        flash("日期格式不对，已改用默认时间段（最近 30 天）。请用 年-月-日，例如 2025-03-01。", "error")
    since = since or (today - timedelta(days=29)).isoformat()
    by = {key: defaultdict(Counter) for key in ("category", "collector", "team", "day")}
    totals = Counter()
    for dimension, rows_of in store.dashboard_counts(since=since, until=until).items():
        for key, decision, n in rows_of:
            decision = decision or "unreviewed"
            if dimension == "category":
                totals[decision] += n
            if dimension != "team" or key:
                by[dimension][key or ""][decision] += n

    def rows(groups, order=None):
        keys = order or sorted(groups, key=lambda k: -sum(groups[k].values()))
        return [(k, sum(groups[k].values()), groups[k]["confirmed"], groups[k]) for k in keys if k in groups]

    # Rates per 100 analysed calls: a collector with many calls is not worse for it.
    analysed = store.call_counts(since=since, until=until)
    calls_by_collector, calls_by_team = Counter(analysed["collector"]), Counter(analysed["team"])
    all_calls = sum(analysed["all"].values())
    window = {"since": since, **({"until": until} if until else {})}

    def rate(findings: int, calls: int) -> float:
        return round(100 * findings / calls, 1) if calls else 0.0

    category_rows = rows(by["category"], [c for c in CATEGORIES])
    collector_rows = rows(by["collector"])
    collector_rates = sorted(
        ((k or "（未知）", rate(t, calls_by_collector[k]), calls_by_collector[k], t,
          url_for("review.queue", collector=k, **window) if k else None) for k, t, _, _ in collector_rows),
        key=lambda r: -r[1])[:20]
    category_rates = [(present.CATEGORY_LABELS[k], rate(t, all_calls), all_calls, t,
                       url_for("review.queue", category=k, **window)) for k, t, _, _ in category_rows]
    team_rates = sorted(
        ((k, rate(t, calls_by_team[k]), calls_by_team[k], t, url_for("review.queue", team=k, **window))
         for k, t, _, _ in rows(by["team"])), key=lambda r: -r[1])[:20]
    days = sorted(by["day"])
    first, last = date.fromisoformat(since), date.fromisoformat(until) if until else today
    if 0 <= (last - first).days <= 92:  # a readable timeline: every day, empty ones too
        days = sorted({(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)} | set(days))
    day_rows = [(d, sum(by["day"][d].values()), by["day"][d]["confirmed"], by["day"][d]) for d in days]
    ages = store.unreviewed_ages(datetime.now(timezone.utc))
    return render_template(
        "dashboard.html", since=since, until=until or "", totals=totals, all_calls=all_calls,
        category_rows=category_rows, collector_rows=collector_rows[:20], day_rows=day_rows,
        category_chart=present.rate_bars(category_rates), collector_chart=present.rate_bars(collector_rates),
        team_chart=present.rate_bars(team_rates), team_rates=team_rates, collector_rates=collector_rates,
        category_rates=category_rates,
        day_chart=present.columns([(k[5:], t, c) for k, t, c, _ in day_rows],
                                  links=[url_for("review.queue", since=d, until=d) for d, _, _, _ in day_rows]),
        throughput=store.reviewer_throughput(since, until), ages=[(k, ages.get(k, 0)) for k in AGE_BUCKETS],
        zone_name=present.zone_label(),
    )


AGE_BUCKETS = tuple(name for name, _, _ in Store.AGE_BUCKETS)


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
    return render_template("audit.html", entries=entries[-1000:][::-1], args=request.args, total=len(entries),
                           actions=list(Action))


@bp.route("/users", methods=["GET", "POST"])
@admin_required
def users():
    """Accounts (admin): create (reviewer by default), deactivate, change role, reset a
    password, list and revoke API tokens. An admin mints tokens only for themselves: a
    token for someone else would act in their name without them knowing (`monitor token
    USER` on the server does that, for the operator)."""
    store = get_store()
    token = None
    me = g.user["username"]
    if request.method == "POST":
        action = request.form.get("action", "")
        username = request.form.get("username", "").strip()
        try:
            if action == "token":
                token = create_api_token(store, me, request.form.get("label", "").strip()[:100], actor=me)
            elif action == "revoke":
                row = accounts.revoke_token(store, request.form.get("token", ""), actor=me)
                flash(f"已吊销 {row['username']} 的令牌 {row['label'] or row['token_hash'][:12]}", "ok")
            elif action == "deactivate":
                accounts.set_active(store, username, False, actor=me)
                flash(f"已停用 {username}，其登录会话和 API 令牌立即失效", "ok")
            elif action == "activate":
                accounts.set_active(store, username, True, actor=me)
                flash(f"已启用 {username}", "ok")
            elif action == "role":
                accounts.set_role(store, username, request.form.get("role", ""), actor=me)
                flash(f"已更改 {username} 的角色，其会话已结束", "ok")
            elif action == "reset":
                accounts.reset_password(store, username, request.form.get("password", ""), actor=me)
                flash(f"已为 {username} 设置新密码，其会话已结束", "ok")
            elif action == "add":
                add_user(store, username, request.form.get("password", ""), request.form.get("role", "reviewer"), actor=me)
                flash(f"已创建用户 {username}", "ok")
            else:
                flash("未知操作。", "error")
        except AccountError as error:
            flash(str(error), "error")
        if token is None:
            return redirect(url_for("staff.users"))
    return render_template("users.html", users=store.users(), roles=ROLES, token=token, tokens=store.api_tokens())


@bp.route("/account", methods=["GET", "POST"])
def account():
    """Every user's own account: change the password (other sessions end), see and
    revoke their API tokens."""
    store = get_store()
    me = g.user["username"]
    if request.method == "POST":
        try:
            if request.form.get("action") == "revoke":
                accounts.revoke_token(store, request.form.get("token", ""), actor=me, owner=me)
                flash("令牌已吊销", "ok")
            else:
                new = request.form.get("new_password", "")
                if new != request.form.get("confirm_password", ""):
                    raise AccountError("两次输入的新密码不一致。")
                accounts.change_password(store, me, request.form.get("password", ""), new,
                                         keep_session=current_session_hash())
                flash("密码已修改；其他设备上的登录已结束。", "ok")
        except AccountError as error:
            flash(str(error), "error")
        return redirect(url_for("staff.account"))
    return render_template("account.html", tokens=store.api_tokens(me))
