"""Staff accounts and API tokens: the functions the CLI wires (`monitor users add`,
`monitor token`; the admin pages use the rest). Passwords are stored as werkzeug hashes; API tokens are random
and only their SHA-256 is stored, so a copy of the database reveals neither."""

from __future__ import annotations

import hashlib
import re
import secrets

from werkzeug.security import check_password_hash, generate_password_hash

from monitor.audit import Action
from monitor.errors import MonitorError
from monitor.store import Store, StoreError

ROLES = ("admin", "reviewer")
MIN_PASSWORD_LENGTH = 8
_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
# Compared against when the user does not exist, so a wrong name costs as much time as
# a wrong password (no user enumeration by timing).
_DUMMY_HASH = generate_password_hash("not a password of anyone")


class AccountError(MonitorError):
    """A user or token that cannot be created (bad name, short password, unknown role …)."""


def add_user(store: Store, username: str, password: str, role: str = "reviewer", actor: str = "system") -> None:
    """Create a staff account. Raises AccountError for an invalid name, an unknown role,
    a password shorter than 8 characters or an existing user."""
    if not _USERNAME.match(username or ""):
        raise AccountError("username: 1–64 letters, digits or . _ @ - (no spaces)")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password too short: at least {MIN_PASSWORD_LENGTH} characters")
    try:
        store.add_user(username, generate_password_hash(password), role)
    except StoreError as error:
        raise AccountError(str(error)) from None
    store.audit(actor, Action.USER_ADDED, username, {"role": role})


def _check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise AccountError(f"密码太短：至少 {MIN_PASSWORD_LENGTH} 位")


def _existing(store: Store, username: str) -> dict:
    user = store.user(username or "")
    if user is None:
        raise AccountError(f"没有这个用户：{username}")
    return user


def change_password(store: Store, username: str, current: str, new: str, keep_session: str | None = None) -> None:
    """A user changes their own password (the current one is asked for); every other
    session of theirs ends."""
    if authenticate(store, username, current) is None:
        raise AccountError("当前密码不正确。")
    _check_password(new)
    store.set_password(username, generate_password_hash(new))
    store.revoke_sessions(username, keep=keep_session)
    store.audit(username, Action.PASSWORD_CHANGED, username, {})


def reset_password(store: Store, username: str, new: str, actor: str) -> None:
    """An admin sets a new password for someone; all their sessions end."""
    _existing(store, username)
    _check_password(new)
    store.set_password(username, generate_password_hash(new))
    store.revoke_sessions(username)
    store.audit(actor, Action.PASSWORD_RESET, username, {})


def set_active(store: Store, username: str, active: bool, actor: str) -> None:
    """Deactivate (sessions and API tokens stop working at once) or reactivate."""
    _existing(store, username)
    if username == actor and not active:
        raise AccountError("不能停用自己的账户。")
    store.set_user_active(username, active)
    store.audit(actor, Action.USER_ACTIVATED if active else Action.USER_DEACTIVATED, username, {})


def set_role(store: Store, username: str, role: str, actor: str) -> None:
    user = _existing(store, username)
    if role not in ROLES:
        raise AccountError(f"角色只能是 {', '.join(ROLES)}，不能是 {role!r}")
    if username == actor and role != "admin":
        raise AccountError("不能取消自己的管理员角色（请让另一位管理员来做）。")
    if user["role"] == role:
        return
    store.set_role(username, role)
    store.audit(actor, Action.ROLE_CHANGED, username, {"from": user["role"], "to": role})


def revoke_token(store: Store, token_prefix: str, actor: str, owner: str | None = None) -> dict:
    """Revoke one API token, named by the start of its hash (``owner``: only theirs)."""
    row = store.revoke_token(token_prefix, owner)
    if row is None:
        raise AccountError("没有这个令牌。")
    store.audit(actor, Action.TOKEN_REVOKED, row["username"], {"token": token_prefix[:12], "label": row["label"]})
    return row


def authenticate(store: Store, username: str, password: str) -> dict | None:
    """The active user with this name and password, else None."""
    user = store.user(username or "")
    if user is None or not user["active"]:
        check_password_hash(_DUMMY_HASH, password or "")
        return None
    return user if check_password_hash(user["password_hash"], password or "") else None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_api_token(store: Store, username: str, label: str = "", actor: str = "system") -> str:
    """A new API token for ``username`` (shown once; only its hash is stored). Use it as
    ``Authorization: Bearer <token>``."""
    user = store.user(username)
    if user is None or not user["active"]:
        raise AccountError(f"no active user {username!r}")
    token = secrets.token_urlsafe(32)
    store.add_api_token(token_hash(token), username, label)
    store.audit(actor, Action.TOKEN_CREATED, username, {"label": label})
    return token


def user_for_token(store: Store, token: str) -> dict | None:
    return store.user_for_token(token_hash(token)) if token else None
