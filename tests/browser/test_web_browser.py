"""The web app in a real browser: waitress on 127.0.0.1, Debian's chromium driven by
Playwright (headless), the packaged Whisper model transcribing real sample calls.

Needs the `chromium` and `fonts-noto-cjk` Debian packages (no browser download);
skipped with a reason when chromium is not installed. Screenshots of every page go to
test-output/screenshots/ (git-ignored).
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from datetime import datetime

import pytest
from werkzeug.security import generate_password_hash

from monitor.store import Store
from monitor.web import create_app, make_server

from ..conftest import REPO

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# A real browser against a real server that transcribes with the real model: slow tier.
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (apt-get install chromium fonts-noto-cjk)"),
    pytest.mark.slow,
]

SAMPLES = REPO / "sample_audio"
SHOTS = REPO / "test-output" / "screenshots"
USER, PASSWORD = "reviewer1", "browser test password"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]
ANALYSIS_TIMEOUT = 240  # seconds: a worker process starts, loads Whisper, transcribes ~20 s of audio


@pytest.fixture(scope="module")
def server(tmp_path_factory, engine):
    """The real app (real store, real executor and upload worker) served by waitress."""
    root = tmp_path_factory.mktemp("web")
    database = root / "web.db"
    app = create_app({"DATABASE": str(database), "INSTANCE_PATH": str(root / "instance"), "ENGINE": engine,
                      "SESSION_COOKIE_SECURE": False})
    store = Store(database)
    store.add_user(USER, generate_password_hash(PASSWORD), "reviewer")
    store.close()
    http = make_server(app, "127.0.0.1", 0, threads=4)
    thread = threading.Thread(target=http.run, name="waitress", daemon=True)
    thread.start()
    queue = app.extensions["monitor"].queue
    queue.start()
    try:
        yield {"url": f"http://127.0.0.1:{http.effective_port}", "database": database}
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


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def confirmed_count(page, url: str, category: str) -> int:
    page.goto(f"{url}/dashboard")
    cell = page.locator(f'tr[data-category="{category}"] .n-confirmed')
    return int(cell.inner_text()) if cell.count() else 0


def test_reviewer_uploads_jumps_to_a_finding_confirms_it_and_sees_it_counted(server, page):
    url = server["url"]
    page.goto(f"{url}/")
    assert page.url.startswith(f"{url}/login")
    shot(page, "01-login")
    page.fill("#username", USER)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")
    assert page.locator("h1").inner_text().startswith("审核队列")
    before = confirmed_count(page, url, "abuse")

    page.goto(f"{url}/upload")
    page.set_input_files("#recordings", str(SAMPLES / "abuse_threat.wav"))
    page.fill("input[name=collector_id]", "C-017")
    page.fill("input[name=started_at]", datetime.now().strftime("%Y-%m-%dT09:30"))  # inside the dashboard's 30 days
    shot(page, "02-upload")
    page.click("button[type=submit].primary")
    page.wait_for_url(f"{url}/uploads")
    mine = page.locator("tr[data-upload]", has_text="abuse_threat.wav")
    assert mine.count() == 1 and mine.get_attribute("data-status") in ("queued", "processing", "done")
    shot(page, "03-uploads-queued")

    def finished():
        page.goto(f"{url}/uploads")
        status = mine.get_attribute("data-status")
        assert status != "failed", mine.inner_text()
        return status == "done"

    wait_until(finished, ANALYSIS_TIMEOUT, "the upload to be analysed")
    shot(page, "04-uploads-done")
    mine.locator("a.open-call").click()
    page.wait_for_url(re.compile(r".*/calls/abuse_threat$"))
    assert page.locator("mark", has_text="废物").count() >= 1
    player = page.locator("#player")
    page.wait_for_function("document.getElementById('player').readyState >= 1")
    shot(page, "05-call")

    button = page.locator("button.seek").first
    start = float(button.get_attribute("data-seek"))
    finding_id = button.get_attribute("data-finding")
    assert start > 1.0  # the abuse is said a few seconds in, not at 0
    assert player.evaluate("p => p.currentTime") < 0.5
    button.click()
    page.wait_for_function(
        "start => { const p = document.getElementById('player'); return p.currentTime >= start - 0.05 && p.currentTime < start + 3; }",
        arg=start,
    )
    moved_to = player.evaluate("p => { p.pause(); return p.currentTime; }")
    assert start - 0.05 <= moved_to < start + 3
    assert page.locator("mark.playing").count() >= 1
    shot(page, "06-call-after-jump")

    finding = page.locator(f'section.rule-part[id="f-{finding_id}"]')
    finding.locator("input[name=note]").fill("录音中明确辱骂债务人")
    finding.locator("button.confirm").click()
    page.wait_for_load_state()
    finding = page.locator(f'section.rule-part[id="f-{finding_id}"]')
    assert finding.locator(".dec-confirmed").count() >= 1
    assert "录音中明确辱骂债务人" in finding.inner_text()
    shot(page, "07-call-confirmed")

    store = Store(server["database"])
    try:
        [stored] = [f for f in store.findings("abuse_threat") if f.id == finding_id]
        decisions = [e for e in store.audit_log(finding_id) if e["action"] == "finding.confirmed"]
        listened = [e for e in store.audit_log("abuse_threat") if e["action"] == "call.audio"]
    finally:
        store.close()
    assert stored.decision == "confirmed" and stored.finding.category == "abuse"
    assert [e["actor"] for e in decisions] == [USER] and listened

    assert confirmed_count(page, url, "abuse") == before + 1
    shot(page, "08-dashboard")
    page.goto(f"{url}/?status=confirmed")
    assert page.locator("a.call-link", has_text="abuse_threat").count() == 1
    shot(page, "09-queue")
    page.goto(f"{url}/rules")
    page.fill("#try-text", "再不还钱就去你公司闹，让你同事都知道")
    page.click(".try button[type=submit]")
    assert page.locator("#try-result li").count() >= 1
    shot(page, "10-rules-try")


def test_debtor_submits_a_recording_and_opens_the_receipt_link(server, browser):
    url = server["url"]
    context = browser.new_context(locale="zh-CN", viewport={"width": 900, "height": 900})  # a fresh visitor, no login
    page = context.new_page()
    try:
        page.goto(f"{url}/submit/")
        page.set_input_files("#recording", str(SAMPLES / "third_party_contacts.wav"))
        page.fill("input[name=lender_name]", "快借消费金融")
        page.select_option("select[name=lender_type]", "consumer_finance")
        page.fill("input[name=calling_number]", "02188880000")
        page.fill("input[name=called_at]", "2025-03-02T20:15")
        page.select_option("select[name=collector_channel]", "left")
        shot(page, "11-submit-form")
        page.click("button.huge")
        page.wait_for_url(re.compile(r".*/submit/r/[A-Za-z0-9_-]{43}\?new=1$"))
        link = page.locator("#receipt-link").inner_text()
        assert re.fullmatch(rf"{re.escape(url)}/submit/r/[A-Za-z0-9_-]{{43}}", link)
        shot(page, "12-receipt-queued")

        visitor = context.browser.new_context(locale="zh-CN", viewport={"width": 900, "height": 900})
        try:
            later = visitor.new_page()  # the saved link, opened later in another browser

            def analysed():
                later.goto(link)
                status = later.locator("#status").get_attribute("data-status")
                assert status != "failed", later.locator("main").inner_text()
                return status == "done"

            wait_until(analysed, ANALYSIS_TIMEOUT, "the submission to be analysed")
            text = later.locator("main").inner_text()
            assert "快借消费金融" in text and "骚扰第三方" in text and "12378" in text
            shot(later, "13-receipt-done")
            later.goto(link[:-1] + ("A" if link[-1] != "A" else "B"))
            assert "没有找到这个页面" in later.locator("main").inner_text()
            shot(later, "14-receipt-altered-link")
        finally:
            visitor.close()
    finally:
        context.close()
