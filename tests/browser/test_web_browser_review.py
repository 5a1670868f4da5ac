"""A review team's daily work in a real browser (Debian chromium through Playwright,
headless; waitress on 127.0.0.1): search and open a hit at its moment in the recording,
bulk-dismiss with a reason, an admin deactivating a user whose open session then fails,
and a debtor seeing a finding staff dismissed marked as such.

Calls are stored straight into the store (and the debtor's upload is transcribed by the
fake executor of tests/test_web.py), so no Whisper model runs here: the browser, the
server, the store and the rules are real. Screenshots go to test-output/screenshots/.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import threading

import pytest
from werkzeug.security import generate_password_hash

from monitor.store import Store
from monitor.web import create_app, make_server

from ..conftest import REPO
from ..test_web import ABUSIVE, CONTACTS, FakeExecutor, make_wav

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (apt-get install chromium fonts-noto-cjk)")

SHOTS = REPO / "test-output" / "screenshots"
PASSWORD = "browser test password"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]
LONG_CALL = [
    ("collector", "您好，这里是客服中心，提醒您账单已经逾期。"),
    ("debtor", "我知道，下个月发工资就还。"),
    ("collector", "今天再不还，我们就把你通讯录里的人挨个打一遍。"),
    ("debtor", "你们不能这样。"),
]


def _seed(store: Store, engine, call_id: str, lines, source: str | None = None, seconds: float = 4.0) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from monitor.models import Call, Turn

    turns = tuple(Turn(speaker, text, seconds * i, seconds * i + seconds - 0.5) for i, (speaker, text) in enumerate(lines))
    call = Call(id=call_id, turns=turns, started_at=datetime(2025, 3, 1, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")),
                collector_id="C1", debtor_id="D1", sha256=hashlib.sha256(call_id.encode()).hexdigest(),
                duration=seconds * len(lines), source=source)
    stored = store.save_transcript(call)
    store.save_findings(stored, engine.scan(call), engine.pack.version)


@pytest.fixture(scope="module")
def server(tmp_path_factory, engine):
    root = tmp_path_factory.mktemp("review")
    database = root / "web.db"
    transcripts: dict = {}
    app = create_app({"DATABASE": str(database), "INSTANCE_PATH": str(root / "instance"), "ENGINE": engine,
                      "SESSION_COOKIE_SECURE": False, "RECORDINGS_ROOT": str(root),
                      "EXECUTOR_FACTORY": lambda options: FakeExecutor(transcripts, [])})
    store = Store(database)
    quick = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
    for name, role in (("boss", "admin"), ("rita", "reviewer"), ("ralf", "reviewer")):
        store.add_user(name, quick, role)
    make_wav(root / "long.wav", 440, seconds=16.0)
    _seed(store, engine, "long", LONG_CALL, source="long.wav")
    for n in range(3):
        _seed(store, engine, f"bulk-{n}", ABUSIVE)
    store.close()
    http = make_server(app, "127.0.0.1", 0, threads=4)
    thread = threading.Thread(target=http.run, name="waitress", daemon=True)
    thread.start()
    queue = app.extensions["monitor"].queue
    queue.poll_seconds = 0.5
    queue.start()
    try:
        yield {"url": f"http://127.0.0.1:{http.effective_port}", "database": database, "root": root,
               "transcripts": transcripts}
    finally:
        http.close()
        queue.stop()
        thread.join(10)


@pytest.fixture(scope="module")
def browser():
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


def _context(browser, width=1280):
    context = browser.new_context(locale="zh-CN", viewport={"width": width, "height": 900})
    context.set_default_timeout(20_000)
    return context


def _login(page, url: str, user: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.mark.slow
def test_search_and_open_a_hit_at_its_moment(server, browser):
    url = server["url"]
    context = _context(browser)
    page = context.new_page()
    try:
        _login(page, url, "rita")
        page.click("nav >> text=检索")
        page.fill("input[name=q]", "通讯录")
        page.click("form[role=search] button[type=submit]")
        hit = page.locator("li.hit", has_text="long")
        assert hit.locator("mark").inner_text() == "通讯录"
        shot(page, "21-search")
        hit.locator("a.hit-link").click()
        page.wait_for_url(re.compile(r".*/calls/long\?t=8\.0#turn-2$"))
        page.wait_for_function("() => { const p = document.getElementById('player');"
                               " return p && p.readyState >= 1 && Math.abs(p.currentTime - 8.0) < 0.3; }")
        assert page.locator("#turn-2.at-seek mark").count() >= 1
        shot(page, "22-call-at-moment")
    finally:
        context.close()


@pytest.mark.slow
def test_bulk_dismiss_with_a_reason(server, browser):
    url = server["url"]
    context = _context(browser)
    page = context.new_page()
    try:
        _login(page, url, "rita")
        for call_id in ("bulk-0", "bulk-1"):
            page.check(f'tr[data-call="{call_id}"] input[name=call_id]')
        page.select_option("select[name=reason]", "asr_error")
        page.fill("#bulk input[name=note]", "原话是“废话”")
        shot(page, "23-queue-bulk-selected")
        page.click("#bulk button[value=dismissed]")
        page.wait_for_load_state()
        assert "已驳回 2 条违规提示" in page.locator("p.flash").inner_text()
        shot(page, "24-queue-bulk-dismissed")
        page.goto(f"{url}/dashboard?since=2025-03-01&until=2025-03-31")
        page.locator('svg[aria-label="按催收员"] a.bar-link').first.click()
        page.wait_for_url(re.compile(r".*/\?collector=C1&since=2025-03-01&until=2025-03-31$"))
        assert page.locator("tr[data-call]").count() == 4
        page.goto(f"{url}/dashboard?since=2025-03-01&until=2025-03-31")
        shot(page, "28-dashboard-rates")
    finally:
        context.close()
    store = Store(server["database"])
    try:
        decided = {call_id: [f.decision for f in store.findings(call_id)] for call_id in ("bulk-0", "bulk-1", "bulk-2")}
        note = store.latest_review(store.findings("bulk-0")[0].id)["note"]
    finally:
        store.close()
    assert decided == {"bulk-0": ["dismissed"], "bulk-1": ["dismissed"], "bulk-2": [None]}
    assert note == "转写错误（原话不是这样）：原话是“废话”"


@pytest.mark.slow
def test_an_admin_deactivates_a_user_whose_open_session_then_fails(server, browser):
    url = server["url"]
    ralf_context, admin_context = _context(browser), _context(browser)
    try:
        ralf = ralf_context.new_page()
        _login(ralf, url, "ralf")
        ralf.goto(f"{url}/dashboard")
        assert ralf.url == f"{url}/dashboard"
        admin = admin_context.new_page()
        _login(admin, url, "boss")
        admin.goto(f"{url}/users")
        admin.click('tr[data-user="ralf"] button[value=deactivate]')
        admin.wait_for_load_state()
        assert "已停用 ralf" in admin.locator("p.flash").inner_text()
        shot(admin, "25-users-deactivated")
        ralf.goto(f"{url}/dashboard")  # the same browser, the same cookie
        assert ralf.url.startswith(f"{url}/login")
        shot(ralf, "26-deactivated-session-ends")
    finally:
        ralf_context.close()
        admin_context.close()


@pytest.mark.slow
def test_a_debtor_sees_a_dismissed_finding_marked_as_such(server, browser):
    url = server["url"]
    recording = make_wav(server["root"] / "debtor.wav", 620)
    server["transcripts"][hashlib.sha256(recording.read_bytes()).hexdigest()] = ABUSIVE + CONTACTS
    context = _context(browser, width=420)  # a phone
    page = context.new_page()
    try:
        page.goto(f"{url}/submit/")
        page.set_input_files("#recording", str(recording))
        page.fill("input[name=lender_name]", "快借消费金融")
        page.fill("input[name=called_at]", "2025-03-02T20:15")
        page.click("button.huge")
        page.wait_for_url(re.compile(r".*/submit/r/[A-Za-z0-9_-]{43}\?new=1$"))
        link = page.locator("#receipt-link").inner_text()
        for _ in range(60):
            page.goto(link)
            if page.locator("#status").get_attribute("data-status") == "done":
                break
            page.wait_for_timeout(500)
        assert page.locator("#status").get_attribute("data-status") == "done"
        store = Store(server["database"])
        try:
            call_id = next(u["call_id"] for u in store.uploads() if u["origin"] == "debtor")
            abuse = next(f for f in store.findings(call_id) if f.finding.category == "abuse")
            store.review(abuse.id, "dismissed", "rita", "转写错误")
        finally:
            store.close()
        page.goto(link)
        dismissed = page.locator("article.finding.dismissed")
        assert dismissed.count() == 1 and "不构成违规（已驳回）" in dismissed.inner_text()
        assert "转写错误" not in page.locator("main").inner_text()
        assert page.locator("article.finding:not(.dismissed)").count() >= 1
        shot(page, "27-receipt-dismissed-marked")
    finally:
        context.close()


@pytest.mark.slow
def test_staff_pages_fit_a_phone(server, browser):
    url = server["url"]
    context = _context(browser, width=390)
    page = context.new_page()
    try:
        _login(page, url, "rita")
        for name, path in (("queue", "/"), ("call", "/calls/long"), ("dashboard", "/dashboard?since=2025-03-01&until=2025-03-31"),
                           ("search", "/search?q=通讯录"), ("uploads", "/uploads")):
            page.goto(f"{url}{path}")
            overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, (path, overflow)  # wide tables scroll in their own box, not the page
            shot(page, f"29-phone-{name}")
    finally:
        context.close()
