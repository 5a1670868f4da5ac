"""The web app through Flask's test client: access control, CSRF, uploads and their
background processing, review decisions and the audit log, the debtor portal, the API.

Whisper is replaced by a fake executor that returns a known transcript for each test
recording (by SHA-256); the real model runs in tests/browser/. Every test builds its own
app, database and instance folder, so the order they run in does not matter.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import sqlite3
import types
import wave
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from werkzeug.security import generate_password_hash

from monitor.runs.executor import Transcribed
from monitor.models import Call, Turn
from monitor.store import Store
from monitor.web import PUBLIC_BLUEPRINTS, PUBLIC_ENDPOINTS, add_user, create_api_token, create_app
from monitor.web.accounts import AccountError

PASSWORD = "correct horse battery"
ZONE = ZoneInfo("Asia/Shanghai")
ABUSIVE = [
    ("collector", "张伟，钱到底什么时候还？"),
    ("debtor", "下个月发工资就还。"),
    ("collector", "你这个废物，借的时候挺痛快，现在装什么穷？"),
]
CONTACTS = [
    ("collector", "今天再不还，我们就把你通讯录里的人挨个打一遍。"),
    ("debtor", "你们不能这样。"),
]
POLITE = [("collector", "您好，提醒您本期账单明天到期，请通过官方 App 还款。"), ("debtor", "好的，谢谢。")]


def make_wav(path: Path, frequency: float, seconds: float = 1.0) -> Path:
    """A short stereo tone: real audio the decoder accepts, different bytes per frequency."""
    rate = 16_000
    t = np.arange(int(rate * seconds)) / rate
    left = (0.3 * np.sin(2 * np.pi * frequency * t) * 32767).astype(np.int16)
    right = (0.2 * np.sin(2 * np.pi * frequency * 1.5 * t) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.column_stack([left, right]).tobytes())
    return path


class FakeExecutor:
    """Stands in for the Whisper executor: each recording's transcript is looked up by
    its SHA-256 (an unknown recording fails, as a broken file would)."""

    def __init__(self, transcripts: dict, runs: list):
        self.transcripts = transcripts
        self.runs = runs

    def run(self, paths):
        self.runs.append(list(paths))
        for path in paths:
            digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            lines = self.transcripts.get(digest)
            if lines is None:
                yield Transcribed(path, error=f"{path}: damaged audio: decoding failed after 0:00.0")
                continue
            turns = tuple(Turn(speaker, text, 2.0 * i, 2.0 * i + 1.5, 0.9) for i, (speaker, text) in enumerate(lines))
            yield Transcribed(path, call=Call(id=Path(path).stem, turns=turns, sha256=digest, duration=2.0 * len(lines),
                                              source=str(path)))


@dataclass
class Web:
    app: object
    store: Store
    root: Path
    transcripts: dict = field(default_factory=dict)
    runs: list = field(default_factory=list)

    @property
    def queue(self):
        return self.app.extensions["monitor"].queue

    @property
    def upload_folder(self) -> Path:
        return self.app.extensions["monitor"].upload_folder

    def recording(self, name: str, frequency: float, lines=None) -> Path:
        path = make_wav(self.root / name, frequency)
        if lines is not None:
            self.transcripts[hashlib.sha256(path.read_bytes()).hexdigest()] = lines
        return path

    def client(self, user: str | None = None):
        client = self.app.test_client()
        if user:
            token = csrf(client, "/login")
            response = client.post("/login", data={"username": user, "password": PASSWORD, "csrf_token": token})
            assert response.status_code == 302, response.text
        return client

    def stored_files(self) -> list[str]:
        return sorted(str(p.relative_to(self.upload_folder)) for p in self.upload_folder.rglob("*") if p.is_file())

    def count(self, table: str) -> int:
        return self.store.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def csrf(client, url: str) -> str:
    page = client.get(url)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, f"no CSRF token on {url} ({page.status_code})"
    return match.group(1)


@pytest.fixture
def web(tmp_path, engine, empty_store):
    transcripts: dict = {}
    runs: list = []
    shutil.copyfile(empty_store, tmp_path / "web.db")  # migrated once per session: quicker than per test
    app = create_app({
        "TESTING": True,
        "DATABASE": str(tmp_path / "web.db"),
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "ENGINE": engine,
        "EXECUTOR_FACTORY": lambda options: FakeExecutor(transcripts, runs),
        "RECORDINGS_ROOT": str(tmp_path),
    })
    store = Store(tmp_path / "web.db")
    # A cheap hash for speed (add_user's own scrypt hash is tested on its own).
    quick = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
    for name, role in (("admin", "admin"), ("rita", "reviewer"), ("ralf", "reviewer")):
        store.add_user(name, quick, role)
    yield Web(app, store, tmp_path, transcripts, runs)
    store.close()


def seed_call(web: Web, engine, call_id: str, lines, started_at: str | None = None, collector: str | None = None,
              debtor: str | None = None, source: str | None = None) -> str:
    """A transcribed and scanned call, straight into the store (no upload)."""
    turns = tuple(Turn(speaker, text, 2.0 * i, 2.0 * i + 1.5) for i, (speaker, text) in enumerate(lines))
    call = Call(id=call_id, turns=turns, started_at=datetime.fromisoformat(started_at).replace(tzinfo=ZONE) if started_at else None,
                collector_id=collector, debtor_id=debtor, sha256=hashlib.sha256(call_id.encode()).hexdigest(),
                duration=10.0, source=source)
    stored = web.store.save_transcript(call)
    web.store.save_findings(stored, engine.scan(call, web.store.earlier_calls(call)), engine.pack.version)
    return stored


def upload(client, path: Path, **fields):
    token = csrf(client, "/upload")
    with open(path, "rb") as handle:
        return client.post("/upload", data={"csrf_token": token, "recordings": (handle, path.name), **fields},
                           content_type="multipart/form-data")


def submit(client, path: Path | None, data: bytes | None = None, filename: str | None = None, **fields):
    token = csrf(client, "/submit/")
    body = data if data is not None else path.read_bytes()
    return client.post("/submit/", data={"csrf_token": token, "recording": (io.BytesIO(body), filename or path.name), **fields},
                       content_type="multipart/form-data")


# --- access --------------------------------------------------------------------------------

EXPECTED_PUBLIC = {"auth.login", "static", "favicon", "submit.form", "submit.receipt", "submit.complaint", "submit.evidence",
                   "submit.voice"}


def _is_public(endpoint: str) -> bool:
    return endpoint in PUBLIC_ENDPOINTS or endpoint.split(".")[0] in PUBLIC_BLUEPRINTS


def test_only_login_static_and_the_debtor_portal_are_public(web):
    endpoints = {rule.endpoint for rule in web.app.url_map.iter_rules()}
    assert {e for e in endpoints if _is_public(e)} == EXPECTED_PUBLIC


def test_every_staff_page_and_api_route_refuses_anonymous_access(web, engine):
    seed_call(web, engine, "c1", ABUSIVE)
    client = web.app.test_client()
    checked = 0
    for rule in web.app.url_map.iter_rules():
        if _is_public(rule.endpoint):
            continue
        values = {name: {"fmt": "pdf", "call_id": "c1"}.get(name, "x") for name in rule.arguments}
        with web.app.test_request_context():
            from flask import url_for

            url = url_for(rule.endpoint, **values)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method)
            checked += 1
            if rule.endpoint.startswith("api."):
                assert response.status_code == 401, (method, url)
                assert response.json["error"] == "unauthorized"
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
            else:
                assert response.status_code == 302, (method, url, response.status_code)
                assert response.location.startswith("/login"), (method, url)
    assert checked >= 20
    assert web.store.audit_log("c1") == []  # nothing was viewed


def test_api_refuses_wrong_and_revoked_tokens(web):
    client = web.app.test_client()
    token = create_api_token(web.store, "rita")
    assert client.get("/api/v1/findings", headers={"Authorization": f"Bearer {token}x"}).status_code == 401
    assert client.get("/api/v1/findings", headers={"Authorization": f"Basic {token}"}).status_code == 401
    assert client.get("/api/v1/findings", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    web.store.db.execute("UPDATE api_tokens SET revoked = 1")
    web.store.db.conn.commit()
    assert client.get("/api/v1/findings", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_tokens_and_passwords_are_stored_hashed(web):
    token = create_api_token(web.store, "admin", "ci")
    dump = "\n".join(web.store.db.conn.iterdump())
    assert token not in dump
    assert PASSWORD not in dump
    assert hashlib.sha256(token.encode()).hexdigest() in dump


def test_add_user_hashes_the_password_and_the_user_can_log_in(web):
    add_user(web.store, "newbie", "a long enough secret", "reviewer")
    stored = web.store.user("newbie")
    assert stored["role"] == "reviewer" and stored["password_hash"].startswith("scrypt:")
    client = web.app.test_client()
    token = csrf(client, "/login")
    assert client.post("/login", data={"username": "newbie", "password": "a long enough secret", "csrf_token": token}).status_code == 302
    assert [e["action"] for e in web.store.audit_log("newbie")] == ["user.add"]


def test_add_user_refuses_bad_input(web):
    with pytest.raises(AccountError, match="already exists"):
        add_user(web.store, "rita", PASSWORD, "reviewer")
    with pytest.raises(AccountError, match="role"):
        add_user(web.store, "x", PASSWORD, "boss")
    with pytest.raises(AccountError, match="too short"):
        add_user(web.store, "x", "short", "reviewer")
    with pytest.raises(AccountError, match="username"):
        add_user(web.store, "two words", PASSWORD, "reviewer")
    with pytest.raises(AccountError, match="no active user"):
        create_api_token(web.store, "nobody")


def test_login_logout_and_wrong_password(web):
    client = web.app.test_client()
    token = csrf(client, "/login")
    wrong = client.post("/login", data={"username": "rita", "password": "nope", "csrf_token": token})
    assert wrong.status_code == 401 and "用户名或密码不正确" in wrong.text
    right = client.post("/login", data={"username": "rita", "password": PASSWORD, "csrf_token": token,
                                        "next": "/dashboard"})
    assert right.status_code == 302 and right.location == "/dashboard"
    assert client.get("/dashboard").status_code == 200
    logout = client.post("/logout", data={"csrf_token": csrf(client, "/dashboard")})
    assert logout.status_code == 302
    assert client.get("/dashboard").status_code == 302
    actions = [(e["actor"], e["action"]) for e in web.store.audit_log("auth")]
    assert actions == [("rita", "login.failed"), ("rita", "login"), ("rita", "logout")]


def test_login_does_not_redirect_off_site(web):
    client = web.app.test_client()
    token = csrf(client, "/login")
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = client.post("/login", data={"username": "rita", "password": PASSWORD, "csrf_token": token, "next": target})
        assert response.location == "/", target
        client.post("/logout", data={"csrf_token": csrf(client, "/")})
        token = csrf(client, "/login")


def test_login_is_rate_limited(web):
    client = web.app.test_client()
    token = csrf(client, "/login")
    codes = [client.post("/login", data={"username": "rita", "password": "bad", "csrf_token": token}).status_code
             for _ in range(6)]
    assert codes == [401] * 5 + [429]
    refused = client.post("/login", data={"username": "rita", "password": PASSWORD, "csrf_token": token})
    assert refused.status_code == 429 and "尝试次数太多" in refused.text
    assert client.get("/login").status_code == 200  # only POST is limited


def test_reviewer_cannot_open_admin_pages(web):
    client = web.client("rita")
    assert client.get("/audit").status_code == 403
    assert client.get("/users").status_code == 403
    admin = web.client("admin")
    assert admin.get("/audit").status_code == 200
    assert admin.get("/users").status_code == 200


def test_session_cookie_flags(web, tmp_path, engine):
    client = web.app.test_client()
    response = client.get("/login")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # TESTING: plain http
    production = create_app({"DATABASE": str(tmp_path / "p.db"), "INSTANCE_PATH": str(tmp_path / "p"), "ENGINE": engine})
    cookie = production.test_client().get("/login").headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_secret_key_is_generated_once_in_the_instance_folder(tmp_path, engine):
    config = {"DATABASE": str(tmp_path / "k.db"), "INSTANCE_PATH": str(tmp_path / "inst"), "ENGINE": engine}
    first = create_app(dict(config))
    key_file = tmp_path / "inst" / "secret_key"
    assert key_file.is_file() and oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert first.config["SECRET_KEY"] == key_file.read_text().strip() and len(first.config["SECRET_KEY"]) >= 64
    assert create_app(dict(config)).config["SECRET_KEY"] == first.config["SECRET_KEY"]
    (tmp_path / "inst" / "settings.py").write_text("MAX_CONTENT_LENGTH = 1234\n")
    assert create_app(dict(config)).config["MAX_CONTENT_LENGTH"] == 1234
    assert create_app({**config, "SECRET_KEY": "given"}).config["SECRET_KEY"] == "given"


def test_security_headers(web):
    response = web.app.test_client().get("/submit/")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


# --- CSRF ----------------------------------------------------------------------------------


def test_forms_without_csrf_token_are_refused(web, engine):
    seed_call(web, engine, "c1", ABUSIVE)
    finding = web.store.findings("c1")[0].id
    client = web.client("rita")
    posts = {
        "/calls/c1/decide": {"finding_id": finding, "decision": "confirmed"},
        "/calls/c1/assign": {"reviewer": "me"},
        "/rules": {"text": "你这个废物", "speaker": "collector"},
        "/logout": {},
    }
    for url, data in posts.items():
        response = client.post(url, data=data)
        assert response.status_code == 400, url
        assert "安全令牌" in response.text
        response = client.post(url, data={**data, "csrf_token": "forged"})
        assert response.status_code == 400, url
    assert web.store.reviews("c1") == [] and web.store.assignment("c1") is None
    anonymous = web.app.test_client()
    assert anonymous.post("/login", data={"username": "rita", "password": PASSWORD}).status_code == 400
    path = web.recording("a.wav", 300, ABUSIVE)
    with open(path, "rb") as handle:
        refused = anonymous.post("/submit/", data={"recording": (handle, "a.wav")}, content_type="multipart/form-data")
    assert refused.status_code == 400
    assert web.count("uploads") == 0 and web.stored_files() == []


def test_api_needs_no_csrf_token(web):
    token = create_api_token(web.store, "rita")
    path = web.recording("api.wav", 500, ABUSIVE)
    with open(path, "rb") as handle:
        response = web.app.test_client().post("/api/v1/recordings", data={"file": (handle, "api.wav")},
                                              headers={"Authorization": f"Bearer {token}"}, content_type="multipart/form-data")
    assert response.status_code == 202


# --- staff uploads and the background worker ----------------------------------------------


def test_upload_is_queued_then_processed_in_the_background(web):
    client = web.client("rita")
    path = web.recording("call-0301.wav", 440, ABUSIVE)
    response = upload(client, path, started_at="2025-03-01T21:30", collector_id="C7", debtor_id="D1",
                      caller_number="01088886666", direction="outbound", collector_channel="left")
    assert response.status_code == 302 and response.location == "/uploads"
    [row] = web.store.uploads()
    assert row["status"] == "queued" and row["origin"] == "staff" and row["submitted_by"] == "rita"
    page = client.get("/uploads")
    assert "排队等待" in page.text and 'http-equiv="refresh"' in page.text

    assert web.queue.process_pending() == 1
    row = web.store.upload(row["id"])
    assert row["status"] == "done" and row["call_id"] == "call-0301"
    call = web.store.call_row("call-0301")
    assert (call["origin"], call["collector_id"], call["debtor_id"], call["caller_number"]) == ("staff", "C7", "D1", "01088886666")
    assert call["started_at"] == "2025-03-01T21:30:00+08:00"
    assert {f.finding.category for f in web.store.findings("call-0301")} == {"abuse"}
    page = client.get("/uploads")
    assert "分析完成" in page.text and "/calls/call-0301" in page.text and 'http-equiv="refresh"' not in page.text


def test_call_page_highlights_evidence_and_is_audited(web):
    client = web.client("rita")
    upload(client, web.recording("c.wav", 440, ABUSIVE))
    web.queue.process_pending()
    page = client.get("/calls/c")
    assert page.status_code == 200
    [finding] = web.store.findings("c")
    assert f'<mark data-findings="{finding.id}">废物</mark>' in page.text
    assert f'data-seek="{finding.finding.start}"' in page.text
    assert finding.finding.legal_basis[0] in page.text
    assert 'src="/calls/c/audio"' in page.text
    [view] = [e for e in web.store.audit_log("c") if e["action"] == "call.view"]
    assert view["actor"] == "rita" and view["at"]


def test_audio_is_served_with_ranges_and_listening_is_audited(web):
    client = web.client("rita")
    path = web.recording("c.wav", 440, ABUSIVE)
    upload(client, path)
    web.queue.process_pending()
    data = path.read_bytes()
    with client.get("/calls/c/audio") as whole:
        assert whole.status_code == 200 and whole.data == data
        assert whole.headers["Accept-Ranges"] == "bytes"
    with client.get("/calls/c/audio", headers={"Range": "bytes=0-"}) as start:
        assert start.status_code == 206
    with client.get("/calls/c/audio", headers={"Range": "bytes=100-199"}) as piece:
        assert piece.status_code == 206 and piece.data == data[100:200]
        assert piece.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    with client.get("/calls/c/audio?download=1") as download:
        assert "attachment" in download.headers["Content-Disposition"]
    actions = [e["action"] for e in web.store.audit_log("c") if e["action"].startswith("call.audio")]
    assert actions == ["call.audio", "call.audio", "call.audio_download"]  # not one per seek


def test_the_same_recording_is_not_transcribed_twice(web):
    client = web.client("rita")
    path = web.recording("c.wav", 440, ABUSIVE)
    upload(client, path)
    web.queue.process_pending()
    upload(client, path)
    web.queue.process_pending()
    assert len(web.runs) == 1
    first, second = web.store.uploads()
    assert first["call_id"] == second["call_id"] == "c" and first["status"] == second["status"] == "done"
    assert web.stored_files() == [f"{hashlib.sha256(path.read_bytes()).hexdigest()}.wav"]


def test_a_recording_that_fails_analysis_shows_why_without_server_paths(web):
    client = web.client("rita")
    upload(client, web.recording("bad.wav", 700))  # the fake executor knows no transcript for it
    web.queue.process_pending()
    [row] = web.store.uploads()
    assert row["status"] == "failed" and "damaged audio" in row["error"]
    assert str(web.upload_folder) not in row["error"]
    assert web.store.call_row(row["call_id"])["status"] == "failed"
    assert "分析失败" in client.get("/uploads").text


def test_interrupted_uploads_are_queued_again_on_start(web):
    client = web.client("rita")
    upload(client, web.recording("c.wav", 440, ABUSIVE))
    web.store.claim_queued_uploads()  # a server stopped while processing it
    web.queue.start()
    try:
        assert web.queue.wait_idle(30)
    finally:
        web.queue.stop()
    assert web.store.uploads()[0]["status"] == "done"


def test_several_files_in_one_upload(web):
    client = web.client("rita")
    token = csrf(client, "/upload")
    one, two = web.recording("one.wav", 440, ABUSIVE), web.recording("two.wav", 550, CONTACTS)
    text = io.BytesIO(b"not audio at all")
    with open(one, "rb") as a, open(two, "rb") as b:
        response = client.post("/upload", data={"csrf_token": token, "recordings": [(a, "one.wav"), (b, "two.wav"), (text, "notes.txt")]},
                               content_type="multipart/form-data", follow_redirects=True)
    assert response.status_code == 200 and "已收到 2 个录音" in response.text and "notes.txt" in response.text
    web.queue.process_pending()
    assert {r["call_id"] for r in web.store.uploads()} == {"one", "two"}


@pytest.mark.parametrize(
    "filename, data, message",
    [
        ("notes.txt", b"just some notes", "不接受 .txt 文件"),
        ("fake.wav", "这不是录音，只是文字。".encode() * 20, "这是一个文字文件，不是录音"),
        ("empty.mp3", b"", "文件是空的"),
        ("noise.wav", bytes(range(256)) * 40, "无法识别为录音文件"),
    ],
)
def test_non_audio_uploads_are_refused_and_nothing_is_stored(web, filename, data, message):
    client = web.client("rita")
    token = csrf(client, "/upload")
    response = client.post("/upload", data={"csrf_token": token, "recordings": (io.BytesIO(data), filename)},
                           content_type="multipart/form-data")
    assert response.status_code == 415
    assert message in response.text
    assert (web.count("uploads"), web.count("calls")) == (0, 0)
    assert web.stored_files() == []


def test_bad_metadata_is_refused_before_anything_is_kept(web):
    client = web.client("rita")
    response = upload(client, web.recording("c.wav", 440, ABUSIVE), started_at="yesterday evening")
    assert response.status_code == 400 and "通话信息有误" in response.text
    assert web.count("uploads") == 0 and web.stored_files() == []


def test_oversized_uploads_are_refused_and_nothing_is_stored(web, tmp_path, engine):
    app = create_app({"TESTING": True, "DATABASE": web.app.config["DATABASE"], "INSTANCE_PATH": str(tmp_path / "instance"),
                      "ENGINE": engine, "MAX_CONTENT_LENGTH": 20_000})
    client = app.test_client()
    token = csrf(client, "/login")
    client.post("/login", data={"username": "rita", "password": PASSWORD, "csrf_token": token})
    big = web.recording("long.wav", 440, ABUSIVE)  # one second of stereo 16 kHz: 64 KB
    token = csrf(client, "/upload")
    with open(big, "rb") as handle:
        staff = client.post("/upload", data={"csrf_token": token, "recordings": (handle, "long.wav")},
                            content_type="multipart/form-data")
    assert staff.status_code == 413 and "文件太大" in staff.text
    token = csrf(client, "/submit/")
    with open(big, "rb") as handle:
        debtor = client.post("/submit/", data={"csrf_token": token, "recording": (handle, "long.wav")},
                             content_type="multipart/form-data")
    assert debtor.status_code == 413 and "文件太大" in debtor.text and "0.019" in debtor.text
    api_token = create_api_token(web.store, "rita")
    with open(big, "rb") as handle:
        api = client.post("/api/v1/recordings", data={"file": (handle, "long.wav")},
                          headers={"Authorization": f"Bearer {api_token}"}, content_type="multipart/form-data")
    assert api.status_code == 413 and api.json["error"] == "request_entity_too_large"
    assert (web.count("uploads"), web.count("calls")) == (0, 0)
    assert web.stored_files() == []


# --- review: queue, decisions, audit -------------------------------------------------------


def test_queue_orders_by_severity_then_time_and_filters(web, engine):
    seed_call(web, engine, "old-abuse", ABUSIVE, "2025-03-01T10:00", "C1", "D1")
    seed_call(web, engine, "new-abuse", ABUSIVE, "2025-03-03T10:00", "C2", "D2")
    seed_call(web, engine, "contacts", CONTACTS, "2025-03-02T10:00", "C1", "D3")
    seed_call(web, engine, "polite", POLITE, "2025-03-02T11:00", "C1", "D4")
    severities = {c: web.store.call_row(c)["max_severity"] for c in ("old-abuse", "contacts")}
    assert severities == {"old-abuse": "high", "contacts": "critical"}
    client = web.client("rita")

    def listed(query=""):
        page = client.get("/" + query)
        assert page.status_code == 200
        return re.findall(r'class="call-link">([^<]+)</a>', page.text)

    assert listed() == ["contacts", "new-abuse", "old-abuse"]  # polite has no finding
    assert listed("?category=abuse") == ["new-abuse", "old-abuse"]
    assert listed("?collector=C1") == ["contacts", "old-abuse"]
    assert listed("?since=2025-03-02&until=2025-03-02") == ["contacts"]
    finding = web.store.findings("new-abuse")[0].id
    web.store.review(finding, "confirmed", "rita")
    assert listed("?status=confirmed") == ["new-abuse"]
    assert listed("?status=unreviewed") == ["contacts", "old-abuse"]
    assert listed("?status=dismissed") == []
    web.store.assign("contacts", "rita", "admin")
    assert listed("?assigned=me") == ["contacts"]
    assert listed("?assigned=none") == ["new-abuse", "old-abuse"]


def test_assignment(web, engine):
    seed_call(web, engine, "c1", ABUSIVE)
    rita, admin = web.client("rita"), web.client("admin")
    token = csrf(rita, "/")
    assert rita.post("/calls/c1/assign", data={"csrf_token": token, "reviewer": "me"}).status_code == 302
    assert web.store.assignment("c1")["reviewer"] == "rita"
    assert rita.post("/calls/c1/assign", data={"csrf_token": token, "reviewer": "ralf"}).status_code == 403
    token = csrf(admin, "/")
    assert admin.post("/calls/c1/assign", data={"csrf_token": token, "reviewer": "ralf"}).status_code == 302
    assert web.store.assignment("c1")["reviewer"] == "ralf"
    assert admin.post("/calls/c1/assign", data={"csrf_token": token, "reviewer": "nobody"}).status_code == 400
    entries = [(e["actor"], json.loads(e["detail"])["reviewer"]) for e in web.store.audit_log("c1") if e["action"] == "call.assign"]
    assert entries == [("rita", "rita"), ("admin", "ralf")]


def test_decisions_are_recorded_with_user_and_time_in_the_audit_log(web, engine):
    seed_call(web, engine, "c1", ABUSIVE)
    finding = web.store.findings("c1")[0].id
    rita = web.client("rita")
    token = csrf(rita, "/calls/c1")
    response = rita.post("/calls/c1/decide", data={"csrf_token": token, "finding_id": finding, "decision": "dismissed",
                                                   "note": "quoted, not said"})
    assert response.status_code == 302 and response.location.startswith("/calls/c1#f-")
    admin = web.client("admin")
    token = csrf(admin, "/calls/c1")
    admin.post("/calls/c1/decide", data={"csrf_token": token, "finding_id": finding, "decision": "confirmed", "note": "said it"})
    assert admin.post("/calls/c1/decide", data={"csrf_token": token, "finding_id": finding, "decision": "maybe"}).status_code == 400
    assert admin.post("/calls/c1/decide", data={"csrf_token": token, "finding_id": "other:1:x", "decision": "confirmed"}).status_code == 404
    decisions = [e for e in web.store.audit_log(finding) if e["action"].startswith("finding.")]
    assert [(e["actor"], e["action"], json.loads(e["detail"])["note"]) for e in decisions] == [
        ("rita", "finding.dismissed", "quoted, not said"), ("admin", "finding.confirmed", "said it")]
    assert all(datetime.fromisoformat(e["at"]) for e in decisions)
    assert web.store.findings("c1")[0].decision == "confirmed"
    audit_page = admin.get(f"/audit?subject={finding}")
    assert "finding.dismissed" in audit_page.text and "finding.confirmed" in audit_page.text and "rita" in audit_page.text
    call_page = admin.get("/calls/c1")
    assert "quoted, not said" in call_page.text and "已确认违规" in call_page.text


def test_the_audit_log_cannot_be_edited(web, engine):
    rules = list(web.app.url_map.iter_rules())
    assert not any(rule.methods & {"PUT", "PATCH", "DELETE"} for rule in rules)
    audit_routes = [rule for rule in rules if "audit" in rule.rule or "audit" in rule.endpoint]
    assert audit_routes and all(rule.methods <= {"GET", "HEAD", "OPTIONS"} for rule in audit_routes)
    admin = web.client("admin")
    assert admin.post("/audit", data={"csrf_token": csrf(admin, "/audit")}).status_code == 405
    seed_call(web, engine, "c1", ABUSIVE)
    web.store.review(web.store.findings("c1")[0].id, "confirmed", "rita")
    before = web.store.audit_log()
    for statement in ("UPDATE audit SET actor = 'someone else'", "DELETE FROM audit"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            web.store.db.execute(statement)
    assert web.store.audit_log() == before


def test_dashboard_counts_confirmed_findings(web, engine):
    seed_call(web, engine, "c1", ABUSIVE, datetime.now().strftime("%Y-%m-%dT09:00"), "C9")
    seed_call(web, engine, "c2", CONTACTS, datetime.now().strftime("%Y-%m-%dT10:00"), "C9")
    client = web.client("rita")

    def confirmed_abuse():
        page = client.get("/dashboard")
        assert page.status_code == 200 and "<svg" in page.text
        row = re.search(r'<tr data-category="abuse">(.*?)</tr>', page.text, re.S).group(1)
        return int(re.search(r'class="n-confirmed">(\d+)<', row).group(1)), int(re.search(r'id="total-confirmed">(\d+)<', page.text).group(1))

    assert confirmed_abuse() == (0, 0)
    web.store.review(web.store.findings("c1")[0].id, "confirmed", "rita")
    assert confirmed_abuse() == (1, 1)
    page = client.get("/dashboard")
    assert "C9" in page.text and "骚扰第三方" in page.text
    assert client.get("/dashboard?since=not-a-date").status_code == 200


def test_rules_page_lists_rules_and_tries_a_sentence(web, engine):
    client = web.client("rita")
    page = client.get("/rules")
    for rule in engine.pack.rules:
        assert f'id="rule-{rule.id}"' in page.text
    rule = engine.pack.rules[0]
    assert rule.legal_basis[0] in page.text
    token = csrf(client, "/rules")
    tried = client.post("/rules", data={"csrf_token": token, "text": "你这个废物", "speaker": "collector"})
    assert "<mark>废物</mark>" in tried.text and "abuse-profanity" in tried.text
    quiet = client.post("/rules", data={"csrf_token": token, "text": "你这个废物", "speaker": "debtor"})
    assert "没有规则触发" in quiet.text


# --- the debtor portal ---------------------------------------------------------------------


def _receipt_token(response) -> str:
    assert response.status_code == 303, response.text
    match = re.fullmatch(r"/submit/r/([A-Za-z0-9_-]+)\?new=1", response.location)
    assert match, response.location
    return match.group(1)


def test_debtor_submits_and_reads_the_receipt(web):
    client = web.app.test_client()
    path = web.recording("call.m4a.wav", 440, ABUSIVE)
    response = submit(client, path, lender_name="好借消费金融", lender_type="consumer_finance", calling_number="95000111",
                      called_at="2025-03-01T22:40", collector_channel="left", complainant_name="王芳")
    token = _receipt_token(response)
    assert len(token) == 43
    receipt = client.get(f"/submit/r/{token}")
    assert receipt.status_code == 200 and "排队等待" in receipt.text and "好借消费金融" in receipt.text
    assert token in receipt.text  # the link to keep

    web.queue.process_pending()
    receipt = client.get(f"/submit/r/{token}")
    assert "发现" in receipt.text and "废物" in receipt.text and "12378" in receipt.text
    [row] = web.store.uploads()
    assert row["origin"] == "debtor" and row["receipt_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in "\n".join(web.store.db.conn.iterdump())  # only its hash is kept
    call = web.store.call_row(row["call_id"])
    assert call["origin"] == "debtor" and call["caller_number"] == "95000111"
    assert call["started_at"] == "2025-03-01T22:40:00+08:00"
    assert token not in call["id"] and call["id"] not in token

    staff = web.client("rita")
    queue = staff.get("/?origin=debtor")
    assert row["call_id"] in queue.text and "债务人证据" in queue.text


def test_a_receipt_shows_only_its_own_submission(web):
    client = web.app.test_client()
    token_a = _receipt_token(submit(client, web.recording("a.wav", 440, ABUSIVE), lender_name="甲贷款", calling_number="111"))
    token_b = _receipt_token(submit(client, web.recording("b.wav", 550, CONTACTS), lender_name="乙金融", calling_number="222"))
    web.queue.process_pending()
    page_a = client.get(f"/submit/r/{token_a}").text
    page_b = client.get(f"/submit/r/{token_b}").text
    assert "甲贷款" in page_a and "废物" in page_a
    assert "乙金融" not in page_a and "通讯录" not in page_a and "222" not in page_a
    assert "乙金融" in page_b and "通讯录" in page_b
    assert "甲贷款" not in page_b and "废物" not in page_b
    upload_b = web.store.upload_by_receipt(hashlib.sha256(token_b.encode()).hexdigest())
    assert upload_b["call_id"] not in page_a and upload_b["id"] not in page_a


def test_guessed_or_altered_receipt_links_get_404(web):
    client = web.app.test_client()
    token = _receipt_token(submit(client, web.recording("a.wav", 440, ABUSIVE)))
    web.queue.process_pending()
    row = web.store.uploads()[0]
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    for guess in (flipped, token[:-1], token + "x", token.upper() if token.upper() != token else token.lower(),
                  row["id"], row["call_id"], row["receipt_hash"], "x" * 43):
        for suffix in ("", "/complaint.pdf", "/evidence.zip"):
            assert client.get(f"/submit/r/{guess}{suffix}").status_code == 404, guess
    assert client.get(f"/submit/r/{token}").status_code == 200


def test_debtor_refused_file_leaves_nothing(web):
    client = web.app.test_client()
    response = submit(client, None, data="我的投诉内容".encode() * 30, filename="录音.wav", lender_name="甲贷款")
    assert response.status_code == 415
    assert "这是一个文字文件，不是录音" in response.text and 'value="甲贷款"' in response.text  # the form keeps what they typed
    response = submit(client, None, data=b"%PDF-1.4", filename="合同.pdf")
    assert response.status_code == 415 and "不接受 .pdf 文件" in response.text
    assert (web.count("uploads"), web.count("calls")) == (0, 0) and web.stored_files() == []
    assert submit(client, web.recording("a.wav", 440, ABUSIVE), called_at="昨天晚上").status_code == 400
    assert web.count("uploads") == 0 and web.stored_files() == []


def test_debtor_submissions_are_rate_limited(tmp_path, engine):
    app = create_app({"TESTING": True, "DATABASE": str(tmp_path / "r.db"), "INSTANCE_PATH": str(tmp_path / "i"),
                      "ENGINE": engine, "SUBMIT_RATE_LIMIT": "2 per hour",
                      "EXECUTOR_FACTORY": lambda options: FakeExecutor({}, [])})
    client = app.test_client()
    codes = [submit(client, make_wav(tmp_path / f"{n}.wav", 300 + n * 10)).status_code for n in range(3)]
    assert codes == [303, 303, 429]


# --- reports ---------------------------------------------------------------------------------


def test_report_routes_call_the_reports_module(web, engine, monkeypatch):
    calls = []
    fake = types.ModuleType("monitor.documents.reports")

    class ReportError(Exception):
        pass

    def incident_context(store, call_id):
        if not any(f.decision == "confirmed" for f in store.findings(call_id)):
            raise ReportError("no confirmed finding")
        return {"call": call_id}

    def complaint_context(store, call_id, complainant, lender):
        return {"call": call_id, "complainant": complainant, "lender": lender}

    def render(context, kind, fmt):
        calls.append((context, kind, fmt))
        return f"{kind}:{fmt}".encode()

    fake.ReportError, fake.incident_context, fake.complaint_context, fake.render = ReportError, incident_context, complaint_context, render
    from monitor.web import reporting

    monkeypatch.setattr(reporting, "reports", fake)
    seed_call(web, engine, "c1", ABUSIVE)
    client = web.client("rita")
    assert "/calls/c1/incident.pdf" not in client.get("/calls/c1").text  # no link that can only fail
    refused = client.get("/calls/c1/incident.pdf")
    assert refused.status_code == 409 and "还没有已确认的违规" in refused.text and "no confirmed" not in refused.text
    web.store.review(web.store.findings("c1")[0].id, "confirmed", "rita")
    assert "/calls/c1/incident.pdf" in client.get("/calls/c1").text
    response = client.get("/calls/c1/incident.docx")
    assert response.status_code == 200 and response.data == b"incident:docx"
    assert "attachment" in response.headers["Content-Disposition"]
    assert client.get("/calls/c1/incident.exe").status_code == 404

    debtor = web.app.test_client()
    token = _receipt_token(submit(debtor, web.recording("a.wav", 440, ABUSIVE), lender_name="甲贷款",
                                  lender_type="micro_lender", calling_number="111", complainant_name="王芳"))
    web.queue.process_pending()
    assert f"/submit/r/{token}/complaint.pdf" in debtor.get(f"/submit/r/{token}").text
    letter = debtor.get(f"/submit/r/{token}/complaint.pdf")
    assert letter.status_code == 200 and letter.data == b"complaint:pdf"
    context = calls[-1][0]
    assert context["complainant"]["name"] == "王芳"
    assert context["lender"] == {"name": "甲贷款", "type": "micro_lender", "calling_numbers": ["111"]}
    actions = [e["action"] for e in web.store.audit_log() if e["action"].startswith("report.")]
    assert actions == ["report.incident", "report.incident", "report.incident", "report.complaint"]


# --- the API ---------------------------------------------------------------------------------


def test_api_submit_poll_and_read_findings_and_decisions(web):
    token = create_api_token(web.store, "rita", "robot")
    client = web.app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    path = web.recording("api-call.wav", 440, ABUSIVE)
    with open(path, "rb") as handle:
        response = client.post("/api/v1/recordings", headers=auth, content_type="multipart/form-data",
                               data={"file": (handle, "api-call.wav"), "collector_id": "C5", "started_at": "2025-03-04T10:00:00+08:00"})
    assert response.status_code == 202
    [queued] = response.json["uploads"]
    assert queued["status"] == "queued"
    assert client.get(queued["url"], headers=auth).json["status"] == "queued"
    web.queue.process_pending()
    status = client.get(queued["url"], headers=auth).json
    assert status["status"] == "done" and status["call_id"] == "api-call"
    call = client.get(status["call_url"], headers=auth).json
    assert call["collector_id"] == "C5" and call["categories"] == ["abuse"]
    [finding] = call["findings"]
    assert finding["decision"] is None and finding["matched"] == "废物" and finding["reviews"] == []
    web.store.review(finding["id"], "confirmed", "admin", "clear insult")
    call = client.get(status["call_url"], headers=auth).json
    assert call["findings"][0]["decision"] == "confirmed"
    assert call["findings"][0]["reviews"][0]["reviewer"] == "admin"
    listed = client.get("/api/v1/findings?review_status=confirmed&category=abuse", headers=auth).json
    assert listed["count"] == 1 and listed["findings"][0]["finding_id"] == finding["id"]
    assert client.get("/api/v1/findings?review_status=odd", headers=auth).status_code == 400
    assert client.get("/api/v1/calls/nope", headers=auth).status_code == 404
    assert client.get("/api/v1/uploads/nope", headers=auth).status_code == 404
    assert [e["actor"] for e in web.store.audit_log("api-call") if e["action"] == "api.call.view"] == ["rita", "rita"]
    assert web.store.uploads()[0]["origin"] == "api"


def test_api_refuses_non_audio_with_a_reason(web):
    token = create_api_token(web.store, "rita")
    response = web.app.test_client().post(
        "/api/v1/recordings", headers={"Authorization": f"Bearer {token}"}, content_type="multipart/form-data",
        data={"file": (io.BytesIO(b"hello"), "x.txt")})
    assert response.status_code == 415 and "不接受 .txt" in response.json["refused"][0]["message"]
    assert web.count("uploads") == 0


def test_api_does_not_expose_debtor_submissions_by_upload_id(web):
    client = web.app.test_client()
    _receipt_token(submit(client, web.recording("a.wav", 440, ABUSIVE)))
    row = web.store.uploads()[0]
    token = create_api_token(web.store, "rita")
    assert client.get(f"/api/v1/uploads/{row['id']}", headers={"Authorization": f"Bearer {token}"}).status_code == 404


def test_store_migration_two_keeps_existing_data(tmp_path):
    """A database made before the web app (schema 1) opens and gains the new tables."""
    import sqlite_utils

    from monitor.store import schema

    path = tmp_path / "old.db"
    db = sqlite_utils.Database(path)
    schema.MIGRATIONS.apply(db, stop_before="0002_web")
    db["calls"].insert({"id": "k", "sha256": "s" * 64, "source": "k.wav", "status": "failed", "error": "broken",
                        "created_at": "2025-01-01T00:00:00+00:00"})
    db.close()
    reopened = Store(path)
    # Later migrations (applied on the first open) may come before it in the list.
    assert reopened.migrations[0] == "0001_calls" and "0002_web" in reopened.migrations
    assert reopened.call_row("k")["status"] == "failed"
    assert reopened.users() == [] and reopened.uploads() == []
    reopened.close()


def test_store_made_before_the_migrations_table_is_recognised(tmp_path):
    """A database versioned by PRAGMA user_version (before sqlite-utils migrations) is
    not migrated twice: its applied migrations are recorded and its data kept."""
    import sqlite_utils

    from monitor.store import schema

    path = tmp_path / "legacy.db"
    db = sqlite_utils.Database(path)
    # The legacy scheme knew two migrations; the ones added since apply on open.
    later = [m.name for m in schema.MIGRATIONS._migrations[2:]]
    schema.MIGRATIONS.apply(db, stop_before=later[0] if later else None)
    db["_sqlite_migrations"].drop()
    db.execute("PRAGMA user_version = 2")
    db.close()
    store = Store(path)
    assert store.migrations == ["0001_calls", "0002_web", *later]
    store.save_failure("t" * 64, "x.wav", "broken", call_id="x")
    assert store.call_row("x")["status"] == "failed"
    store.close()


def test_store_refuses_a_database_from_a_newer_monitor(tmp_path):
    import sqlite_utils

    from monitor.store import StoreError

    path = tmp_path / "new.db"
    Store(path).close()
    db = sqlite_utils.Database(path)
    db["_sqlite_migrations"].insert({"migration_set": "monitor", "name": "9999_future", "applied_at": "2030"})
    db.close()
    with pytest.raises(StoreError, match="newer monitor"):
        Store(path)


def test_downloads_work_with_the_real_reports_module(web, engine):
    """The wiring against monitor/reports.py itself (HTML only: quick)."""
    client = web.client("rita")
    upload(client, web.recording("c.wav", 440, ABUSIVE))
    web.queue.process_pending()
    assert client.get("/calls/c/incident.html").status_code == 409  # nothing confirmed yet
    web.store.review(web.store.findings("c")[0].id, "confirmed", "rita")
    incident = client.get("/calls/c/incident.html")
    assert incident.status_code == 200 and "废物" in incident.data.decode()
    debtor = web.app.test_client()
    token = _receipt_token(submit(debtor, web.recording("d.wav", 550, CONTACTS), lender_name="乙金融",
                                  lender_type="consumer_finance", calling_number="02188880000", complainant_name="王芳"))
    web.queue.process_pending()
    letter = debtor.get(f"/submit/r/{token}/complaint.html")
    text = letter.data.decode()
    assert letter.status_code == 200 and "投诉书" in text and "乙金融" in text and "王芳" in text and "02188880000" in text


def test_staff_swap_the_diarized_roles_and_the_findings_follow(web, engine):
    from monitor.models import SpeakerRoles

    turns = (Turn("collector", "喂？", 0.0, 1.0, speaker_source="diarized", voice="A"),
             Turn("debtor", "你这个废物，借钱不还。", 1.5, 3.0, speaker_source="diarized", voice="B"),
             Turn("collector", "我会还的", 3.5, 4.5, speaker_source="diarized", voice="A"))
    call = Call(id="m1", turns=turns, sha256="e" * 64, duration=5.0, roles=SpeakerRoles(2, "A", 0.3))
    web.store.save_transcript(call)
    web.store.save_findings("m1", engine.scan(call), engine.pack.version)
    assert web.store.findings("m1") == []
    client = web.client("rita")
    page = client.get("/calls/m1")
    assert "声音 A 判定为催收员" in page.text and "未经人工确认" in page.text
    token = csrf(client, "/calls/m1")
    response = client.post("/calls/m1/roles", data={"csrf_token": token, "collector_voice": "B"})
    assert response.status_code == 302
    findings = web.store.findings("m1")
    assert findings and {f.finding.turn for f in findings} == {1} and all(f.finding.speaker_verified for f in findings)
    assert [a["action"] for a in web.store.audit_log("m1") if a["action"] == "call.roles"] == ["call.roles"]
    assert client.post("/calls/m1/roles", data={"csrf_token": token, "collector_voice": "Z"}).status_code == 400


def test_the_debtor_taps_their_own_line_and_the_rules_run_again(web, engine):
    from dataclasses import replace

    from monitor.audit import Action
    from monitor.models import SpeakerRoles

    client = web.app.test_client()
    token = _receipt_token(submit(client, web.recording("mine.wav", 440, [("unknown", "喂？"), ("unknown", "你这个废物，借钱不还。"),
                                                                          ("unknown", "我会还的")])))
    web.queue.process_pending()
    [row] = web.store.uploads()
    # As diarization would leave a mono recording, with the roles inferred the wrong way.
    call = web.store.call(row["call_id"])
    voices = ("A", "B", "A")
    call = replace(call, turns=tuple(replace(t, speaker="collector" if v == "A" else "debtor", speaker_source="diarized",
                                             voice=v) for t, v in zip(call.turns, voices)),
                   roles=SpeakerRoles(2, "A", 0.2))
    web.store.save_speakers(call, "system", Action.ROLES_SET)
    web.store.save_findings(call.id, engine.scan(call), engine.pack.version)
    assert web.store.findings(call.id) == []
    receipt = client.get(f"/submit/r/{token}")
    assert "哪一句是您说的" in receipt.text
    response = client.post(f"/submit/r/{token}/voice", data={"csrf_token": csrf(client, f"/submit/r/{token}"), "turn": "2"})
    assert response.status_code == 303
    findings = web.store.findings(call.id)
    assert findings and {f.finding.turn for f in findings} == {1}
    assert "废物" in client.get(f"/submit/r/{token}").text
    assert [a["actor"] for a in web.store.audit_log(call.id) if a["action"] == "call.voice_claimed"] == ["debtor"]
    assert client.post(f"/submit/r/{token}/voice", data={"csrf_token": csrf(client, f"/submit/r/{token}"),
                                                          "turn": "9"}).status_code == 400
