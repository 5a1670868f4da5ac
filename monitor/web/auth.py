"""Staff log-in and log-out. Who is logged in is decided once per request by the gate
in ``create_app`` (``g.user``); these views only open and close the session."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timezone
from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, session, url_for

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


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def start_session(username: str) -> None:
    """A new server-side session: the signed cookie carries only a random id whose hash
    the store keeps, so ending it there (logout, password or role change, deactivation)
    ends it for every copy of the cookie."""
    session.clear()  # a new session: no fixation
    session.permanent = True
    session_id = secrets.token_urlsafe(32)
    get_store().open_session(session_hash(session_id), username, _oldest_valid())
    session["sid"] = session_id


def session_user() -> dict | None:
    """The user of this request's session, if it is still open on the server."""
    session_id = session.get("sid")
    if not isinstance(session_id, str) or not session_id:
        return None
    return get_store().session_user(session_hash(session_id), _oldest_valid())


def _oldest_valid() -> str:
    """When the oldest session still valid was opened (the session lifetime ago)."""
    oldest = datetime.now(timezone.utc) - current_app.config["PERMANENT_SESSION_LIFETIME"]
    return oldest.isoformat(timespec="seconds")


def current_session_hash() -> str | None:
    session_id = session.get("sid")
    return session_hash(session_id) if isinstance(session_id, str) and session_id else None


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
            start_session(user["username"])
            store.audit(user["username"], Action.LOGIN, "auth", {"ip": request.remote_addr})
            return redirect(next_page or url_for("review.queue"))
    return render_template("login.html", error=error, next=next_page), (401 if error else 200)


@bp.route("/logout", methods=["POST"])
def logout():
    if g.user is not None:
        get_store().audit(g.user["username"], Action.LOGOUT, "auth", {})
    if current_session_hash():
        get_store().revoke_session(current_session_hash())
    session.clear()
    return redirect(url_for("auth.login"))
