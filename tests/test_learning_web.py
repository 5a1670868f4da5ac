"""Suspected lines in the review app: their own section on the call page, decisions
on them, the queue by risk with 建议抽查, and rule suggestions for admins only."""

from __future__ import annotations

import hashlib
import re

import pytest
from werkzeug.security import generate_password_hash

from monitor.learning.model import SHIPPED_MODEL, load_model
from monitor.models import Call, Turn
from monitor.runs.pipeline import scan_stored
from monitor.store import REVIEWER_RULE, Store
from monitor.web import create_app

from .test_learning import POLITE, missed_line, shipped  # noqa: F401 - fixtures

PASSWORD = "correct horse battery"


@pytest.fixture
def app_store(tmp_path, engine, missed_line):  # noqa: F811
    app = create_app({"TESTING": True, "DATABASE": str(tmp_path / "web.db"), "INSTANCE_PATH": str(tmp_path / "instance"),
                      "ENGINE": engine, "EXECUTOR_FACTORY": lambda options: None})
    store = Store(tmp_path / "web.db")
    quick = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
    store.add_user("admin", quick, "admin")
    store.add_user("rita", quick, "reviewer")
    turns = (Turn("collector", POLITE, 0.0, 3.0), Turn("collector", missed_line[0], 3.5, 7.0))
    store.save_transcript(Call(id="c9", turns=turns, sha256=hashlib.sha256(b"c9").hexdigest(), duration=7.0))
    scan_stored(store, engine, ("transcribed",), model=load_model(SHIPPED_MODEL))
    yield app, store
    store.close()


def login(app, user: str):
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    assert client.post("/login", data={"username": user, "password": PASSWORD, "csrf_token": token}).status_code == 302
    return client


def test_call_page_shows_suspected_lines_apart_and_a_confirmation_makes_a_finding(app_store, missed_line):  # noqa: F811
    app, store = app_store
    text, category = missed_line
    client = login(app, "rita")
    queue = client.get("/risk?suggested=1").text
    assert "c9" in queue and "建议抽查" in queue
    page = client.get("/calls/c9").text
    assert "违规提示（0）" in page  # not counted as a violation
    section = page[page.index('id="suspected"'):]
    assert text in section and "疑似" in section
    suspect_id = f"c9:1:{category}"
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/calls/c9/suspected", data={"csrf_token": token, "suspect_id": suspect_id,
                                                         "decision": "confirmed", "note": "漏报"})
    assert response.status_code == 302
    finding = next(f for f in store.findings("c9") if f.finding.rule == REVIEWER_RULE)
    assert finding.finding.category == category and finding.decision == "confirmed"
    assert store.latest_review(finding.id)["reviewer"] == "rita"
    assert "c9" not in client.get("/risk?suggested=1").text
    assert "违规提示（1）" in client.get("/calls/c9").text


def test_a_suspected_line_of_another_call_or_without_csrf_is_refused(app_store, missed_line):  # noqa: F811
    app, store = app_store
    client = login(app, "rita")
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/calls/c9").text).group(1)
    suspect_id = f"c9:1:{missed_line[1]}"
    assert client.post("/calls/other/suspected", data={"csrf_token": token, "suspect_id": suspect_id,
                                                        "decision": "confirmed"}).status_code == 404
    assert client.post("/calls/c9/suspected", data={"suspect_id": suspect_id, "decision": "confirmed"}).status_code == 400
    assert store.suspect(suspect_id)["decision"] is None


def test_rule_suggestions_page_is_for_admins(app_store, missed_line):  # noqa: F811
    app, store = app_store
    store.decide_suspected(f"c9:1:{missed_line[1]}", "confirmed", "rita", "漏报")
    assert login(app, "rita").get("/rules/suggestions").status_code == 403
    page = login(app, "admin").get("/rules/suggestions")
    assert page.status_code == 200 and "fire:" in page.text and missed_line[0] in page.text
