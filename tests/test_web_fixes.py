"""The review app's defects from issue 13, one test (or a few) each: every one failed on
the app before its fix. Same fixtures as tests/test_web.py (fake Whisper, real store,
real rules)."""

from __future__ import annotations

import hashlib
import io
import json
import re
import socket
import threading
import types
import zipfile
from datetime import date, datetime, timedelta, timezone

import pytest

from monitor.store import Store
from monitor.web import create_app, make_server
from tests.test_web import (  # noqa: F401  (web is a fixture)
    ABUSIVE, CONTACTS, PASSWORD, FakeExecutor, _receipt_token, csrf, make_wav, seed_call, submit, upload, web,
)

SEVERAL = [("collector", "再不还钱我们就通知你单位领导和你通讯录里所有人，你这个废物。"), ("debtor", "别这样。")]


def _queued_row(web, path, metadata: str, origin="staff") -> str:
    """An upload row as an older version (or a hand edit) may have left it."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    web.store.add_upload({"id": f"u-{path.stem}", "origin": origin, "status": "queued", "filename": path.name,
                          "path": str(path), "sha256": digest, "size": path.stat().st_size, "duration": 1.0,
                          "collector_channel": "left", "metadata": metadata, "submitted_by": "rita"})
    return f"u-{path.stem}"


# --- 1. every upload ends done or failed ----------------------------------------------------


def test_a_year_one_call_time_is_refused_before_anything_is_queued(web):
    client = web.client("rita")
    response = upload(client, web.recording("y.wav", 440, ABUSIVE), started_at="0001-01-01T00:00")
    assert response.status_code == 400 and "通话信息有误" in response.text
    debtor = web.app.test_client()
    assert submit(debtor, web.recording("d.wav", 450, ABUSIVE), called_at="0001-01-01T00:00").status_code == 400
    assert web.count("uploads") == 0


def test_a_queued_year_one_call_time_ends_failed_with_a_reason(web):
    path = web.recording("old.wav", 440, ABUSIVE)
    upload_id = _queued_row(web, path, json.dumps({"call_id": "old", "started_at": "0001-01-01T00:00:00+08:00"}))
    web.queue.process_pending()
    row = web.store.upload(upload_id)
    assert row["status"] == "failed" and "OverflowError" in row["error"]
    assert web.store.pending_upload_count() == 0


def test_an_upload_whose_storing_raises_ends_failed_and_is_not_retried(web, monkeypatch):
    client = web.client("rita")
    upload(client, web.recording("c.wav", 440, ABUSIVE), started_at="2025-03-01T21:30")

    def overflow(*args, **kwargs):
        raise OverflowError("date value out of range")

    monkeypatch.setattr(Store, "save_transcript", overflow)
    web.queue.process_pending()
    [row] = web.store.uploads()
    assert row["status"] == "failed" and "OverflowError: date value out of range" in row["error"]
    assert str(web.upload_folder) not in row["error"]
    assert 'http-equiv="refresh"' not in client.get("/uploads").text
    web.queue.start()  # a restart takes up nothing: failed is final
    try:
        assert web.queue.wait_idle(30)
    finally:
        web.queue.stop()
    assert web.store.upload(row["id"])["status"] == "failed" and len(web.runs) == 1


def test_unreadable_metadata_ends_the_job_failed_not_processing_forever(web):
    path = web.recording("bad-meta.wav", 440, ABUSIVE)
    upload_id = _queued_row(web, path, "{not json")
    web.queue.process_pending()
    row = web.store.upload(upload_id)
    assert row["status"] == "failed" and "通话信息无法读取" in row["error"]


def test_an_exception_on_a_recording_already_stored_ends_the_job_failed(web, monkeypatch):
    client = web.client("rita")
    path = web.recording("c.wav", 440, ABUSIVE)
    upload(client, path)
    web.queue.process_pending()
    upload(client, path)  # the same file: no transcription, only the rules over waiting calls

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("monitor.web.jobs.scan_stored", broken)
    web.queue.process_pending()
    second = web.store.uploads()[0]
    assert second["status"] == "failed" and "disk full" in second["error"]


def test_a_debtor_receipt_stops_refreshing_when_its_job_fails(web):
    client = web.app.test_client()
    token = _receipt_token(submit(client, web.recording("unknown.wav", 700)))  # no transcript: fails
    assert 'http-equiv="refresh"' in client.get(f"/submit/r/{token}").text
    web.queue.process_pending()
    page = client.get(f"/submit/r/{token}")
    assert "无法分析" in page.text and 'http-equiv="refresh"' not in page.text


def test_a_job_interrupted_twice_is_not_queued_again_on_start(web):
    client = web.client("rita")
    upload(client, web.recording("c.wav", 440, ABUSIVE))
    web.store.claim_queued_uploads()  # the server stopped while processing it …
    assert web.store.requeue_interrupted_uploads() == 1  # … was started again …
    web.store.claim_queued_uploads()  # … and stopped on it once more
    web.queue.start()
    try:
        assert web.queue.wait_idle(30)
    finally:
        web.queue.stop()
    [row] = web.store.uploads()
    assert row["status"] == "failed" and "不再自动重试" in row["error"] and web.runs == []


# --- 2. sessions end on the server ---------------------------------------------------------


def _copy_of(web, client):
    copy = web.app.test_client()
    copy.set_cookie("session", client.get_cookie("session").value)
    return copy


def test_a_copied_session_cookie_stops_working_after_logout(web):
    client = web.client("rita")
    copy = _copy_of(web, client)
    assert copy.get("/dashboard").status_code == 200
    client.post("/logout", data={"csrf_token": csrf(client, "/dashboard")})
    assert copy.get("/dashboard").status_code == 302


@pytest.mark.parametrize("change", ["deactivate", "role", "reset", "own-password"])
def test_account_changes_end_the_users_sessions(web, change):
    rita = web.client("rita")
    other_device = _copy_of(web, rita)
    admin = web.client("admin")
    token = csrf(admin, "/users")
    if change == "deactivate":
        admin.post("/users", data={"csrf_token": token, "action": "deactivate", "username": "rita"})
    elif change == "role":
        admin.post("/users", data={"csrf_token": token, "action": "role", "username": "rita", "role": "admin"})
    elif change == "reset":
        admin.post("/users", data={"csrf_token": token, "action": "reset", "username": "rita", "password": "a new secret 1"})
    else:
        fresh = web.client("rita")
        fresh.post("/account", data={"csrf_token": csrf(fresh, "/account"), "action": "password", "password": PASSWORD,
                                     "new_password": "a new secret 1", "confirm_password": "a new secret 1"})
        assert fresh.get("/dashboard").status_code == 200  # the session that changed it stays
    assert other_device.get("/dashboard").status_code == 302
    assert rita.get("/dashboard").status_code == 302


# --- 3. waitress stops reading at the app's limit ------------------------------------------


def test_waitress_refuses_a_streamed_body_over_the_upload_limit(tmp_path, engine):
    app = create_app({"TESTING": True, "DATABASE": str(tmp_path / "w.db"), "INSTANCE_PATH": str(tmp_path / "i"),
                      "ENGINE": engine, "MAX_CONTENT_LENGTH": 1024 * 1024})
    server = make_server(app, "127.0.0.1", 0)
    assert server.adj.max_request_body_size <= 3 * 1024 * 1024  # not waitress's 1 GB
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", server.effective_port), timeout=10) as sock:
            sock.sendall(b"POST /submit/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                         b"Content-Type: application/octet-stream\r\n\r\n")
            chunk = b"%x\r\n" % 65536 + b"\0" * 65536 + b"\r\n"
            answer = b""
            try:
                for _ in range(200):  # 12.5 MB, far over the limit, unless the server cuts it off
                    sock.sendall(chunk)
            except OSError:
                pass
            sock.settimeout(5)
            try:
                answer = sock.recv(200)
            except OSError:
                pass
        assert answer.startswith(b"HTTP/1.1 413"), answer
    finally:
        server.close()


# --- 4. a debtor's duplicate of a staff recording ------------------------------------------


@pytest.mark.slow
def test_a_debtor_submitting_a_staff_recording_gets_only_their_own_record(web):
    staff = web.client("rita")
    path = web.recording("staff-call.wav", 440, ABUSIVE)
    upload(staff, path, started_at="2025-03-01T21:30", collector_id="C7-internal", debtor_id="D1-internal",
           caller_number="01088886666")
    web.queue.process_pending()
    [finding] = web.store.findings("staff-call")
    web.store.review(finding.id, "confirmed", "rita", "内部备注：已通知主管")

    debtor = web.app.test_client()
    token = _receipt_token(submit(debtor, path, filename="我的录音.wav", lender_name="甲贷款", lender_type="micro_lender",
                                  calling_number="95000111", called_at="2025-03-05T10:00", complainant_name="王芳"))
    web.queue.process_pending()
    staff_only = ("C7-internal", "D1-internal", "01088886666", "内部备注", "staff-call", "21:30")
    receipt = debtor.get(f"/submit/r/{token}").text
    assert "废物" in receipt and "2025-03-05 10:00" in receipt
    for secret in staff_only:
        assert secret not in receipt, secret

    letter = debtor.get(f"/submit/r/{token}/complaint.html")
    text = letter.data.decode()
    assert letter.status_code == 200 and "95000111" in text and "2025-03-05" in text
    for secret in staff_only:
        assert secret not in text, secret

    package = debtor.get(f"/submit/r/{token}/evidence.zip")
    assert package.status_code == 200
    with zipfile.ZipFile(io.BytesIO(package.data)) as archive:
        transcript = json.loads(archive.read("transcript/transcript.json"))
        everything = " ".join(archive.read(n).decode("utf-8", "replace") for n in archive.namelist()
                              if n.endswith((".json", ".txt", ".html")))
    assert transcript["call"]["started_at"].startswith("2025-03-05T10:00")
    for secret in staff_only:
        assert secret not in everything, secret
    # the staff record is untouched
    row = web.store.call_row("staff-call")
    assert (row["collector_id"], row["caller_number"]) == ("C7-internal", "01088886666")


# --- 5. paging with true totals ------------------------------------------------------------


def test_the_queue_pages_through_every_call_with_the_true_total(web, engine):
    for n in range(60):
        seed_call(web, engine, f"p{n:02d}", ABUSIVE, f"2025-03-01T{8 + n // 6:02d}:{n % 6 * 10:02d}")
    client = web.client("rita")
    first = client.get("/?size=25")
    assert "共 60 个通话" in first.text and first.text.count('name="call_id"') == 25
    last = client.get("/?size=25&page=3")
    assert last.text.count('name="call_id"') == 10 and "第 3 / 3 页" in last.text
    seen = set()
    for page in (1, 2, 3):
        seen |= set(re.findall(r'data-call="(p\d+)"', client.get(f"/?size=25&page={page}").text))
    assert len(seen) == 60


def test_the_uploads_page_pages_with_the_true_total(web):
    path = web.recording("u.wav", 440)
    for n in range(130):
        web.store.add_upload({"id": f"u{n:03d}", "origin": "staff", "status": "done", "filename": f"f{n}.wav",
                              "path": str(path), "sha256": "0" * 64, "size": 1, "duration": 1.0,
                              "collector_channel": "left", "metadata": "{}", "submitted_by": "rita"})
    client = web.client("rita")
    page = client.get("/uploads")
    assert "共 130 个文件" in page.text and page.text.count("data-upload=") == 100
    assert client.get("/uploads?page=2").text.count("data-upload=") == 30


# --- 6. account management -----------------------------------------------------------------


def test_the_new_user_form_defaults_to_reviewer(web):
    page = web.client("admin").get("/users").text
    form = page[page.index("新建用户"):]
    assert re.search(r'<option value="reviewer" selected>', form)
    assert not re.search(r'<option value="admin" selected>', form)


def test_an_admin_mints_tokens_only_for_themselves(web):
    admin = web.client("admin")
    page = admin.post("/users", data={"csrf_token": csrf(admin, "/users"), "action": "token", "username": "rita",
                                      "label": "robot"})
    token = re.search(r'id="new-token">([^<]+)<', page.text).group(1)
    [row] = web.store.api_tokens()
    assert row["username"] == "admin"
    assert web.store.user_for_token(hashlib.sha256(token.encode()).hexdigest())["username"] == "admin"


def test_tokens_are_listed_and_revoked(web):
    from monitor.web import create_api_token

    token = create_api_token(web.store, "rita", "ci")
    auth = {"Authorization": f"Bearer {token}"}
    api = web.app.test_client()
    assert api.get("/api/v1/findings", headers=auth).status_code == 200
    prefix = hashlib.sha256(token.encode()).hexdigest()[:12]
    admin = web.client("admin")
    assert prefix in admin.get("/users").text and token not in admin.get("/users").text
    rita = web.client("rita")
    assert prefix in rita.get("/account").text
    ralf = web.client("ralf")  # someone else cannot revoke it from their account page
    ralf.post("/account", data={"csrf_token": csrf(ralf, "/account"), "action": "revoke", "token": prefix})
    assert api.get("/api/v1/findings", headers=auth).status_code == 200
    rita.post("/account", data={"csrf_token": csrf(rita, "/account"), "action": "revoke", "token": prefix})
    assert api.get("/api/v1/findings", headers=auth).status_code == 401
    assert [e["action"] for e in web.store.audit_log("rita")][-1] == "token.revoke"


def test_deactivation_role_change_and_password_reset(web):
    admin = web.client("admin")
    token = csrf(admin, "/users")
    admin.post("/users", data={"csrf_token": token, "action": "deactivate", "username": "ralf"})
    assert not web.store.user("ralf")["active"]
    login = web.app.test_client()
    refused = login.post("/login", data={"username": "ralf", "password": PASSWORD, "csrf_token": csrf(login, "/login")})
    assert refused.status_code == 401
    admin.post("/users", data={"csrf_token": token, "action": "activate", "username": "ralf"})
    admin.post("/users", data={"csrf_token": token, "action": "role", "username": "ralf", "role": "admin"})
    assert web.store.user("ralf")["role"] == "admin"
    admin.post("/users", data={"csrf_token": token, "action": "reset", "username": "ralf", "password": "brand new pass"})
    again = web.app.test_client()
    assert again.post("/login", data={"username": "ralf", "password": "brand new pass",
                                      "csrf_token": csrf(again, "/login")}).status_code == 302
    page = admin.post("/users", data={"csrf_token": token, "action": "deactivate", "username": "admin"},
                      follow_redirects=True)
    assert "不能停用自己的账户" in page.text and web.store.user("admin")["active"]
    actions = [e["action"] for e in web.store.audit_log("ralf")]
    assert actions == ["user.deactivate", "user.activate", "user.role", "user.password_reset"]


def test_a_reviewer_cannot_manage_accounts(web):
    rita = web.client("rita")
    response = rita.post("/users", data={"csrf_token": csrf(rita, "/account"), "action": "deactivate", "username": "ralf"})
    assert response.status_code == 403 and web.store.user("ralf")["active"]


# --- 7. assignment ----------------------------------------------------------------------------


def test_a_reviewer_cannot_take_or_unassign_a_call_assigned_to_someone_else(web, engine):
    seed_call(web, engine, "c1", ABUSIVE)
    web.store.assign("c1", "ralf", "admin")
    rita = web.client("rita")
    token = csrf(rita, "/calls/c1")
    assert rita.post("/calls/c1/assign", data={"csrf_token": token, "reviewer": "me"}).status_code == 403
    assert rita.post("/calls/c1/assign", data={"csrf_token": token, "reviewer": ""}).status_code == 403
    assert rita.post("/bulk", data={"csrf_token": token, "action": "assign", "reviewer": "me",
                                    "call_id": "c1"}).status_code == 403
    assert web.store.assignment("c1")["reviewer"] == "ralf"
    ralf = web.client("ralf")
    assert ralf.post("/calls/c1/assign", data={"csrf_token": csrf(ralf, "/calls/c1"), "reviewer": ""}).status_code == 302
    assert web.store.assignment("c1") is None


# --- 8. the debtor sees the review outcome ----------------------------------------------------


def test_the_receipt_marks_findings_staff_dismissed(web):
    debtor = web.app.test_client()
    token = _receipt_token(submit(debtor, web.recording("d.wav", 440, ABUSIVE + CONTACTS)))
    web.queue.process_pending()
    [row] = web.store.uploads()
    abuse = next(f for f in web.store.findings(row["call_id"]) if f.finding.category == "abuse")
    web.store.review(abuse.id, "dismissed", "rita", "转写错误，原话是“废话”")
    page = debtor.get(f"/submit/r/{token}").text
    assert "不构成违规（已驳回）" in page and "待人工审核" in page
    assert "转写错误" not in page and "rita" not in page  # the outcome, not the notes or who
    assert "发现 1 处可能违规" in page
    for stored in web.store.findings(row["call_id"]):
        if stored.decision is None:
            web.store.review(stored.id, "dismissed", "rita", "")
    page = debtor.get(f"/submit/r/{token}").text
    assert "都不构成违规" in page and "可能违规" not in page


def test_the_complaint_letter_gets_the_review_decisions(web, monkeypatch):
    seen = {}
    fake = types.ModuleType("reports")

    class ReportError(Exception):
        pass

    def complaint_context(store, call_id, complainant, lender):
        seen.update({f.finding.rule: f.decision for f in store.findings(call_id)})
        seen["notes"] = [r["note"] for r in store.reviews(call_id)]
        return {}

    fake.ReportError, fake.complaint_context, fake.render = ReportError, complaint_context, lambda c, k, f: b"letter"
    from monitor.web import reporting

    monkeypatch.setattr(reporting, "reports", fake)
    debtor = web.app.test_client()
    token = _receipt_token(submit(debtor, web.recording("d.wav", 440, ABUSIVE)))
    web.queue.process_pending()
    [finding] = web.store.findings(web.store.uploads()[0]["call_id"])
    web.store.review(finding.id, "dismissed", "rita", "internal note")
    assert debtor.get(f"/submit/r/{token}/complaint.pdf").status_code == 200
    assert seen[finding.finding.rule] == "dismissed" and seen["notes"] == [""]


# --- 9. one sentence, one card ---------------------------------------------------------------


def test_one_sentence_breaking_several_rules_is_one_card(web, engine):
    seed_call(web, engine, "multi", SEVERAL)
    rules = {f.finding.rule for f in web.store.findings("multi")}
    assert len(rules) >= 2
    page = web.client("rita").get("/calls/multi").text
    assert page.count('<article class="finding') == 1
    for rule in rules:
        assert f"<code>{rule}</code>" in page
    debtor = web.app.test_client()
    token = _receipt_token(submit(debtor, web.recording("m.wav", 440, SEVERAL)))
    web.queue.process_pending()
    receipt = debtor.get(f"/submit/r/{token}").text
    assert receipt.count('<article class="finding') == 1 and "发现 1 处可能违规" in receipt
    assert receipt.count('class="outcome-open"') == len(rules)


# --- 10. rate limits ---------------------------------------------------------------------------


def _limited_app(tmp_path, engine, **config):
    return create_app({"TESTING": True, "DATABASE": str(tmp_path / "r.db"), "INSTANCE_PATH": str(tmp_path / "i"),
                       "ENGINE": engine, "EXECUTOR_FACTORY": lambda options: FakeExecutor({}, []), **config})


def test_refused_files_do_not_count_toward_the_submit_limit(tmp_path, engine):
    client = _limited_app(tmp_path, engine, SUBMIT_RATE_LIMIT="2 per hour").test_client()
    refused = [submit(client, None, data=b"not audio", filename=f"x{n}.txt").status_code for n in range(3)]
    accepted = [submit(client, make_wav(tmp_path / f"{n}.wav", 300 + n * 10)).status_code for n in range(3)]
    assert refused == [415] * 3 and accepted == [303, 303, 429]


def test_successful_logins_do_not_count_and_429_says_when_to_retry(tmp_path, engine):
    from werkzeug.security import generate_password_hash

    app = _limited_app(tmp_path, engine, LOGIN_RATE_LIMIT="3 per minute")
    Store(tmp_path / "r.db").add_user("rita", generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"), "reviewer")
    client = app.test_client()
    token = csrf(client, "/login")
    good = [client.post("/login", data={"username": "rita", "password": PASSWORD, "csrf_token": csrf(client, "/login")}).status_code
            for _ in range(5)]
    assert good == [302] * 5
    token = csrf(client, "/login")
    bad = [client.post("/login", data={"username": "rita", "password": "nope", "csrf_token": token}) for _ in range(4)]
    assert [r.status_code for r in bad] == [401, 401, 401, 429]
    assert int(bad[-1].headers["Retry-After"]) > 0


# --- 11. the API ---------------------------------------------------------------------------------


def test_the_api_gives_no_server_paths_and_validates_dates(web, engine):
    from monitor.web import create_api_token

    seed_call(web, engine, "c1", ABUSIVE, "2025-03-01T10:00", source=str(web.root / "secret" / "c1.wav"))
    auth = {"Authorization": f"Bearer {create_api_token(web.store, 'rita')}"}
    client = web.app.test_client()
    listed = client.get("/api/v1/findings", headers=auth)
    assert listed.json["count"] == 1 and "source" not in listed.json["findings"][0]
    assert str(web.root) not in listed.text
    assert str(web.root) not in client.get("/api/v1/calls/c1", headers=auth).text
    for query in ("since=yesterday", "until=2025-13-01", "since=2025-03-02&until=2025-03-01"):
        bad = client.get(f"/api/v1/findings?{query}", headers=auth)
        assert bad.status_code == 400 and bad.json["error"] == "bad_request", query
    assert "YYYY-MM-DD" in client.get("/api/v1/findings?since=yesterday", headers=auth).json["message"]
    assert client.get("/api/v1/findings?since=2025-03-01&until=2025-03-01", headers=auth).json["count"] == 1


# --- 12. times in the deployment's zone, labelled ---------------------------------------------


def test_times_are_shown_in_the_deployment_zone_and_labelled(web, engine, tmp_path):
    seed_call(web, engine, "c1", ABUSIVE, "2025-03-01T21:30")
    client = web.client("rita")
    queue = client.get("/").text
    assert "2025-03-01 21:30" in queue and "开始时间（北京时间）" in queue
    debtor = web.app.test_client()
    token = _receipt_token(submit(debtor, web.recording("d.wav", 440, ABUSIVE), called_at="2025-03-01T22:40"))
    receipt = debtor.get(f"/submit/r/{token}").text
    assert "(UTC)" not in receipt and "提交时间（北京时间）" in receipt
    created = web.store.uploads()[0]["created_at"]
    local = datetime.fromisoformat(created).astimezone(timezone(timedelta(hours=8))).strftime("%Y-%m-%d %H:%M")
    assert local in receipt
    berlin = create_app({"TESTING": True, "DATABASE": web.app.config["DATABASE"], "INSTANCE_PATH": str(tmp_path / "b"),
                         "ENGINE": engine, "TIMEZONE": "Europe/Berlin"})
    token = csrf(berlin_client := berlin.test_client(), "/login")
    berlin_client.post("/login", data={"username": "rita", "password": PASSWORD, "csrf_token": token})
    page = berlin_client.get("/").text
    assert "2025-03-01 14:30" in page and "Europe/Berlin" in page


# --- 13. Chinese throughout ----------------------------------------------------------------------


def test_date_errors_and_audit_entries_read_in_chinese(web, engine):
    seed_call(web, engine, "c1", ABUSIVE)
    web.store.review(web.store.findings("c1")[0].id, "confirmed", "rita", "清楚的辱骂")
    rita = web.client("rita")
    for url in ("/?since=yesterday", "/search?q=废物&until=2025-02-30"):
        bad = rita.get(url)
        assert bad.status_code == 400 and "日期格式不对" in bad.text, url
    page = web.client("admin").get("/audit").text
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", page)
    assert "登录" in cells and "审核：确认违规" in cells and "login" not in cells and "finding.confirmed" not in cells
    assert not any(c.startswith("{") for c in cells) and "备注：清楚的辱骂" in cells
    call = rita.get("/calls/c1").text
    assert "审核：确认违规" in call and "finding.confirmed</td>" not in call


# --- 14. a truncated WAV is refused ---------------------------------------------------------------


def test_a_truncated_wav_is_refused(web):
    whole = make_wav(web.root / "long.wav", 440, seconds=10.0).read_bytes()
    client = web.client("rita")
    token = csrf(client, "/upload")
    response = client.post("/upload", data={"csrf_token": token, "recordings": (io.BytesIO(whole[:100_000]), "cut.wav")},
                           content_type="multipart/form-data")
    assert response.status_code == 415 and "录音不完整" in response.text and "declared 0:10.0" in response.text
    assert web.count("uploads") == 0 and web.stored_files() == []


# --- 15. the small ones ---------------------------------------------------------------------------


def test_the_html_report_names_its_charset_once(web):
    client = web.client("rita")
    upload(client, web.recording("c.wav", 440, ABUSIVE))
    web.queue.process_pending()
    web.store.review(web.store.findings("c")[0].id, "confirmed", "rita")
    report = client.get("/calls/c/incident.html")
    assert report.status_code == 200 and report.headers["Content-Type"].lower().count("charset") == 1


def test_a_404_page_knows_who_is_logged_in(web):
    page = web.client("rita").get("/no/such/page")
    assert page.status_code == 404 and "rita（审核员）" in page.text and "去登录" not in page.text
    assert "去登录" in web.app.test_client().get("/no/such/page").text


def test_there_is_a_favicon(web):
    with web.app.test_client().get("/favicon.ico") as icon:
        assert icon.status_code == 200 and icon.mimetype == "image/svg+xml" and b"<svg" in icon.data
    assert 'rel="icon"' in web.client("rita").get("/").text


def test_staff_pages_fit_a_phone(web, engine):
    seed_call(web, engine, "c1", ABUSIVE)
    with web.app.test_client().get("/static/style.css") as response:
        css = response.text
    assert "@media (max-width: 640px)" in css
    page = web.client("rita").get("/").text
    assert '<div class="scroll">\n<table class="queue">' in page  # the wide table scrolls in its box


def test_a_91_day_chart_has_readable_labels(web, engine):
    today = date.today()
    seed_call(web, engine, "c1", ABUSIVE, (today - timedelta(days=3)).isoformat() + "T10:00")
    page = web.client("rita").get(f"/dashboard?since={(today - timedelta(days=90)).isoformat()}&until={today}").text
    chart = page[page.index('aria-label="按日期"'):]
    labels = re.findall(r'class="label small">([^<]+)</text>', chart)
    assert chart.count('class="bar-total"') == 91
    assert 10 <= len(labels) <= 15 and "rotate(-45" in chart


def test_a_session_past_its_lifetime_ends(web):
    rita = web.client("rita")
    assert rita.get("/dashboard").status_code == 200
    web.store.db.execute("UPDATE sessions SET created_at = '2000-01-01T00:00:00+00:00'")
    web.store.db.conn.commit()
    assert rita.get("/dashboard").status_code == 302
    web.client("ralf")  # a new login forgets the expired session
    assert web.store.open_sessions("rita") == 0
