"""Staff log-in and log-out. Who is logged in is decided once per request by the gate
in ``create_app`` (``g.user``); these views only open and close the session."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint, abort, g, redirect, render_template, request, session, url_for

from monitor.audit import Action
from . import get_store
from .accounts import authenticate

bp = Blueprint("auth", __name__)


def admin_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if g.user is None or g.user["role"] != "admin":
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site (no scheme, no host, no protocol-relative //)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    next_page = _safe_next(request.values.get("next"))
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        store = get_store()
        user = authenticate(store, username, request.form.get("password", ""))
        if user is None:
            store.audit(username or "(empty)", Action.LOGIN_FAILED, "auth", {"ip": request.remote_addr})
            error = "用户名或密码不正确。"
        else:
            session.clear()  # a new session: no fixation
            session.permanent = True
            session["user"] = user["username"]
            store.audit(user["username"], Action.LOGIN, "auth", {"ip": request.remote_addr})
            return redirect(next_page or url_for("review.queue"))
    return render_template("login.html", error=error, next=next_page), (401 if error else 200)


@bp.route("/logout", methods=["POST"])
def logout():
    if g.user is not None:
        get_store().audit(g.user["username"], Action.LOGOUT, "auth", {})
    session.clear()
    return redirect(url_for("auth.login"))
