"""Staff accounts and API tokens: the functions the CLI wires (`monitor users add`,
`monitor users token`). Passwords are stored as werkzeug hashes; API tokens are random
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
