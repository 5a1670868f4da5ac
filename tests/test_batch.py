"""The nightly batch on copies of sample_audio: idempotent, resumable after SIGKILL,
broken files stored as failed, archive-wide time and frequency rules, and a real Dask
cluster giving the same findings as a local run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from monitor.runs.batch import discover, run_batch
from monitor.runs.executor import DaskExecutor, LocalExecutor
from monitor.runs.debtor_side import transcribe_debtor_side
from monitor.runs.pipeline import AsrOptions
from monitor.store import Store

from .conftest import REPO, close

SAMPLES = REPO / "sample_audio"
ZONE = ZoneInfo("Asia/Shanghai")
MONITOR = [str(REPO / ".venv/bin/monitor")] if (REPO / ".venv/bin/monitor").exists() else [sys.executable, "-m", "monitor"]


def copy_samples(folder: Path, names: list[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(SAMPLES / f"{name}.wav", folder / f"{name}.wav")) for name in names]


def sidecar(recording: Path, **fields) -> None:
    recording.with_suffix(".json").write_text(json.dumps(fields), encoding="utf-8")


def batch(source: Path, store: Store, engine, executor=None, **kwargs):
    executor = executor or LocalExecutor(1, AsrOptions())
    return run_batch(source, store, engine, executor, ZONE, log=lambda line: None, **kwargs)


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def stored(store: Store) -> list[tuple[str, str]]:
    return sorted(store.db.execute("SELECT sha256, status FROM calls").fetchall())


@pytest.mark.slow
def test_a_second_run_transcribes_nothing(tmp_path, engine):
    copy_samples(tmp_path / "night", ["compliant_reminder", "abuse_threat"])
    store = Store(tmp_path / "m.db")
    first = batch(tmp_path / "night", store, engine)
    assert (first.transcribed, first.skipped, first.failed) == (2, 0, [])
    assert store.counts() == {"done": 2}
    findings = [(f.id, f.finding.category) for f in store.findings()]
    assert {c for _, c in findings} == {"abuse", "threat"}
    second = batch(tmp_path / "night", store, engine)
    assert (second.transcribed, second.skipped, second.scanned) == (0, 2, 0)
    assert [(f.id, f.finding.category) for f in store.findings()] == findings


@pytest.mark.slow
def test_broken_files_are_stored_as_failed_and_the_batch_goes_on(tmp_path):
    night = tmp_path / "night"
    copy_samples(night, ["compliant_reminder", "cash_personal_account"])
    (night / "notes.wav").write_text("这不是录音，是一份文本文件", encoding="utf-8")
    (night / "empty.mp3").write_bytes(b"")
    data = (SAMPLES / "abuse_threat.wav").read_bytes()
    # A damaged header: the audio-format code of the fmt chunk overwritten.
    (night / "corrupt.wav").write_bytes(data[:20] + b"\x39\x30" + data[22:4000])
    done = subprocess.run(
        [*MONITOR, "batch", str(night), "--db", str(tmp_path / "m.db")],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    store = Store(tmp_path / "m.db")
    rows = {r["id"]: r for r in store.db.query("SELECT id, status, error FROM calls")}
    assert rows["compliant_reminder"]["status"] == rows["cash_personal_account"]["status"] == "done"
    assert rows["notes"]["status"] == rows["empty"]["status"] == rows["corrupt"]["status"] == "failed"
    assert "notes.wav: not an audio file" in rows["notes"]["error"]
    assert "empty.mp3: empty file" in rows["empty"]["error"]
    assert "corrupt.wav" in rows["corrupt"]["error"]
    assert "failed: 3" in done.stdout and "empty.mp3: empty file" in done.stdout
    assert [f.finding.category for f in store.findings("cash_personal_account")]


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_without_duplicates(tmp_path):
    night = tmp_path / "night"
    names = ["compliant_reminder", "compliant_instalment", "abuse_threat", "third_party_contacts",
             "cash_personal_account", "impersonation_court", "mono_threat"]
    copy_samples(night, names)
    db = tmp_path / "m.db"
    with subprocess.Popen(
        [*MONITOR, "batch", str(night), "--db", str(db)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    ) as process:
        for line in process.stderr:  # plain progress lines: "[k/n] ok: path"
            if line.startswith("[2/"):
                break
        workers = _children(process.pid)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    # The pool's workers notice their coordinator is gone and stop (after the call each is on).
    deadline = time.monotonic() + 180
    while any(Path(f"/proc/{pid}").exists() for pid in workers):
        assert time.monotonic() < deadline, f"worker processes left behind: {workers}"
        time.sleep(0.5)
    partial = Store(db).counts()
    assert 1 <= sum(partial.values()) < len(names), partial
    done = subprocess.run([*MONITOR, "batch", str(night), "--db", str(db)], capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    store = Store(db)
    assert store.counts() == {"done": len(names)}
    assert sorted(store.db.execute("SELECT id FROM calls").fetchall()) == sorted((n,) for n in names)
    turns_per_call = dict(store.db.execute("SELECT call_id, count(*) FROM turns GROUP BY call_id").fetchall())
    for name in names:
        expected = json.loads((SAMPLES / f"{name}.expected.json").read_text(encoding="utf-8"))["turns"]
        if store.debtor_side(name) == "not transcribed":  # the batch's collector-first default
            expected = [t for t in expected if t.get("speaker") != "debtor"]
        assert turns_per_call[name] >= len(expected) - 2  # stored once, completely


@pytest.mark.slow
def test_frequency_counts_calls_stored_by_an_earlier_batch_and_night_calls_are_off_hours(tmp_path, engine):
    store = Store(tmp_path / "m.db")
    first_night = copy_samples(tmp_path / "n1", ["compliant_reminder", "compliant_instalment", "third_party_contacts"])
    for recording, hour in zip(first_night, ["09:10", "11:40", "14:20"]):
        sidecar(recording, debtor_id="D1001", collector_id="K201", started_at=f"2026-04-08T{hour}:00+08:00")
    batch(tmp_path / "n1", store, engine)
    assert not [f for f in store.findings() if f.finding.category in ("call_frequency", "off_hours")]
    second = copy_samples(tmp_path / "n2", ["cash_personal_account", "impersonation_court"])
    sidecar(second[0], debtor_id="D1001", collector_id="K201", started_at="2026-04-08T17:55:00+08:00")
    sidecar(second[1], debtor_id="D2002", started_at="2026-04-08T22:30:00+08:00")
    batch(tmp_path / "n2", store, engine)
    categories = {call_id: json.loads(c) for call_id, c in store.db.execute("SELECT id, categories FROM calls").fetchall()}
    assert "call_frequency" in categories["cash_personal_account"]
    assert "off_hours" in categories["impersonation_court"]
    assert "call_frequency" not in categories["third_party_contacts"]


def test_metadata_from_manifest_sidecar_and_file_name(tmp_path):
    folder = tmp_path / "archive"
    folder.mkdir()
    (folder / "D77_20260408T231500_A9.wav").write_bytes(b"x")
    (folder / "plain.wav").write_bytes(b"x")
    sidecar(folder / "plain.wav", debtor_id="D5", direction="inbound", caller_number="13800000000")
    jobs, problems = discover(folder, ZONE, r"(?P<debtor_id>D\d+)_(?P<started_at>\d{8}T\d{6})_(?P<collector_id>A\d+)")
    by_name = {Path(j.path).name: j for j in jobs}
    named = by_name["D77_20260408T231500_A9.wav"].metadata
    assert (named.debtor_id, named.collector_id, named.started_at.isoformat()) == ("D77", "A9", "2026-04-08T23:15:00+08:00")
    assert by_name["plain.wav"].metadata.direction == "inbound"
    assert by_name["plain.wav"].extra == {"caller_number": "13800000000"}
    manifest = tmp_path / "calls.csv"
    manifest.write_text("path,call_id,started_at,debtor_id,direction\narchive/plain.wav,c-1,2026-04-08 10:00:00,D5,outbound\n"
                        "archive/missing.wav,c-2,not-a-time,D5,outbound\n", encoding="utf-8")
    jobs, problems = discover(manifest, ZONE)
    assert [j.metadata.call_id for j in jobs] == ["c-1"]
    assert problems and "calls.csv:3: started_at: not an ISO 8601 date-time" in problems[0][1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dask_cluster(tmp_path):
    """A real `dask scheduler` and two `dask worker` processes on loopback."""
    bin_dir = Path(sys.executable).parent
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    processes = [subprocess.Popen([str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                   "--no-dashboard"], cwd=tmp_path, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for name in ("w1", "w2"):
            processes.append(subprocess.Popen(
                [str(bin_dir / "dask"), "worker", address, "--nthreads", "1", "--nworkers", "1", "--name", name,
                 "--no-dashboard", "--local-directory", str(tmp_path / name)],
                cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        deadline = time.monotonic() + 120
        with Client(address, timeout="60s") as client:
            while len(client.scheduler_info()["workers"]) < 2:
                assert time.monotonic() < deadline, "dask workers did not start"
                time.sleep(0.5)
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.mark.slow
def test_a_dask_cluster_stores_the_same_findings_as_a_local_run(tmp_path, engine, dask_cluster):
    names = ["abuse_threat", "third_party_contacts", "cash_personal_account", "compliant_reminder"]
    recordings = copy_samples(tmp_path / "night", names)
    (tmp_path / "night" / "broken.wav").write_text("not audio", encoding="utf-8")
    sidecar(recordings[0], debtor_id="D1", started_at="2026-04-08T23:00:00+08:00")
    local, distributed = Store(tmp_path / "local.db"), Store(tmp_path / "dask.db")
    batch(tmp_path / "night", local, engine)
    report = batch(tmp_path / "night", distributed, engine, DaskExecutor(dask_cluster, AsrOptions()))
    assert report.transcribed == 4 and len(report.failed) == 1

    def summary(store: Store):
        return sorted((f.id, f.finding.category, f.finding.evidence) for f in store.findings())

    assert summary(distributed) == summary(local)
    assert stored(distributed) == stored(local)


ALL_SAMPLES = ["compliant_reminder", "compliant_instalment", "abuse_threat", "third_party_contacts",
               "cash_personal_account", "impersonation_court", "mono_threat"]


def findings_of(store: Store) -> list[tuple]:
    return sorted((f.id, f.finding.category, f.finding.evidence, f.finding.speaker_verified) for f in store.findings())


def turns_of(store: Store, call_id: str) -> list[tuple]:
    return [(t.speaker, t.text, t.start, t.end) for t in store.call(call_id).turns]


@pytest.mark.slow
def test_collector_first_stores_the_findings_of_always_and_fills_in_the_debtor_side_on_demand(tmp_path, engine):
    copy_samples(tmp_path / "night", ALL_SAMPLES)
    # The first call of the night to D9 at 23:10 makes an off-hours finding on a compliant recording.
    sidecar(tmp_path / "night" / "compliant_instalment.wav", debtor_id="D9", started_at="2026-04-08T23:10:00+08:00")
    executor = LocalExecutor(2, AsrOptions(device="auto"))
    always, first = Store(tmp_path / "always.db"), Store(tmp_path / "first.db")
    batch(tmp_path / "night", always, engine, executor, debtor_side="always")
    report = batch(tmp_path / "night", first, engine, executor, debtor_side="when-flagged")

    assert findings_of(first) == findings_of(always) and findings_of(always)
    sides = dict(first.db.execute("SELECT id, debtor_side FROM calls").fetchall())
    flagged = {f.call_id for f in first.findings()}
    assert flagged == {"abuse_threat", "third_party_contacts", "cash_personal_account", "impersonation_court",
                       "mono_threat", "compliant_instalment"}
    for call_id in flagged - {"mono_threat"}:
        assert sides[call_id] == "transcribed" and close(turns_of(first, call_id), turns_of(always, call_id))
    assert sides == {**{c: "transcribed" for c in flagged}, "mono_threat": None, "compliant_reminder": "not transcribed"}
    assert {t[0] for t in turns_of(first, "compliant_reminder")} == {"collector"}
    assert "not transcribed for 1 of 7" in report.summary()
    assert "no CUDA device found, running on the CPU" in report.summary() or "CUDA" in report.summary()

    # Opened or asked for a document: the skipped side is transcribed, the rules run again.
    assert transcribe_debtor_side(first, "compliant_reminder", AsrOptions(), engine) is True
    assert first.debtor_side("compliant_reminder") == "transcribed"
    assert close(turns_of(first, "compliant_reminder"), turns_of(always, "compliant_reminder"))
    assert first.counts() == {"done": 7} and findings_of(first) == findings_of(always)
    assert transcribe_debtor_side(first, "compliant_reminder", AsrOptions(), engine) is False  # nothing left to do


def _segments(*lines):
    from monitor.speech.transcribe import Segment

    return tuple(("collector", Segment(start, start + 2.0, text, -0.2, 0.01, 1.2)) for start, text in lines)


@pytest.mark.slow
def test_the_first_look_flags_a_suspected_line_whose_context_the_debtor_turns_may_hold(engine):
    from monitor.models import Call
    from monitor.runs import collector_first
    from monitor.runs.pipeline import simplified
    from monitor.speech.transcribe import merge_segments

    decider = collector_first.Decider(engine)

    def look(*lines):
        segments = _segments(*lines)
        call = Call(id="c", turns=simplified(merge_segments(list(segments))))
        return decider.flagged(call, segments, ())

    # "注意安全" is a threat only after talk of the debtor's home within four turns: the
    # debtor's turns in between are unknown yet, so the line alone asks for them.
    assert look((1.0, "您好，我是平台的客服"), (20.0, "没啥意思，提醒你注意安全嘛"))
    assert look((1.0, "你这个垃圾"))
    assert not look((1.0, "您好，这里是平台客服，提醒您本期账单三号到期"), (8.0, "您可以在APP里还款"))
    # Half a second apart, the two collector segments join into one turn whose denial
    # hides the threat; with a debtor turn between them (unknown yet) they stay apart and
    # the second is a threat. Each segment is also looked at on its own.
    joined = Call(id="c", turns=simplified(merge_segments(list(_segments((1.0, "我们不会"), (3.5, "上门找你家里人"))))))
    assert len(joined.turns) == 1 and not engine.scan(joined).findings
    assert look((1.0, "我们不会"), (3.5, "上门找你家里人"))


def test_the_first_look_counts_tonight_s_earlier_calls_to_the_same_debtor():
    from datetime import datetime, timedelta, timezone

    from monitor.models import Call
    from monitor.runs.collector_first import History

    start = datetime(2026, 4, 8, 9, 0, tzinfo=timezone(timedelta(hours=8)))
    calls = [Call(id=f"c{i}", turns=(), started_at=start + timedelta(hours=i), debtor_id="D1") for i in range(4)]
    night = History(calls + [Call(id="other", turns=(), started_at=start, debtor_id="D2")])
    assert [c.id for c in night.before(calls[3], [])] == ["c0", "c1", "c2"]
    stored = [Call(id="c0", turns=(), started_at=start, debtor_id="D1")]
    assert [c.id for c in night.before(calls[3], stored)] == ["c0", "c1", "c2"]  # not counted twice


@pytest.mark.slow
def test_opening_a_call_or_asking_for_its_evidence_fills_in_a_skipped_debtor_side(tmp_path, engine):
    import zipfile

    from werkzeug.security import generate_password_hash

    from monitor.web import create_app

    copy_samples(tmp_path / "night", ["abuse_threat", "cash_personal_account"])
    db = tmp_path / "m.db"
    store = Store(db)
    batch(tmp_path / "night", store, engine, debtor_side="never")
    assert store.calls_missing_debtor_side(flagged_only=True) == ["abuse_threat", "cash_personal_account"]

    # The web app: the call page starts the transcription and says so.
    store.add_user("rita", generate_password_hash("pw", method="pbkdf2:sha256:1000"), "reviewer")
    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False, "DATABASE": str(db), "ENGINE": engine,
                      "INSTANCE_PATH": str(tmp_path / "instance"), "RECORDINGS_ROOT": str(tmp_path)})
    client = app.test_client()
    assert client.post("/login", data={"username": "rita", "password": "pw"}).status_code == 302
    page = client.get("/calls/abuse_threat")
    assert page.status_code == 200 and "对方声道转写中" in page.text
    deadline = time.monotonic() + 300
    while store.debtor_side("abuse_threat") != "transcribed":
        assert time.monotonic() < deadline, "the debtor side was not transcribed"
        time.sleep(0.5)
    debtor_lines = [t.text for t in store.call("abuse_threat").turns if t.speaker == "debtor"]
    page = client.get("/calls/abuse_threat")
    assert debtor_lines and "对方声道转写中" not in page.text and debtor_lines[0] in page.text
    assert store.counts() == {"done": 2} and store.findings("abuse_threat")

    # A document asked for from the CLI: both sides are in it.
    finding = store.findings("cash_personal_account")[0]
    store.review(finding.id, "confirmed", "rita")
    done = subprocess.run([*MONITOR, "evidence", "cash_personal_account", "--db", str(db), "-o", str(tmp_path / "e.zip")],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert store.debtor_side("cash_personal_account") == "transcribed"
    # The reviewer's decision follows the finding to its new turn index.
    same = [f for f in store.findings("cash_personal_account")
            if (f.finding.rule, f.finding.evidence, f.finding.start) == (finding.finding.rule, finding.finding.evidence, finding.finding.start)]
    assert [f.decision for f in same] == ["confirmed"]
    with zipfile.ZipFile(tmp_path / "e.zip") as package:
        transcript = package.read("transcript/transcript.txt").decode("utf-8")
    assert "债务人" in transcript and "催收员" in transcript
