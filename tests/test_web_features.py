"""What a compliance team works with every day: transcript search, the queue's sorting,
paging and bulk actions, CSV export with masked numbers, second looks (复核) and the
dashboard's rates per 100 calls. Same fixtures as tests/test_web.py."""

from __future__ import annotations

import csv
import io
import re

from monitor.web import present
from tests.test_web import ABUSIVE, CONTACTS, POLITE, csrf, seed_call, web  # noqa: F401  (web is a fixture)

VIOLENT = [("collector", "你要是再不还钱，就打断你的腿。"), ("debtor", "我会想办法的。")]


def _seed_three(web, engine):
    seed_call(web, engine, "a1", ABUSIVE, "2025-03-01T09:00", "C1", "110101199001011234")
    seed_call(web, engine, "a2", CONTACTS, "2025-03-02T10:00", "C2", "13812345678")
    seed_call(web, engine, "a3", ABUSIVE, "2025-03-03T11:00", "C1", "D-3")


# --- search --------------------------------------------------------------------------------


def test_search_finds_phrases_highlights_them_and_links_to_the_moment(web, engine):
    _seed_three(web, engine)
    client = web.client("rita")
    page = client.get("/search?q=通讯录")
    assert page.status_code == 200 and "<mark>通讯录</mark>" in page.text
    assert 'href="/calls/a2?t=0.0#turn-0"' in page.text and "共 1 处" in page.text
    short = client.get("/search?q=废物").text  # two characters: below the trigram index
    assert short.count("<mark>废物</mark>") == 2 and "共 2 处" in short
    assert "共 1 处" in client.get("/search?q=废物&collector=C1&since=2025-03-02").text
    assert "没有找到" in client.get("/search?q=废物&speaker=debtor").text
    both = client.get('/search?q=借的时候 "装什么穷"').text
    assert "<mark>借的时候</mark>" in both and "<mark>装什么穷</mark>" in both
    assert [e["action"] for e in web.store.audit_log("search")][0] == "transcripts.search"


def test_a_call_opened_at_a_moment_starts_the_player_there(web, engine, tmp_path):
    from tests.test_web import make_wav

    make_wav(tmp_path / "a1.wav", 440, seconds=8.0)
    seed_call(web, engine, "a1", ABUSIVE, source="a1.wav")
    page = web.client("rita").get("/calls/a1?t=4.0").text
    assert 'data-start="4.0"' in page and 'class="turn speaker-collector flagged at-seek" id="turn-2"' in page


def test_search_results_mask_numbers_for_reviewers_not_admins(web, engine):
    _seed_three(web, engine)
    assert "138****5678" in web.client("rita").get("/search?q=通讯录").text
    assert "13812345678" in web.client("admin").get("/search?q=通讯录").text


# --- the queue: sorting, bulk actions, export ----------------------------------------------


def test_the_queue_sorts(web, engine):
    _seed_three(web, engine)
    client = web.client("rita")
    oldest = re.findall(r'data-call="(a\d)"', client.get("/?sort=oldest").text)
    newest = re.findall(r'data-call="(a\d)"', client.get("/?sort=newest").text)
    assert oldest == ["a1", "a2", "a3"] and newest == ["a3", "a2", "a1"]


def test_bulk_dismiss_needs_a_reason_and_touches_only_the_selection(web, engine):
    _seed_three(web, engine)
    client = web.client("rita")
    token = csrf(client, "/")
    refused = client.post("/bulk", data={"csrf_token": token, "action": "dismissed", "call_id": ["a1", "a3"]})
    assert refused.status_code == 400 and "原因" in refused.text
    other = client.post("/bulk", data={"csrf_token": token, "action": "dismissed", "reason": "other", "call_id": "a1"})
    assert other.status_code == 400  # "other" needs words
    done = client.post("/bulk", data={"csrf_token": token, "action": "dismissed", "reason": "asr_error",
                                      "note": "原话是“废话”", "call_id": ["a1", "a3"]}, follow_redirects=True)
    assert done.status_code == 200 and "已驳回 2 条" in done.text
    for call_id in ("a1", "a3"):
        [finding] = web.store.findings(call_id)
        review = web.store.latest_review(finding.id)
        assert finding.decision == "dismissed" and review["note"] == "转写错误（原话不是这样）：原话是“废话”"
    assert all(f.decision is None for f in web.store.findings("a2"))
    confirmed = client.post("/bulk", data={"csrf_token": token, "action": "confirmed", "call_id": ["a1", "a2"]},
                            follow_redirects=True)
    # a1 was decided already: only a2's open findings (one sentence, as many rules as it breaks)
    assert f"已确认违规 {len(web.store.findings('a2'))} 条" in confirmed.text
    assert web.store.findings("a1")[0].decision == "dismissed"


def test_bulk_assign_by_an_admin(web, engine):
    _seed_three(web, engine)
    admin = web.client("admin")
    admin.post("/bulk", data={"csrf_token": csrf(admin, "/"), "action": "assign", "reviewer": "ralf",
                              "call_id": ["a1", "a2"]})
    assert web.store.assignment("a1")["reviewer"] == "ralf" and web.store.assignment("a3") is None
    rita = web.client("rita")
    assert rita.post("/bulk", data={"csrf_token": csrf(rita, "/"), "action": "assign", "reviewer": "ralf",
                                    "call_id": "a3"}).status_code == 403


def test_export_of_the_selection_masks_numbers_for_reviewers(web, engine):
    _seed_three(web, engine)
    web.store.db["calls"].update("a2", {"caller_number": "02188880000"})
    web.store.db.conn.commit()

    def export(user):
        client = web.client(user)
        response = client.post("/bulk", data={"csrf_token": csrf(client, "/"), "action": "export",
                                              "call_id": ["a1", "a2"]})
        assert response.status_code == 200 and response.mimetype == "text/csv"
        return list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))

    header, *rows = export("rita")
    assert header[0] == "通话" and sorted(r[0] for r in rows) == ["a1", "a2"]
    by_id = {r[0]: dict(zip(header, r)) for r in rows}
    assert by_id["a1"]["债务人"] == "110101********1234" and by_id["a2"]["来电号码"] == "021****0000"
    _, *rows = export("admin")
    assert {r[0]: r[3] for r in rows}["a1"] == "110101199001011234"
    assert [e["action"] for e in web.store.audit_log("queue")] == ["queue.export", "queue.export"]


def test_the_queue_masks_debtor_ids_for_reviewers(web, engine):
    _seed_three(web, engine)
    assert "110101********1234" in web.client("rita").get("/").text
    assert "110101199001011234" not in web.client("rita").get("/").text
    assert "110101199001011234" in web.client("admin").get("/").text


def test_mask():
    assert present.mask("13812345678") == "138****5678"
    assert present.mask("110101199001011234") == "110101********1234"
    assert present.mask("1234") == "****" and present.mask(None) == ""


# --- second look (复核) --------------------------------------------------------------------


def test_a_dismissed_critical_finding_goes_to_a_second_reviewer_and_both_decisions_stay(web, engine):
    seed_call(web, engine, "v1", VIOLENT)
    critical = next(f for f in web.store.findings("v1") if f.finding.severity == "critical")
    rita = web.client("rita")
    token = csrf(rita, "/calls/v1")
    rita.post("/calls/v1/decide", data={"csrf_token": token, "finding_id": critical.id, "decision": "dismissed",
                                        "reason": "context"})
    assert "送交复核" in rita.get("/calls/v1").text
    to_self = rita.post("/calls/v1/second-look", data={"csrf_token": token, "finding_id": critical.id, "reviewer": "rita"})
    assert to_self.status_code == 400
    rita.post("/calls/v1/second-look", data={"csrf_token": token, "finding_id": critical.id, "reviewer": "ralf"})
    ralf = web.client("ralf")
    assert 'data-call="v1"' in ralf.get("/?second_look=me").text
    assert 'data-call="v1"' not in rita.get("/?second_look=me").text
    ralf.post("/calls/v1/decide", data={"csrf_token": csrf(ralf, "/calls/v1"), "finding_id": critical.id,
                                        "decision": "confirmed", "note": "威胁人身安全"})
    decisions = [(r["reviewer"], r["decision"]) for r in web.store.reviews("v1") if r["finding_id"] == critical.id]
    assert decisions == [("rita", "dismissed"), ("ralf", "confirmed")]
    assert 'data-call="v1"' not in ralf.get("/?second_look=me").text  # done
    assert "finding.second_look" in [e["action"] for e in web.store.audit_log(critical.id)]


def test_disputing_a_confirmation_needs_a_reason(web, engine):
    seed_call(web, engine, "c1", ABUSIVE)
    [finding] = web.store.findings("c1")
    web.store.review(finding.id, "confirmed", "rita")
    admin = web.client("admin")
    token = csrf(admin, "/calls/c1")
    assert admin.post("/calls/c1/second-look", data={"csrf_token": token, "finding_id": finding.id,
                                                     "reviewer": "ralf"}).status_code == 400
    assert admin.post("/calls/c1/second-look", data={"csrf_token": token, "finding_id": finding.id, "reviewer": "ralf",
                                                     "reason": "催收员称是转述客户原话"}).status_code == 302
    assert web.store.second_looks("c1")[finding.id]["first_decision"] == "confirmed"


# --- the dashboard ---------------------------------------------------------------------------


def test_the_dashboard_shows_rates_per_100_calls_throughput_and_ages(web, engine):
    seed_call(web, engine, "d1", ABUSIVE, "2025-03-01T09:00", "C9")
    seed_call(web, engine, "d2", POLITE, "2025-03-01T10:00", "C9")
    seed_call(web, engine, "d3", POLITE, "2025-03-01T11:00", "C9")
    seed_call(web, engine, "d4", CONTACTS, "2025-03-01T12:00", "C8")
    web.store.review(web.store.findings("d1")[0].id, "confirmed", "rita")
    page = web.client("admin").get("/dashboard?since=2025-03-01&until=2025-03-31").text
    assert 'id="total-calls">4<' in page
    contacts = len(web.store.findings("d4"))  # one sentence; as many findings as rules it breaks
    assert "33.3（1/3 通）" in page and f"{100 * contacts:.1f}（{contacts}/1 通）" in page  # C9: 1 finding in 3 calls
    assert 'href="/?collector=C9&amp;since=2025-03-01&amp;until=2025-03-31"' in page
    assert 'href="/?category=abuse&amp;since=2025-03-01&amp;until=2025-03-31"' in page
    throughput = re.search(r'<tr data-reviewer="rita">(.*?)</tr>', page, re.S)
    assert throughput is None  # the decision was made today, not in March 2025
    today = web.client("admin").get("/dashboard").text
    assert re.search(r'<tr data-reviewer="rita"><td>rita</td><td class="n-decisions">1<', today)
    ages = dict(re.findall(r'<tr data-age="([^"]+)">.*?class="n">(\d+)<', today, re.S))
    assert ages["0-1d"] == str(contacts)  # d4's findings, stored just now, wait for a decision


def test_the_dashboard_tallies_follow_every_store_change(web, engine):
    """The tallies the database keeps by trigger equal a count over the findings
    themselves after stores, decisions, a second decision and a rescan that retires one."""
    from collections import Counter

    def tallied():
        totals = web.store.dashboard_counts()
        return Counter({(name, key, decision): n for name, rows in totals.items() if name != "team"
                        for key, decision, n in rows})

    def counted():
        counts = Counter()
        for r in web.store.finding_counts():
            for name, key in (("category", r["category"]), ("collector", r["collector_id"]), ("day", r["day"])):
                counts[name, key, r["decision"]] += r["n"]
        return counts

    seed_call(web, engine, "t1", ABUSIVE + CONTACTS, "2025-03-01T09:00", "C1")
    seed_call(web, engine, "t2", VIOLENT, "2025-03-02T09:00", "C2")
    assert tallied() == counted() and sum(tallied().values()) == 3 * len(web.store.findings())
    first, second = web.store.findings("t1")[:2]
    web.store.review(first.id, "confirmed", "rita")
    web.store.review(first.id, "dismissed", "ralf")
    web.store.review(second.id, "confirmed", "rita")
    assert tallied() == counted()
    from monitor.models import Call, CallResult

    web.store.save_findings("t2", CallResult(Call("t2", ()), ()), engine.pack.version)  # the rules no longer fire
    assert tallied() == counted() and not any(k[1] == "C2" for k in tallied())
    assert all(key is None for key, _, _ in web.store.dashboard_counts()["team"])  # no call has a team
    analysed = web.store.call_counts()
    assert sum(analysed["all"].values()) == web.store.counts()["done"] == 2
    assert analysed["collector"] == {"C1": 1, "C2": 1}


def test_the_api_export_masks_debtor_ids_for_a_reviewers_token(web, engine):
    from monitor.web import create_api_token

    _seed_three(web, engine)
    client = web.app.test_client()

    def debtor_ids(user):
        auth = {"Authorization": f"Bearer {create_api_token(web.store, user)}"}
        return {r["call_id"]: r["debtor_id"] for r in client.get("/api/v1/findings", headers=auth).json["findings"]}

    assert debtor_ids("rita")["a1"] == "110101********1234"
    assert debtor_ids("admin")["a1"] == "110101199001011234"


def test_migration_three_backfills_decisions_and_tallies(tmp_path):
    """A store from before the sessions/paging migration: each finding gets its latest
    decision and the dashboard tallies are built from what is already there."""
    import sqlite_utils

    from monitor.store import Store, schema

    path = tmp_path / "before.db"
    db = sqlite_utils.Database(path)
    schema.MIGRATIONS.apply(db, stop_before="0003_web_sessions_paging")
    db["calls"].insert({"id": "k", "sha256": "k" * 64, "status": "done", "started_at": "2025-03-01T10:00:00+08:00",
                        "collector_id": "C1", "metadata": '{"team": "T1"}', "created_at": "2025-03-01T02:00:00+00:00"})
    for n, rule in enumerate(("a", "b")):
        db["findings"].insert({"id": f"k:{n}:{rule}", "call_id": "k", "turn": n, "rule": rule, "category": "abuse",
                               "severity": "high", "active": 1, "created_at": "2025-03-01T02:00:00+00:00"})
    db["reviews"].insert_all([{"finding_id": "k:0:a", "decision": "confirmed", "reviewer": "r", "decided_at": "x"},
                              {"finding_id": "k:0:a", "decision": "dismissed", "reviewer": "s", "decided_at": "y"}])
    db.close()
    store = Store(path)
    try:
        assert "0003_web_sessions_paging" in store.migrations
        assert {f.id: f.decision for f in store.findings("k")} == {"k:0:a": "dismissed", "k:1:b": None}
        totals = store.dashboard_counts()
        assert sorted(totals["category"], key=str) == sorted([("abuse", "dismissed", 1), ("abuse", None, 1)], key=str)
        assert sorted(totals["team"], key=str) == sorted([("T1", "dismissed", 1), ("T1", None, 1)], key=str)
        assert store.call_counts()["team"] == {"T1": 1}
    finally:
        store.close()
