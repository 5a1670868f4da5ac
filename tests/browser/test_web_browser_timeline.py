"""The call page's timeline in a real browser (Debian chromium through Playwright,
headless; waitress on 127.0.0.1): a reviewer filters the queue on overtalk, opens the
call, sees the SVG with a bar per turn and the finding's mark, and the mark leads to
the turn in the transcript. The call is stored straight into the store with its
signals (tests/test_web_signals.py), so no Whisper model runs here."""

from __future__ import annotations

import re
import threading

import pytest
from werkzeug.security import generate_password_hash

from monitor.store import Store
from monitor.web import create_app, make_server

from ..test_web_signals import seed_signals
from .test_web_browser_review import CHROMIUM, PASSWORD, _context, _login, browser, shot  # noqa: F401  (a fixture)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (apt-get install chromium fonts-noto-cjk)")


@pytest.fixture(scope="module")
def server(tmp_path_factory, engine):
    root = tmp_path_factory.mktemp("timeline")
    database = root / "web.db"
    app = create_app({"DATABASE": str(database), "INSTANCE_PATH": str(root / "instance"), "ENGINE": engine,
                      "SESSION_COOKIE_SECURE": False, "RECORDINGS_ROOT": str(root)})
    store = Store(database)
    store.add_user("rita", generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"), "reviewer")
    seed_signals(store, engine, "loud", 0.3, 0.7, 2)
    seed_signals(store, engine, "calm", 0.05, 0.5, None)
    store.close()
    http = make_server(app, "127.0.0.1", 0, threads=4)
    thread = threading.Thread(target=http.run, name="waitress", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.effective_port}"
    finally:
        http.close()
        thread.join(10)


@pytest.mark.slow
def test_the_timeline_shows_bars_and_finding_marks_that_lead_to_the_turn(server, browser):
    context = _context(browser)
    page = context.new_page()
    try:
        _login(page, server, "rita")
        page.fill("input[name=overtalk]", "20")
        page.click("form.filters button[type=submit]")
        page.wait_for_url(re.compile(r".*overtalk=20.*"))
        assert page.locator("tr[data-call]").count() == 1
        page.click('tr[data-call="loud"] a.call-link')
        page.wait_for_url(re.compile(r".*/calls/loud$"))

        svg = page.locator("svg.timeline")
        svg.scroll_into_view_if_needed()
        assert svg.is_visible() and svg.get_attribute("role") == "img"
        assert svg.get_attribute("aria-label").startswith("通话时间轴")
        frame = svg.bounding_box()
        bars = page.locator("svg.timeline rect.tl-bar")
        assert bars.count() == 3
        for i in range(3):
            box = bars.nth(i).bounding_box()
            assert box["width"] > 5 and box["height"] > 5
            assert frame["x"] <= box["x"] and box["x"] + box["width"] <= frame["x"] + frame["width"] + 1
        assert page.locator("svg.timeline rect.tl-overtalk").bounding_box()["width"] > 5
        assert page.locator("svg.timeline polygon.tl-raised-mark").is_visible()
        mark = page.locator("svg.timeline a.tl-finding circle")
        assert mark.count() == 1 and mark.is_visible()
        circle = mark.bounding_box()
        assert circle["width"] >= 8 and frame["y"] <= circle["y"] < frame["y"] + frame["height"]
        assert "辱骂侮辱" in page.locator("svg.timeline a.tl-finding title").text_content()
        shot(page, "40-call-timeline")

        mark.click()
        page.wait_for_url(re.compile(r".*/calls/loud#turn-2$"))
        assert page.locator("#turn-2 mark").count() >= 1
    finally:
        context.close()
