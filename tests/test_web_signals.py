"""Conversation signals in the web app: the call page's timeline, the queue's filters on
raised voice, overtalk and collector talk share (and their refusals), the same filters in
the API and `monitor export`, and the signals in the queue's CSV. Calls with signals are
stored straight into the store; same fixtures as tests/test_web.py."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re

import pytest

from monitor.models import Call, CallSignals, SideSignals, Turn
from monitor.store import StoreError
from tests.test_web import ABUSIVE, csrf, seed_call, web  # noqa: F401  (web is a fixture)


def seed_signals(store, engine, call_id: str, overtalk: float, collector_share: float, raised: int | None) -> None:
    """ABUSIVE as a stereo call: the first two turns overlap by a second; ``raised`` is
    the turn said with a raised voice (or None)."""
    times = [(0.0, 4.0, 1.0), (3.0, 5.0, 1.0), (5.5, 9.0, 0.0)]
    turns = tuple(Turn(speaker, text, start, end, 0.9, "channel", loudness=-20.0, raised_voice=i == raised,
                       overtalk=over)
                  for i, ((speaker, text), (start, end, over)) in enumerate(zip(ABUSIVE, times)))
    sides = (SideSignals("collector", 7.0, collector_share, 4.0, 2, int(raised == 2)),
             SideSignals("debtor", 3.0, round(1 - collector_share, 3), 3.0, 1, int(raised == 1)))
    call = Call(id=call_id, turns=turns, sha256=hashlib.sha256(call_id.encode()).hexdigest(), duration=10.0,
                collector_id="C1", signals=CallSignals("channel", sides, 1.0, 1, overtalk, 0.5))
    stored = store.save_transcript(call)
    store.save_findings(stored, engine.scan(call), engine.pack.version)


@pytest.fixture
def calls(web, engine):
    seed_signals(web.store, engine, "loud", 0.3, 0.7, 2)  # the collector's insult, shouted
    seed_signals(web.store, engine, "calm", 0.05, 0.5, None)
    seed_signals(web.store, engine, "heated", 0.1, 0.4, 1)  # the debtor shouted
    seed_call(web, engine, "typed", ABUSIVE)  # turn times, no signals
    return web


def _queue(client, query: str) -> list[str]:
    page = client.get(f"/?{query}")
    assert page.status_code == 200, page.text
    return sorted(re.findall(r'data-call="([^"]+)"', page.text))


# --- the call page's timeline ----------------------------------------------------------


def test_the_call_page_draws_the_timeline_with_bars_overtalk_raised_voice_and_findings(calls):
    page = calls.client("rita").get("/calls/loud").text
    svg = page[page.index('<svg class="chart timeline"'):page.index("</svg>", page.index('<svg class="chart timeline"'))]
    assert 'role="img"' in svg and 'aria-label="通话时间轴' in svg and '<desc id="timeline-desc">' in svg
    assert svg.count('class="tl-bar') == 3 and svg.count('class="tl-overtalk"') == 1
    assert svg.count('class="tl-raised-mark"') == 1
    [finding] = calls.store.findings("loud")
    marks = re.findall(r'<a href="(#turn-\d+)" class="tl-finding[^"]*"[^>]*>\s*<title>([^<]+)</title>', svg)
    assert marks == [(f"#turn-{finding.finding.turn}", marks[0][1])]
    assert finding.finding.rule in marks[0][1] and "辱骂侮辱" in marks[0][1]
    assert f'id="turn-{finding.finding.turn}"' in page  # the mark's link lands on the transcript's turn
    assert ">催收员</text>" in svg and ">债务人</text>" in svg and "双声道录音" in page


def test_a_call_without_turn_times_has_no_timeline_and_no_error(calls, engine):
    call = Call(id="notimes", turns=tuple(Turn(s, t) for s, t in ABUSIVE), sha256="cd" * 32)
    calls.store.save_findings(calls.store.save_transcript(call), engine.scan(call), engine.pack.version)
    page = calls.client("rita").get("/calls/notimes")
    assert page.status_code == 200 and "通话时间轴" not in page.text and "你这个废物" in page.text


# --- the queue's signal filters ---------------------------------------------------------


def test_the_queue_filters_on_raised_voice_overtalk_and_collector_share(calls):
    client = calls.client("rita")
    assert _queue(client, "") == ["calm", "heated", "loud", "typed"]
    assert _queue(client, "raised_voice=any") == ["heated", "loud"]
    assert _queue(client, "raised_voice=collector") == ["loud"]
    assert _queue(client, "overtalk=20") == ["loud"]
    assert _queue(client, "overtalk=5") == ["calm", "heated", "loud"]  # at least: 5 % itself counts
    assert _queue(client, "collector_share=60") == ["loud"]
    assert _queue(client, "overtalk=5&collector_share=45&raised_voice=any") == ["loud"]
    page = client.get("/?overtalk=20").text
    assert 'name="overtalk"' in page and 'value="20"' in page and "抢话 30%" in page and "提高音量 1" in page


@pytest.mark.parametrize("query, words", [
    ("overtalk=abc", "抢话占比要填 0 到 100"),
    ("overtalk=150", "抢话占比要填 0 到 100"),
    ("collector_share=-1", "催收员说话占比要填 0 到 100"),
    ("collector_share=nan", "催收员说话占比要填 0 到 100"),
    ("raised_voice=loud", "“提高音量”只能选"),
])
def test_the_queue_refuses_a_bad_signal_filter_with_the_reason(calls, query, words):
    refused = calls.client("rita").get(f"/?{query}")
    assert refused.status_code == 400 and words in refused.text


def test_the_queue_csv_carries_the_signals(calls):
    client = calls.client("rita")
    response = client.post("/bulk", data={"csrf_token": csrf(client, "/"), "action": "export", "call_id": ["loud", "typed"]})
    header, *rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    by_id = {r[0]: dict(zip(header, r)) for r in rows}
    assert (by_id["loud"]["抢话占比"], by_id["loud"]["催收员说话占比"], by_id["loud"]["提高音量的话轮"]) == ("30%", "70%", "1")
    assert (by_id["typed"]["抢话占比"], by_id["typed"]["提高音量的话轮"]) == ("", "")  # no signals, not "none"


# --- the same filters in the API and the export ------------------------------------------


def test_the_api_findings_take_the_signal_filters(calls):
    from monitor.web import create_api_token

    auth = {"Authorization": f"Bearer {create_api_token(calls.store, 'rita')}"}
    client = calls.app.test_client()

    def ids(query: str) -> list[str]:
        answer = client.get(f"/api/v1/findings?{query}", headers=auth)
        assert answer.status_code == 200, answer.json
        return sorted({row["call_id"] for row in answer.json["findings"]})

    assert ids("overtalk_at_least=0.2") == ["loud"]
    assert ids("raised_voice=any") == ["heated", "loud"] and ids("collector_share_at_least=0.45") == ["calm", "loud"]
    [row] = client.get("/api/v1/findings?raised_voice=collector", headers=auth).json["findings"]
    assert (row["overtalk_share"], row["collector_talk_share"], row["speaker_source"]) == (0.3, 0.7, "channel")
    refused = client.get("/api/v1/findings?overtalk_at_least=20", headers=auth)
    assert refused.status_code == 400 and "a share from 0 to 1" in refused.json["message"]
    assert client.get("/api/v1/findings?raised_voice=yes", headers=auth).status_code == 400


def test_monitor_export_takes_the_signal_filters(calls):
    from click.testing import CliRunner

    from monitor.cli import main

    result = CliRunner().invoke(main, ["export", "--db", str(calls.store.path), "--format", "jsonl",
                                       "--raised-voice", "collector", "--overtalk-at-least", "0.2"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [r["call_id"] for r in rows] == ["loud"] and rows[0]["collector_talk_share"] == 0.7
    bad = CliRunner().invoke(main, ["export", "--db", str(calls.store.path), "--collector-share-at-least", "70"])
    assert bad.exit_code == 2


def test_the_store_refuses_a_share_outside_zero_to_one(calls):
    with pytest.raises(StoreError, match="share from 0 to 1"):
        calls.store.queue_count(overtalk_at_least=20)
    with pytest.raises(StoreError, match="raised_voice"):
        list(calls.store.export_rows(raised_voice="loudly"))
    assert calls.store.queue_count(collector_share_at_least=0.7) == 1
