"""The web app: review queue and call pages for staff, a portal where a debtor submits a
recording, and a JSON API. A thin shell over the same library calls as the CLI.

    create_app(config)   the Flask app (factory: nothing is built at import time)
    serve(...)           run it with waitress, with the background upload worker
    add_user(...)        create a staff account (admin or reviewer)
    create_api_token()   a bearer token for the API

Configuration, lowest to highest precedence: built-in defaults and the monitor settings
(environment), ``settings.py`` in the instance folder, the ``config`` dict. The instance
folder (default ``./instance``) also holds ``secret_key`` (generated on first start when
no SECRET_KEY is configured) and ``uploads/`` (received recordings).

Session cookies are HttpOnly and SameSite=Lax, and Secure unless TESTING is set or
``serve`` listens on a loopback address (127.0.0.1, ::1, localhost) where there is no
TLS; behind an HTTPS reverse proxy keep them Secure and set PROXY_HOPS.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from flask import Flask, g, jsonify, redirect, render_template, request, session, url_for
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from zoneinfo import ZoneInfo

from monitor import settings
from monitor.audit import label as audit_label
from monitor.detection.engine import Engine
from monitor.runs.pipeline import AsrOptions
from monitor.store import Store
from . import present
from .accounts import AccountError, add_user, create_api_token, user_for_token
from .jobs import UploadQueue

__all__ = ["create_app", "serve", "make_server", "add_user", "create_api_token", "AccountError"]

log = logging.getLogger("monitor.web")

# Endpoints anyone may reach. Everything else needs a staff login (pages) or an API
# token (the api blueprint): deny by default, so a new route is never left open.
PUBLIC_ENDPOINTS = {"auth.login", "static", "favicon"}
PUBLIC_BLUEPRINTS = {"submit"}
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _setting(name: str, fallback: str) -> str:
    """A monitor setting (environment), or ``fallback`` while the settings table does
    not define it yet."""
    try:
        return settings.get(name) or fallback
    except KeyError:
        return fallback


def _defaults() -> dict:
    return {
        "DATABASE": settings.get("db"),
        "RULES_DIR": settings.get("rules_dir") or None,
        "TIMEZONE": settings.get("timezone"),
        "FILENAME_PATTERN": settings.get("filename_pattern") or None,
        "UPLOAD_FOLDER": None,  # None: <instance>/uploads
        "RECORDINGS_ROOT": os.getcwd(),  # where relative batch sources are found
        "MAX_CONTENT_LENGTH": int(float(_setting("max_upload_mb", "50")) * 1024 * 1024),
        "LOGIN_RATE_LIMIT": _setting("login_rate_limit", "5 per minute"),
        "SUBMIT_RATE_LIMIT": _setting("submit_rate_limit", "10 per hour"),
        "RECEIPT_RATE_LIMIT": "60 per minute",
        "API_RATE_LIMIT": "120 per minute",
        "RATELIMIT_STORAGE_URI": "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,  # a 429 says when to try again (Retry-After)
        "PROXY_HOPS": int(_setting("proxy_hops", "0")),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=8),
        "WTF_CSRF_TIME_LIMIT": None,  # valid as long as the session (a debtor may take long)
        "ASR_OPTIONS": AsrOptions(),
        "WORKERS": 1,
        "SCHEDULER": None,
        "EXECUTOR_FACTORY": None,  # callable(AsrOptions) -> executor; None: the batch's
        "ENGINE": None,  # an Engine already loaded; None: load RULES_DIR
        "SESSION_COOKIE_SECURE": None,  # None: Secure unless TESTING (serve decides by host)
    }


@dataclass
class WebState:
    database: str
    engine: Engine
    queue: UploadQueue
    limiter: Limiter
    upload_folder: Path


def state() -> WebState:
    from flask import current_app

    return current_app.extensions["monitor"]


def get_store() -> Store:
    """The store for this request (one SQLite connection per request and thread)."""
    if "store" not in g:
        g.store = Store(state().database)
    return g.store


def rule_info(rule_id: str):
    """The rule behind a finding, or None for a rule since removed from the pack."""
    try:
        return state().engine.pack.rule(rule_id)
    except KeyError:
        return None


def _secret_key(instance: Path) -> str:
    path = instance / "secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return key


def create_app(config: dict | None = None) -> Flask:
    """The web app. ``config`` overrides every other source; INSTANCE_PATH chooses the
    instance folder."""
    config = dict(config or {})
    instance = config.pop("INSTANCE_PATH", None) or _setting("instance_dir", "") or None
    app = Flask(__name__, instance_path=os.path.abspath(instance) if instance else None, instance_relative_config=True)
    app.config.from_mapping(_defaults())
    app.config.from_pyfile("settings.py", silent=True)
    app.config.update(config)
    if app.config["SESSION_COOKIE_SECURE"] is None:
        app.config["SESSION_COOKIE_SECURE"] = not app.config.get("TESTING")
    instance_path = Path(app.instance_path)
    instance_path.mkdir(parents=True, exist_ok=True)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(instance_path)
    upload_folder = Path(app.config["UPLOAD_FOLDER"] or instance_path / "uploads").resolve()
    upload_folder.mkdir(parents=True, exist_ok=True)
    database = os.path.abspath(app.config["DATABASE"])
    Store(database).close()  # create or migrate the schema now, not on the first request

    engine = app.config["ENGINE"]
    if engine is None:
        from monitor.detection.examples import load_engine

        engine = load_engine(app.config["RULES_DIR"])  # RuleError stops the start, located
    factory = app.config["EXECUTOR_FACTORY"]
    if factory is None:
        from monitor.runs.executor import make_executor

        workers, scheduler = app.config["WORKERS"], app.config["SCHEDULER"]
        factory = lambda options: make_executor(workers, scheduler, options)  # noqa: E731
    queue = UploadQueue(database, engine, app.config["ASR_OPTIONS"], factory)

    if app.config["PROXY_HOPS"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    # The gate first, so an anonymous request is turned away before anything else runs.
    app.before_request(_gate)
    csrf = CSRFProtect(app)
    limiter = Limiter(get_remote_address, app=app, storage_uri=app.config["RATELIMIT_STORAGE_URI"], default_limits=[])
    app.extensions["monitor"] = WebState(database, engine, queue, limiter, upload_folder)

    from . import api, auth, review, staff, submit, suggest

    for blueprint in (auth.bp, review.bp, staff.bp, submit.bp, api.bp, suggest.bp):
        app.register_blueprint(blueprint)
    csrf.exempt(api.bp)  # token-authenticated, no cookies: CSRF does not apply
    # Only failed logins count (a team behind one address logs in every morning), and only
    # accepted submissions (a debtor whose file was refused must be able to try another).
    _limit(app, limiter, "auth.login", app.config["LOGIN_RATE_LIMIT"], ["POST"],
           deduct_when=lambda response: response.status_code != 302)
    _limit(app, limiter, "submit.form", app.config["SUBMIT_RATE_LIMIT"], ["POST"],
           deduct_when=lambda response: response.status_code == 303)
    _limit(app, limiter, "submit.receipt", app.config["RECEIPT_RATE_LIMIT"], None)
    for endpoint in list(app.view_functions):
        if endpoint.startswith("api."):
            _limit(app, limiter, endpoint, app.config["API_RATE_LIMIT"], None)

    app.teardown_appcontext(_close_store)
    app.after_request(_headers)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(CSRFError, _csrf_error)
    zone = ZoneInfo(app.config["TIMEZONE"])
    app.jinja_env.globals.update(
        labels=present, clock=present.clock, local_time=lambda value: present.local_time(value, zone),
        zone_label=present.zone_label(zone), rule_info=rule_info, action_label=audit_label,
        detail_text=present.detail_text,
    )
    app.add_url_rule("/favicon.ico", "favicon", _favicon)
    return app


def _limit(app: Flask, limiter: Limiter, endpoint: str, value: str, methods: list[str] | None, deduct_when=None) -> None:
    app.view_functions[endpoint] = limiter.limit(value, methods=methods, deduct_when=deduct_when)(app.view_functions[endpoint])


def _gate():
    g.user = None
    endpoint = request.endpoint
    if endpoint in ("static", "favicon"):
        return None  # style sheets, scripts and the icon are public
    blueprint = endpoint.split(".", 1)[0] if endpoint and "." in endpoint else None
    if blueprint == "api":
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        user = user_for_token(get_store(), token) if token else None
        if user is None:
            response = jsonify(error="unauthorized", message="需要有效的 API 令牌：Authorization: Bearer <token>")
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Bearer realm="monitor"'
            return response
        g.user = user
        return None
    if session.get("sid"):
        from .auth import session_user

        g.user = session_user()
        if g.user is None:
            session.clear()  # ended on the server (logout, deactivation, role or password change)
    if endpoint is None:
        return None  # 404 / 405 follow, and know who is logged in
    if endpoint in PUBLIC_ENDPOINTS or blueprint in PUBLIC_BLUEPRINTS:
        return None
    if g.user is None:
        return redirect(url_for("auth.login", next=request.full_path if request.method == "GET" else None))
    return None


def _favicon():
    from flask import current_app, send_from_directory

    return send_from_directory(current_app.static_folder, "favicon.svg", mimetype="image/svg+xml", max_age=86400)


def _close_store(_exc) -> None:
    store = g.pop("store", None)
    if store is not None:
        store.close()


def _headers(response):
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; media-src 'self'; "
        "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")  # receipt links carry a secret
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.endpoint != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


ERROR_MESSAGES = {
    400: "请求无效。",
    401: "需要登录。",
    403: "您没有权限做这件事。",
    404: "没有找到这个页面。链接可能不完整或已失效，请检查链接是否完整复制。",
    405: "不支持这种请求方式。",
    409: "现在无法完成这个操作。",
    413: "文件太大，没有保存。",
    415: "不支持这种文件。",
    429: "尝试次数太多，请稍等一会儿再试。",
}


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _http_error(error: HTTPException):
    code = error.code or 500
    message = ERROR_MESSAGES.get(code, "出错了。")
    detail = error.description if getattr(error, "monitor_detail", False) else None
    if code == 413:
        limit = (request.max_content_length or 0) / 1024 / 1024
        detail = f"单次上传最多 {limit:g} MB。请压缩录音或只上传通话那一段。"
    if _wants_json():
        response = jsonify(error=error.name.lower().replace(" ", "_"), message=detail or message)
        response.status_code = code
        return response
    return render_template("error.html", code=code, message=message, detail=detail), code


def _csrf_error(error: CSRFError):
    message = "表单缺少安全令牌或已过期，请刷新页面后重新提交。"
    return render_template("error.html", code=400, message=message, detail=None), 400


def abort_with(code: int, detail: str):
    """Abort with a message the error page shows."""
    from flask import abort

    try:
        abort(code, description=detail)
    except HTTPException as error:
        error.monitor_detail = True
        raise


def make_server(app: Flask, host: str = "127.0.0.1", port: int = 8000, threads: int = 8):
    """A waitress server for ``app`` (``.run()`` serves, ``.close()`` stops;
    ``.effective_port`` is the port when 0 was asked for)."""
    from waitress import create_server

    return create_server(app, host=host, port=port, threads=threads, ident="monitor",
                         max_request_body_size=request_body_limit(app))


def request_body_limit(app: Flask) -> int:
    """The largest request body waitress reads: the app's upload limit and room for the
    form around the file, so a client streaming far more is cut off by the server
    (413) instead of being read to the end (waitress's own default is 1 GB)."""
    return int(app.config["MAX_CONTENT_LENGTH"]) + 1024 * 1024


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    db: str | None = None,
    *,
    rules_dir: str | None = None,
    options: AsrOptions | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    instance_path: str | None = None,
    threads: int = 8,
    config: dict | None = None,
) -> None:
    """Run the web app with waitress until interrupted, with the upload worker feeding
    the same executor as the batch (local processes, or the Dask cluster at
    ``scheduler``). Cookies are Secure unless ``host`` is a loopback address."""
    overrides = {"WORKERS": workers, "SCHEDULER": scheduler}
    if db:
        overrides["DATABASE"] = db
    if rules_dir:
        overrides["RULES_DIR"] = rules_dir
    if options is not None:
        overrides["ASR_OPTIONS"] = options
    if instance_path:
        overrides["INSTANCE_PATH"] = instance_path
    overrides["SESSION_COOKIE_SECURE"] = host not in LOOPBACK
    overrides.update(config or {})
    app = create_app(overrides)
    server = make_server(app, host, port, threads)
    queue = app.extensions["monitor"].queue
    queue.start()
    print(f"monitor web: http://{host}:{server.effective_port}/ (database {app.config['DATABASE']})", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        queue.stop()
