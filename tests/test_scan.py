"""`monitor scan` keeps the contract in shared/contract/scan.md."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.models import CATEGORIES

from .conftest import REPO, require_devset

CONTRACT_FINDING_KEYS = {"rule", "category", "severity", "turn", "start", "end", "evidence", "speaker_verified"}


def run_scan(tmp_path, lines: list[str]):
    source = tmp_path / "input.jsonl"
    source.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    result = CliRunner().invoke(main, ["scan", str(source)])
    return result, [json.loads(line) for line in result.stdout.splitlines()]


def check_conformant(inputs: list[dict], outputs: list[dict]) -> None:
    assert len(outputs) == len(inputs)
    for record, out in zip(inputs, outputs):
        assert out["id"] == record["id"]
        assert out["categories"] == sorted(set(out["categories"]))
        assert set(out["categories"]) <= set(CATEGORIES)
        assert out["categories"] == sorted({f["category"] for f in out["findings"]})
        for finding in out["findings"]:
            assert CONTRACT_FINDING_KEYS <= set(finding)
            turns = record.get("turns")
            if turns is None:
                assert finding["turn"] is None
            elif finding["turn"] is not None:
                turn = turns[finding["turn"]]
                assert finding["start"] == turn.get("start") and finding["end"] == turn.get("end")
                assert turn.get("speaker", "unknown") != "debtor"
                assert finding["speaker_verified"] == (turn.get("speaker") == "collector")


@pytest.mark.slow
def test_devset_output_is_contract_conformant(tmp_path):
    devset = require_devset()
    for name in ("utterances.jsonl", "calls.jsonl"):
        lines = (devset / name).read_text(encoding="utf-8").splitlines()
        result, outputs = run_scan(tmp_path, lines)
        assert result.exit_code == 0, result.stderr
        check_conformant([json.loads(line) for line in lines], outputs)


@pytest.mark.slow
def test_malformed_lines_become_error_lines_and_the_rest_is_scanned(tmp_path):
    lines = [
        '{"id": "u1", "speaker": "collector", "text": "你个傻逼"}',
        '{"id": "u2", "speaker": "collector", "text": ',
        '{"id": "u3", "speaker": "boss", "text": "你好"}',
        '{"speaker": "collector", "text": "no id"}',
        '{"id": "c1", "started_at": "yesterday", "turns": []}',
        '{"id": "c2", "turns": [{"speaker": "collector"}]}',
        '{"id": "u4", "text": "转我微信"}',
    ]
    result, outputs = run_scan(tmp_path, lines)
    assert result.exit_code == 1
    assert [o["id"] for o in outputs] == ["u1", None, "u3", None, "c1", "c2", "u4"]
    assert outputs[0]["categories"] == ["abuse"]
    assert "line 2: not valid JSON" in outputs[1]["error"]
    assert "speaker: must be one of collector, debtor, unknown" in outputs[2]["error"]
    assert "missing required field 'id'" in outputs[3]["error"]
    assert "started_at: not an ISO 8601 date-time" in outputs[4]["error"]
    assert "turns[0]: missing required field 'text'" in outputs[5]["error"]
    # No speaker means unknown: flagged, but not verified as the collector.
    assert outputs[6]["findings"][0]["speaker_verified"] is False
    assert "error: line 2" in result.stderr


@pytest.mark.slow
def test_call_frequency_counts_calls_across_the_input_in_time_order(tmp_path):
    calls = [
        {"id": f"c{i}", "debtor_id": "D9", "started_at": f"2026-05-04T{h}:00:00+08:00", "turns": [{"speaker": "collector", "text": "您好"}]}
        for i, h in enumerate(["17", "09", "11", "14", "23"])
    ]
    _, outputs = run_scan(tmp_path, [json.dumps(c) for c in calls])
    assert {o["id"]: o["categories"] for o in outputs} == {
        "c0": ["call_frequency"], "c1": [], "c2": [], "c3": [], "c4": ["call_frequency", "off_hours"],
    }


@pytest.mark.slow
def test_start_time_without_offset_uses_the_configured_zone(tmp_path, monkeypatch):
    # The off_hours window is in the debtor's time (Asia/Shanghai); the same wall-clock
    # strings must give opposite answers when the configured zone changes.
    night = {"id": "c1", "started_at": "2026-05-04T06:00:00", "turns": [{"speaker": "collector", "text": "您好"}]}
    afternoon = night | {"id": "c2", "started_at": "2026-05-04T14:30:00"}
    _, outputs = run_scan(tmp_path, [json.dumps(night), json.dumps(afternoon)])
    assert [o["categories"] for o in outputs] == [["off_hours"], []]
    monkeypatch.setenv("MONITOR_TIMEZONE", "UTC")  # 06:00 UTC is 14:00 in Shanghai, 14:30 UTC is 22:30
    _, outputs = run_scan(tmp_path, [json.dumps(night), json.dumps(afternoon)])
    assert [o["categories"] for o in outputs] == [[], ["off_hours"]]


@pytest.mark.slow
def test_console_script_reads_stdin_and_writes_only_json_to_stdout(tmp_path):
    monitor = REPO / ".venv" / "bin" / "monitor"
    command = [str(monitor)] if monitor.exists() else [sys.executable, "-m", "monitor"]
    out = tmp_path / "out.jsonl"
    done = subprocess.run(
        [*command, "scan", "-", "-o", str(out)],
        input='{"id": "u1", "speaker": "collector", "text": "我是法院的"}\n',
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert json.loads(out.read_text(encoding="utf-8"))["categories"] == ["impersonation"]
