"""Complaint letters, incident reports and evidence packages, end to end on a real
sample recording: a store built without Whisper (the transcript is the sample's ground
truth with its real timestamps), scanned by the real rules, one finding confirmed; the
reports rendered to HTML, PDF and DOCX and read back the way a person would (the PDF
rasterised and its text extracted with poppler, the DOCX reopened with python-docx and
converted by LibreOffice when it is installed).

The rendered files and page images are kept under test-output/reports/ for people to look at."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import wave
import zipfile
from datetime import datetime
from pathlib import Path

import pytest

from monitor.documents.evidence import EvidenceError, build_evidence_package, instance_public_key, verify_package
from monitor.models import Call, Turn
from monitor.documents.reports import (
    AUTOMATIC_MARK,
    BLANK,
    CORRECTED_MARK,
    ReportError,
    classify_lender,
    complaint_channels,
    complaint_context,
    incident_context,
    render,
    render_html,
)
from monitor.store import Store

from .conftest import REPO

SAMPLES = REPO / "sample_audio"
OUTPUT = REPO / "test-output" / "reports"
STARTED = "2026-11-27T22:40:05+08:00"  # a night call: off_hours fires as well
DEBTOR = "D-100234"
CONFIRMED_RULE = "threat-visit"
THREAT_QUOTE = "明天不还，我们就带人去你家门口堵你，再去你公司闹。"
COMPLAINANT = {"name": "张伟", "id_number": "110101199001011234", "phone": "13912345678"}
LENDER = {"name": "百川消费金融有限公司", "type": "consumer_finance", "contract_number": "BC2024000123"}
POPPLER = ("pdftoppm", "pdftotext", "pdffonts")


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as recording:
        return recording.getnframes() / recording.getframerate()


def store_sample(store: Store, engine, folder: Path, name: str, started_at: str, **extra) -> str:
    """Copy a sample recording, store its ground-truth transcript as the call's turns
    (no Whisper), scan it with the real rules and return the call id."""
    recording = Path(shutil.copy(SAMPLES / f"{name}.wav", folder / f"{name}.wav"))
    expected = json.loads((SAMPLES / f"{name}.expected.json").read_text(encoding="utf-8"))
    call = Call(
        id=name,
        turns=tuple(Turn(t["speaker"], t["text"], t["start"], t["end"], 0.9) for t in expected["turns"]),
        started_at=datetime.fromisoformat(started_at),
        collector_id="A017",
        debtor_id=DEBTOR,
        sha256=hashlib.sha256(recording.read_bytes()).hexdigest(),
        duration=wav_seconds(recording),
        source=str(recording),
    )
    call_id = store.save_transcript(call, extra=extra)
    store.save_findings(call_id, engine.scan(store.call(call_id), store.earlier_calls(store.call(call_id))), "test")
    return call_id


def store_other_call(store: Store, number: int, started_at: str) -> None:
    """A call to the same debtor with no recording on disk: only counted."""
    call = Call(id=f"other-{number}", turns=(), started_at=datetime.fromisoformat(started_at), debtor_id=DEBTOR,
                sha256=hashlib.sha256(f"other-{number}".encode()).hexdigest(), duration=30.0)
    store.save_transcript(call)


@pytest.fixture(scope="module", autouse=True)
def instance(tmp_path_factory):
    """A signing key of its own for this module's packages."""
    folder = tmp_path_factory.mktemp("instance")
    patch = pytest.MonkeyPatch()
    patch.setenv("MONITOR_INSTANCE", str(folder))
    patch.setenv("MONITOR_REDACT_PII", "1")
    yield folder
    patch.undo()


@pytest.fixture(scope="module")
def sample(tmp_path_factory, engine, instance):
    """A store holding abuse_threat (threat-visit confirmed), two more calls to the same
    debtor that day and one four days earlier, and third_party_contacts (nothing confirmed)."""
    folder = tmp_path_factory.mktemp("reports")
    store = Store(folder / "monitor.db")
    store_other_call(store, 1, "2026-11-23T10:00:00+08:00")
    store_other_call(store, 2, "2026-11-27T09:10:00+08:00")
    store_other_call(store, 3, "2026-11-27T15:30:00+08:00")
    call_id = store_sample(
        store, engine, folder, "abuse_threat", STARTED,
        caller_number="02188886666", callee_number="13912345678", agency="恒信催收服务有限公司", team="M2 组",
        account="6222021234567890",
    )
    third_party_id = store_sample(store, engine, folder, "third_party_contacts", "2026-11-28T10:15:00+08:00")
    confirmed = next(f for f in store.findings(call_id) if f.finding.rule == CONFIRMED_RULE)
    store.review(confirmed.id, "confirmed", "李审核", "威胁上门滋扰，录音属实")
    yield {"store": store, "call_id": call_id, "third_party_id": third_party_id, "confirmed": confirmed, "folder": folder}
    store.close()


@pytest.fixture(scope="module")
def contexts(sample):
    store, call_id = sample["store"], sample["call_id"]
    return {
        "complaint": complaint_context(store, call_id, COMPLAINANT, LENDER),
        "incident": incident_context(store, call_id, incident_id="INC-2026-0042", prepared_by="李审核"),
    }


def compact(text: str) -> str:
    """Text without any whitespace: PDF extraction breaks lines wherever a cell wraps."""
    return re.sub(r"\s+", "", text)


def poppler(tool: str, *args: str) -> str:
    assert shutil.which(tool), f"{tool} not found: install the Debian package poppler-utils"
    done = subprocess.run([tool, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def docx_text(path: Path) -> tuple[str, object]:
    import docx

    document = docx.Document(str(path))
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.extend(cell.text for cell in row.cells)
    return "\n".join(parts), document


# --- the complaint letter ---------------------------------------------------------------


def test_the_complaint_letter_follows_the_parts_of_regulations_md(contexts, sample):
    letter = contexts["complaint"]
    assert letter["subtitle"] == "关于百川消费金融有限公司及其委托催收机构违规催收的投诉"
    assert "自动分析" in letter["automatic_notice"] and "尚未经百川消费金融有限公司审核确认" in letter["automatic_notice"]
    assert letter["complainant"]["id_number"] == "110***********1234"
    assert letter["complainant"]["address"] == BLANK  # not given: a blank to fill in
    assert letter["respondent"]["account"] == "********0123"
    assert letter["respondent"]["calling_numbers"] == "02188886666"
    assert letter["respondent"]["collector"] == "A017"
    assert letter["addressee"]["to"] == "百川消费金融有限公司（消费者投诉处理部门）"
    # Every automatic finding (none reviewed by the lender), night call first.
    assert [f["category"] for f in letter["facts"]] == ["off_hours", "abuse", "abuse", "threat"]
    threat = letter["incidents"][-1]
    assert (threat["quote"]["text"], threat["at"]) == (THREAT_QUOTE, "00:14.4–00:18.5")
    assert threat["quote"]["mark"] == AUTOMATIC_MARK and threat["quote"]["original"] is None
    assert (threat["date"], threat["time"]) == ("2026-11-27", "22:40:19")  # the call's start + 14.4 s
    assert threat["calling_number"] == "02188886666" and threat["channel"] == "电话"
    assert any("第二百九十三条" in clause for clause in letter["facts"][-1]["clauses"])
    assert [v["facts"] for v in letter["violations"]] == ["第1项", "第2、3项", "第4项"]
    # Evidence: the original, one excerpt per timed incident, the transcript; all name the original's hash.
    sha = sample["store"].call_row(sample["call_id"])["sha256"]
    assert [e["range"] for e in letter["evidence"][1:4]] == [i["at"] for i in letter["incidents"][1:]]
    assert {e["sha256"] for e in letter["evidence"]} == {sha}
    assert letter["evidence"][0]["file"] == "abuse_threat.wav"


def test_remedies_are_chosen_by_what_was_found(contexts, sample):
    requests = contexts["complaint"]["requests"]
    assert requests[0].startswith("立即停止违规催收")
    # A consumer-finance company is not bound by the banks' 15/30/60-day rule: asked, not stated as law.
    assert requests[-1].startswith("书面答复投诉人：请于收到本投诉书之日起 15 日内") and "60 日" not in requests[-1]
    assert not any("第三人" in r for r in requests)  # no third_party finding in this call
    assert any("合理时间" in r for r in requests)  # the night call
    third_party = complaint_context(sample["store"], sample["third_party_id"], {}, {"name": "某银行", "type": "bank"})
    assert third_party["requests"][-1].startswith("在法定期限内书面答复") and "最长不超过 60 日" in third_party["requests"][-1]
    assert any("停止联系" in r and "删除" in r for r in third_party["requests"])
    assert not any("合理时间" in r for r in third_party["requests"])  # a day-time call
    assert [c["contact"] for c in third_party["channels"]][:2] == ["客服热线、官方应用或网站的投诉入口，或书面投诉", "12378"]
    assert "12377" in [c["contact"] for c in third_party["channels"]]  # personal data passed to third parties


@pytest.mark.parametrize(
    ("lender_type", "second_channel"),
    [
        ("bank", "12378"),
        ("credit_card", "12378"),
        ("consumer_finance", "12378"),
        ("micro_lender", "当地地方金融管理局官方网站或信访、投诉渠道"),
        ("小贷", "当地地方金融管理局官方网站或信访、投诉渠道"),
        ("online_platform", "中国互联网金融协会官方网站的投诉举报入口"),
        ("unknown", "12345"),
        (None, "12345"),
    ],
)
def test_where_to_file_depends_on_the_lender_type(lender_type, second_channel):
    channels = complaint_channels(classify_lender({"type": lender_type}), "某机构", {"abuse"}, {"abuse-profanity"}, {})
    assert channels[0]["name"] == "某机构的投诉渠道"  # the lender's own channel always first
    assert channels[1]["contact"] == second_channel
    assert "110，或向当地派出所报案" not in [c["contact"] for c in channels]  # insults alone: no police


def test_threats_impersonation_and_contact_list_bombing_go_to_the_police():
    def contacts(categories, rules):
        return [c["contact"] for c in complaint_channels("bank", None, categories, rules, {})]

    assert "110，或向当地派出所报案" in contacts({"threat"}, {"threat-visit"})
    assert "110，或向当地派出所报案" in contacts({"impersonation"}, {"impersonation-authority-claim"})
    assert "110，或向当地派出所报案" in contacts({"third_party"}, {"third-party-contact-list"})
    assert "110，或向当地派出所报案" not in contacts({"third_party"}, {"third-party-contact"})
    assert "96110" in contacts({"cash_to_collector"}, {"cash-personal-account"})


# --- the incident report ----------------------------------------------------------------


def test_the_incident_report_lists_only_confirmed_findings(contexts, sample):
    report = contexts["incident"]
    assert report["header"]["incident_id"] == "INC-2026-0042"
    assert report["header"]["severity"] == "high"  # threat-visit; the unconfirmed abuse findings do not count
    assert [f["rule"] for f in report["findings"]] == [CONFIRMED_RULE]
    finding = report["findings"][0]
    assert finding["quote"] == THREAT_QUOTE and finding["at"] == "00:14.4–00:18.5"
    assert (finding["reviewer"], finding["note"], finding["confidence"]) == ("李审核", "威胁上门滋扰，录音属实", 0.9)
    call = report["call"]
    assert call["started_local"].startswith("2026-11-27 22:40:05")
    assert (call["calls_that_day"], call["calls_last_7_days"]) == ("3 通（含本通）", "4 通（含本通）")
    assert call["account"] == "************7890" and call["agency"] == "恒信催收服务有限公司" and call["team"] == "M2 组"
    integrity = report["integrity"]
    assert integrity["sha256"] == sample["store"].call_row(sample["call_id"])["sha256"]
    assert integrity["file_check"].startswith("已复核")
    assert "李审核" in [e["actor"] for e in integrity["custody"]]
    actions = [e["action"] for e in integrity["custody"]]
    assert "审核：确认违规" in actions and not any(re.fullmatch(r"[a-z_.]+", a) for a in actions)  # labels, not codes
    # Two abuse findings nobody reviewed yet: not "未发现".
    dignity = next(row for row in report["impact"] if row["item"] == "人格尊严与名誉")
    assert dignity["assessment"] == "无已确认（2 项待审核）"
    assert report["summary"].startswith("2026-11-27 22:40（当地时间），催收员 A017 与 D-100234 通话")
    assert "另有 3 项自动发现待审核" in report["summary"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d（UTC\+08:00，Asia/Shanghai）", report["generated_at"])
    assert report["prepared_by"] == "李审核"
    assert "5 年" in integrity["retention"] and integrity["retain_until"] == "2031-11-27"
    assert any(row["assessment"].startswith("有威胁言论") for row in report["impact"])


def test_an_incident_report_needs_a_confirmed_finding(sample):
    store, call_id = sample["store"], sample["third_party_id"]
    with pytest.raises(ReportError, match="needs at least one finding confirmed by a reviewer"):
        incident_context(store, call_id)
    dismissed = store.findings(call_id)[0]
    store.review(dismissed.id, "dismissed", "李审核", "误报")
    with pytest.raises(ReportError, match=f"call '{call_id}' has no confirmed finding"):
        incident_context(store, call_id)
    with pytest.raises(ReportError, match="no call with id 'missing'"):
        incident_context(store, "missing")


# --- rendering -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["complaint", "incident"])
@pytest.mark.parametrize("fmt", ["html", "pdf", "docx"])
def test_each_report_renders_in_each_format(contexts, sample, kind, fmt):
    data = render(contexts[kind], kind, fmt)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"{kind}.{fmt}"
    path.write_bytes(data)
    sha = sample["store"].call_row(sample["call_id"])["sha256"]
    clause = "《刑法》第二百九十三条（寻衅滋事）、第二百七十四条（敲诈勒索），情节严重的"
    if kind == "incident":
        clause = "《商业银行信用卡业务监督管理办法》第六十八条：不得使用暴力、胁迫、恐吓、辱骂等不正当手段催收"
    if fmt == "html":
        html = data.decode("utf-8")
        assert html.startswith("<!DOCTYPE html>") and '<html lang="zh-CN">' in html
        text = html
    elif fmt == "pdf":
        assert data.startswith(b"%PDF-")
        poppler("pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(path), str(OUTPUT / f"{kind}-page"))
        pages = sorted(OUTPUT.glob(f"{kind}-page-*.png"))
        assert pages and pages[0].read_bytes().startswith(b"\x89PNG") and pages[0].stat().st_size > 10_000
        fonts = poppler("pdffonts", str(path))
        assert re.search(r"Noto-(Sans|Serif)-CJK-SC\S*\s.*\byes\s+yes\s+yes\b", fonts), fonts  # embedded, with Unicode map
        text = compact(poppler("pdftotext", "-enc", "UTF-8", str(path), "-"))
        assert sha in poppler("pdftotext", "-enc", "UTF-8", str(path), "-").split()  # a whole word on one line
    else:
        text, document = docx_text(path)
        from docx.oxml.ns import qn

        chinese_runs = [r for p in document.paragraphs for r in p.runs if re.search(r"[\u4e00-\u9fff]", r.text)]
        assert chinese_runs
        for run in chinese_runs:  # Word takes the font for Chinese from w:eastAsia only
            fonts = run._element.rPr.find(qn("w:rFonts"))
            assert fonts is not None and fonts.get(qn("w:eastAsia")), run.text
        title = document.paragraphs[0]
        assert title.text == contexts[kind]["title"] and title.style.name == "Normal"
        assert len(document.tables) >= 5
    for expected in (THREAT_QUOTE, clause, sha):
        assert (compact(expected) if fmt == "pdf" else expected) in text, expected
    if kind == "complaint":
        assert "尚未经百川消费金融有限公司审核确认" in text and "12378" in text


def test_the_html_can_be_embedded_in_another_page(contexts):
    fragment = render_html(contexts["incident"], "incident", standalone=False)
    assert "<html" not in fragment and "<body" not in fragment
    assert fragment.lstrip().startswith('<article class="report report-incident"')
    assert "<style>" in fragment and THREAT_QUOTE in fragment


def test_unknown_kinds_and_formats_are_refused(contexts):
    with pytest.raises(ReportError, match="unknown report format 'odt'"):
        render(contexts["incident"], "incident", "odt")
    with pytest.raises(ReportError, match="is for a 'complaint' report, not 'incident'"):
        render(contexts["complaint"], "incident", "html")


# --- evidence packages -----------------------------------------------------------------


def clip_checks(package: Path, findings: dict, duration: float) -> int:
    """Check each clip against its finding; return how many there are."""
    with zipfile.ZipFile(package) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        clips = [e for e in manifest["files"] if e["role"] == "clip"]
        for entry in clips:
            finding = findings[entry["finding_ids"][0]]
            offset = max(0.0, finding.start - 3.0)
            end = min(duration, finding.end + 3.0)
            assert abs(entry["offset"] - offset) <= 0.05, entry
            assert abs(entry["duration"] - (end - offset)) <= 0.05, entry
            with archive.open(entry["path"]) as member, wave.open(member, "rb") as clip:
                assert (clip.getframerate(), clip.getnchannels(), clip.getsampwidth()) == (16_000, 2, 2)  # stereo kept
                assert abs(clip.getnframes() / 16_000 - entry["duration"]) <= 0.05
    return len(clips)


@pytest.mark.slow
def test_the_incident_evidence_package_verifies(sample, tmp_path):
    store, call_id = sample["store"], sample["call_id"]
    package = build_evidence_package(store, call_id, tmp_path / "incident.zip", actor="李审核")
    assert verify_package(package, expected_key=instance_public_key()) == []
    OUTPUT.mkdir(parents=True, exist_ok=True)
    shutil.copy(package, OUTPUT / "incident-evidence.zip")
    with zipfile.ZipFile(package) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        names = set(archive.namelist())
        transcript = archive.read("transcript/transcript.txt").decode("utf-8")
    row = store.call_row(call_id)
    assert manifest["recording_sha256"] == row["sha256"]
    recording = next(e for e in manifest["files"] if e["role"] == "recording")
    assert recording == {"path": "recording/abuse_threat.wav", "role": "recording", "sha256": row["sha256"],
                         "size": Path(row["source"]).stat().st_size}
    assert {"report/incident.pdf", "report/incident.html", "transcript/transcript.json", "manifest.json"} <= names
    assert f"[00:14.4–00:18.5] 催收员：{THREAT_QUOTE}" in transcript
    assert "自动转写，可能有误" in transcript.splitlines()[1]
    findings = {f.id: f.finding for f in store.findings(call_id)}
    assert clip_checks(package, findings, row["duration"]) == 1  # the one confirmed finding
    assert store.audit_log(call_id)[-1]["action"] == "evidence.exported"


@pytest.mark.slow
def test_the_complaint_package_has_a_clip_per_timed_finding(sample, tmp_path):
    store, call_id = sample["store"], sample["call_id"]
    package = build_evidence_package(store, call_id, tmp_path / "complaint.zip", kind="complaint",
                                     complainant=COMPLAINANT, lender=LENDER)
    assert verify_package(package) == []
    findings = {f.id: f.finding for f in store.findings(call_id)}
    # Three timed findings; the night call has no place in the audio, so no clip.
    assert clip_checks(package, findings, store.call_row(call_id)["duration"]) == 3


def test_clips_are_cut_at_the_edges_of_the_recording(sample, tmp_path):
    """The first turn of third_party_contacts starts 0.5 s in: its clip cannot start 3 s earlier."""
    from monitor.documents.evidence import cut_clips

    store, call_id = sample["store"], sample["third_party_id"]
    row = store.call_row(call_id)
    incidents = complaint_context(store, call_id, {}, {})["incidents"]
    clips = cut_clips(Path(row["source"]), incidents, padding=30.0)
    assert clips and all(c.offset == 0.0 and abs(c.duration - row["duration"]) <= 0.05 for c in clips)


@pytest.mark.slow
def test_verification_finds_a_changed_file(sample, tmp_path):
    package = build_evidence_package(sample["store"], sample["call_id"], tmp_path / "p.zip")
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(tampered, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "transcript/transcript.txt":
                data = data.replace("催收员".encode(), "债务人".encode(), 1)
            target.writestr(item, data)
        target.writestr("extra.txt", "后来加入的文件")
    problems = verify_package(tampered)
    assert not any("signature" in p for p in problems)  # the manifest itself is untouched
    assert any(p.startswith("transcript/transcript.txt: SHA-256") for p in problems), problems
    assert "extra.txt: in the package but not in the manifest" in problems
    assert "not a readable zip file" in verify_package(tmp_path / "nothing.zip")[0]


def test_a_package_needs_the_original_recording(sample, tmp_path, engine):
    store = Store(tmp_path / "m.db")
    try:
        call_id = store_sample(store, engine, tmp_path, "abuse_threat", STARTED)
        store.review(next(f.id for f in store.findings(call_id) if f.finding.rule == CONFIRMED_RULE), "confirmed", "李审核")
        source = Path(store.call_row(call_id)["source"])
        source.write_bytes(source.read_bytes()[:-2] + b"\x00\x01")
        with pytest.raises(EvidenceError, match="has changed since it was analysed"):
            build_evidence_package(store, call_id, tmp_path / "p.zip")
        source.unlink()
        with pytest.raises(EvidenceError, match="is no longer there"):
            build_evidence_package(store, call_id, tmp_path / "p.zip")
        assert not (tmp_path / "p.zip").exists() and not (tmp_path / "p.zip.partial").exists()
    finally:
        store.close()



# --- one sentence, several rules; citations by date, lender and words; corrections; PII -----

ONE_SENTENCE = "我是城南区人民法院的，明天不还我们就带人去你家门口堵你，你这个废物。"
FAKE_LAWYER = ("我是律师事务所的律师，你身份证110101199003071234、卡号六二二二零二幺二三四五六七八九零、"
               "手机幺三八零零幺三八零零零我们都查到了，你把钱转到我个人微信。")
SPOKEN_NUMBERS = ("我身份证号110101199003071234，卡号6222 0212 3456 7890，手机13800138000；"
                  "再说一遍：幺幺零幺零幺幺九九零零三零七幺二三四，卡号六二二二零二幺二三四五六七八九零，手机幺三八零零幺三八零零零")
PII = ("110101199003071234", "6222021234567890", "6222 0212 3456 7890", "13800138000",
       "幺幺零幺零幺幺九九零零三零七幺二三四", "六二二二零二幺二三四五六七八九零", "幺三八零零幺三八零零零")
LENDER_FILE = {"name": "百川银行股份有限公司", "type": "credit_card", "card_number": "6222021234567890",
               "calling_numbers": ["95500"], "product": "信用卡分期", "borrowed_on": "2024-03-01", "amount": "20000",
               "overdue_since": "2025-09-10"}


def store_turns(store: Store, engine, folder: Path, call_id: str, started_at: str, turns: tuple, **extra) -> str:
    """A call with these turns, the abuse_threat recording as its audio (for clips)."""
    audio = bytearray((SAMPLES / "abuse_threat.wav").read_bytes())
    audio[-1] ^= 1 + len(call_id) % 7 + sum(call_id.encode()) % 100  # the last sample changed: a recording of its own
    recording = folder / f"{call_id}.wav"
    recording.write_bytes(bytes(audio))
    call = Call(id=call_id, turns=turns, started_at=datetime.fromisoformat(started_at), collector_id="A017",
                debtor_id="D-200001", sha256=hashlib.sha256(recording.read_bytes()).hexdigest(),
                duration=wav_seconds(recording), source=str(recording))
    stored = store.save_transcript(call, extra=extra)
    store.save_findings(stored, engine.scan(store.call(stored), store.earlier_calls(store.call(stored))), "test")
    return stored


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, engine, instance):
    folder = tmp_path_factory.mktemp("mixed")
    store = Store(folder / "monitor.db")
    turns = (Turn("collector", ONE_SENTENCE, 1.0, 6.0, 0.9), Turn("collector", FAKE_LAWYER, 6.5, 9.0, 0.9),
             Turn("debtor", SPOKEN_NUMBERS, 9.5, 20.0, 0.9))
    before = store_turns(store, engine, folder, "call-2025", "2025-12-15T10:00:00+08:00", turns)
    since = store_turns(store, engine, folder, "call-2026", "2026-01-05T10:00:00+08:00", turns)
    yield {"store": store, "before": before, "since": since, "folder": folder}
    store.close()


@pytest.mark.slow
def test_one_sentence_breaking_three_rules_is_one_row_with_one_clip(mixed, tmp_path):
    store = mixed["store"]
    letter = complaint_context(store, mixed["since"], COMPLAINANT, LENDER_FILE)
    first = letter["incidents"][0]
    assert {f["rule"] for f in first["facts"]} == {"impersonation-authority-claim", "threat-visit", "abuse-profanity"}
    assert len(letter["incidents"]) == 2 and len(letter["facts"]) == 7  # 3 + 4 findings, 2 sentences
    clips = [e for e in letter["evidence"] if e["type"].startswith("录音节选")]
    assert len(clips) == 2
    path = tmp_path / "letter.docx"
    path.write_bytes(render(letter, "complaint", "docx"))
    text, document = docx_text(path)
    timeline = next(t for t in document.tables if t.rows[0].cells[0].text == "序号" and t.rows[0].cells[1].text == "日期")
    assert len(timeline.rows) == 1 + 2 * 2  # a header, two rows per incident
    assert ONE_SENTENCE in text
    assert render(letter, "complaint", "html").decode("utf-8").count(ONE_SENTENCE) == 1
    package = build_evidence_package(store, mixed["since"], tmp_path / "p.zip", kind="complaint",
                                     complainant=COMPLAINANT, lender=LENDER_FILE)
    with zipfile.ZipFile(package) as archive:
        entries = [e for e in json.loads(archive.read("manifest.json"))["files"] if e["role"] == "clip"]
    assert len(entries) == 2 and len(entries[0]["finding_ids"]) == 3


def _clauses(letter: dict, rule: str) -> list[str]:
    return next(f["clauses"] for f in letter["facts"] if f["rule"] == rule)


def test_citations_follow_the_call_date_the_lender_and_the_words(mixed):
    store = mixed["store"]
    since = complaint_context(store, mixed["since"], {}, LENDER_FILE)
    before = complaint_context(store, mixed["before"], {}, LENDER_FILE)
    threat_since, threat_before = _clauses(since, "threat-visit"), _clauses(before, "threat-visit")
    assert any(c.startswith("《治安管理处罚法》第五十条") for c in threat_since), threat_since
    assert not any("第四十二条" in c for c in threat_since)
    assert any(c.startswith("《治安管理处罚法》（2012年修正）第四十二条第（一）项") for c in threat_before)
    assert not any("第五十条" in c for c in threat_before)
    insult_before = _clauses(before, "abuse-profanity")
    assert any("第四十二条第（五）项" in c for c in insult_before)
    assert any("第九百九十条第二款" in c for c in insult_before)
    # A credit-card issuer: 消保办法 leads, 信用卡办法 art. 68 is binding (no 参照).
    assert threat_since[0].startswith("《银行保险机构消费者权益保护管理办法》")
    card = next(c for c in threat_since if c.startswith("《商业银行信用卡业务监督管理办法》"))
    assert card.startswith("《商业银行信用卡业务监督管理办法》第六十八条：") and "参照" not in card
    # A micro-lender is bound by neither.
    micro = complaint_context(store, mixed["since"], {}, {"type": "micro_lender"})
    assert not any(c.startswith(("《银行保险机构", "《商业银行信用卡")) for c in _clauses(micro, "threat-visit"))
    # Police impersonation: 刑法 279; a fake lawyer: 律师法 55 and 刑法 266, not 279.
    by_turn = {f["turn"]: f["clauses"] for f in since["facts"] if f["rule"] == "impersonation-authority-claim"}
    court, lawyer = by_turn[0], by_turn[1]
    assert any(c.startswith("《刑法》第二百七十九条") for c in court) and not any(c.startswith("《律师法》") for c in court)
    assert any(c.startswith("《律师法》第五十五条") for c in lawyer) and any("第二百六十六条" in c for c in lawyer)
    assert not any(c.startswith("《刑法》第二百七十九条") for c in lawyer)


@pytest.mark.slow
def test_the_letter_is_complete_and_corrections_keep_the_original(mixed, tmp_path):
    store = mixed["store"]
    finding_id = next(f["id"] for f in complaint_context(store, mixed["since"], {}, LENDER_FILE)["facts"]
                      if f["rule"] == "threat-visit")
    corrected = "我是城南区人民法院的，明天不还我们就带人去你家门口等你，你这个废物。"
    letter = complaint_context(store, mixed["since"], COMPLAINANT, LENDER_FILE, {finding_id: corrected})
    quote = letter["incidents"][0]["quote"]
    assert (quote["text"], quote["mark"], quote["original"]) == (corrected, CORRECTED_MARK, ONE_SENTENCE)
    assert letter["incidents"][1]["quote"]["mark"] == AUTOMATIC_MARK
    assert letter["incidents"][0]["calling_number"] == "95500"  # from the lender file
    assert store.call(mixed["since"]).turns[0].text == ONE_SENTENCE  # the stored transcript is never changed
    path = tmp_path / "letter.pdf"
    path.write_bytes(render(letter, "complaint", "pdf"))
    text = compact(poppler("pdftotext", "-enc", "UTF-8", str(path), "-"))
    for expected in ("致：百川银行股份有限公司", "此致", "敬礼", "信用卡分期", "2024-03-01", "20000元", "2025-09-10",
                     "本投诉针对的是催收方式，而非债务本身", compact(corrected), compact(ONE_SENTENCE), "自动转写，可能有误",
                     "最长不超过60日"):
        assert expected in text, expected
    pages = poppler("pdfinfo", str(path)) if shutil.which("pdfinfo") else ""
    total = int(re.search(r"Pages:\s+(\d+)", pages).group(1))
    counted = {int(n) for n in re.findall(r"共(\d+)页", text)}
    assert counted == {total - 1}  # the guidance page is not counted
    assert "附页（递交时可删去）" in text
    blank = complaint_context(store, mixed["since"], {}, {"name": "某小贷"})
    assert "产品〔请填写〕" in "".join(blank["debt"].values()) or blank["debt"]["product"] == BLANK


@pytest.mark.slow
def test_no_spoken_id_card_or_mobile_number_leaves_in_a_document_or_export(mixed, tmp_path):
    from click.testing import CliRunner

    from monitor.cli import main

    store = mixed["store"]
    for finding in store.findings(mixed["since"]):
        store.review(finding.id, "confirmed", "李审核")
    outputs = []
    letter = complaint_context(store, mixed["since"], COMPLAINANT, LENDER_FILE)
    incident = incident_context(store, mixed["since"])
    for kind, context in (("complaint", letter), ("incident", incident)):
        for fmt in ("html", "pdf", "docx"):
            path = tmp_path / f"{kind}.{fmt}"
            path.write_bytes(render(context, kind, fmt))
            outputs.append(path.read_text(encoding="utf-8") if fmt == "html" else
                           compact(poppler("pdftotext", "-enc", "UTF-8", str(path), "-")) if fmt == "pdf" else docx_text(path)[0])
    package = build_evidence_package(store, mixed["since"], tmp_path / "p.zip")
    with zipfile.ZipFile(package) as archive:
        outputs += [archive.read(n).decode("utf-8") for n in archive.namelist() if n.endswith((".txt", ".json", ".html"))]
    runner = CliRunner()
    for fmt in ("csv", "jsonl"):
        result = runner.invoke(main, ["export", "--db", str(store.path), "--format", fmt])
        assert result.exit_code == 0, result.output
        outputs.append(result.stdout)
    assert any("〔身份证号已隐去〕" in o for o in outputs)
    for output in outputs:
        for number in PII:
            assert number not in output and compact(number) not in compact(output)
    kept = runner.invoke(main, ["export", "--db", str(store.path), "--format", "jsonl"], env={"MONITOR_REDACT_PII": "0"})
    assert "110101199003071234" in kept.stdout  # administrators can keep them


@pytest.mark.slow
def test_a_clip_recut_by_the_documented_method_has_the_same_hash(mixed, tmp_path):
    store = mixed["store"]
    package = build_evidence_package(store, mixed["since"], tmp_path / "p.zip", kind="complaint")
    with zipfile.ZipFile(package) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    entry = next(e for e in manifest["files"] if e["role"] == "clip")
    assert entry["method"] == "pcm-copy" and "byte for byte" in manifest["clip_methods"]["pcm-copy"]
    # Recut by hand: the frames of the original, in a WAV written by the wave module.
    import io

    with wave.open(store.call_row(mixed["since"])["source"], "rb") as original:
        original.setpos(entry["first_sample"])
        frames = original.readframes(entry["last_sample"] - entry["first_sample"])
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as out:
            out.setnchannels(original.getnchannels())
            out.setsampwidth(original.getsampwidth())
            out.setframerate(original.getframerate())
            out.writeframes(frames)
    assert hashlib.sha256(buffer.getvalue()).hexdigest() == entry["sha256"]


@pytest.mark.slow
def test_a_manifest_changed_by_one_byte_fails_its_signature(sample, tmp_path):
    package = build_evidence_package(sample["store"], sample["call_id"], tmp_path / "p.zip")
    with zipfile.ZipFile(package) as archive:
        signature = json.loads(archive.read("signature.json"))
    assert signature["public_key"] == instance_public_key() and signature["algorithm"] == "Ed25519"
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(tampered, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "manifest.json":
                data = data.replace(b'"kind": "incident"', b'"kind": "incidenT"')
            target.writestr(item, data)
    problems = verify_package(tampered)
    assert any("signature does not verify" in p for p in problems), problems
    assert any("not the expected" in p for p in verify_package(package, expected_key="00" * 32))
    unsigned = tmp_path / "unsigned.zip"
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(unsigned, "w") as target:
        for item in source.infolist():
            if item.filename != "signature.json":
                target.writestr(item, source.read(item.filename))
    assert "signature.json: missing: the manifest is not signed" in verify_package(unsigned)


@pytest.mark.slow
def test_the_evidence_command_fills_the_letter_and_prints_the_key(mixed, tmp_path):
    from click.testing import CliRunner

    from monitor.cli import main

    lender = tmp_path / "lender.json"
    lender.write_text(json.dumps(LENDER_FILE, ensure_ascii=False), encoding="utf-8")
    complainant = tmp_path / "me.json"
    complainant.write_text(json.dumps(COMPLAINANT, ensure_ascii=False), encoding="utf-8")
    runner = CliRunner()
    out = tmp_path / "e.zip"
    result = runner.invoke(main, ["evidence", mixed["since"], "--db", str(mixed["store"].path), "--kind", "complaint",
                                  "--complainant", str(complainant), "--lender", str(lender), "-o", str(out)])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as archive:
        html = archive.read("report/complaint.html").decode("utf-8")
    assert "百川银行股份有限公司" in html and "张伟" in html
    key = runner.invoke(main, ["evidence-key"])
    assert key.stdout.strip() == instance_public_key()
    checked = runner.invoke(main, ["evidence-verify", str(out), "--key", key.stdout.strip()])
    assert checked.exit_code == 0, checked.output


def test_the_report_command_takes_corrections_and_a_preparer(mixed, tmp_path):
    from click.testing import CliRunner

    from monitor.cli import main

    store = mixed["store"]
    finding = next(f for f in store.findings(mixed["before"]) if f.finding.rule == "threat-visit")
    corrections = tmp_path / "quotes.json"
    corrections.write_text(json.dumps({finding.id: "更正后的原话"}, ensure_ascii=False), encoding="utf-8")
    runner = CliRunner()
    out = tmp_path / "letter.html"
    result = runner.invoke(main, ["report", mixed["before"], "--db", str(store.path), "--kind", "complaint",
                                  "--format", "html", "--corrections", str(corrections), "-o", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "更正后的原话" in html and CORRECTED_MARK in html
    store.review(finding.id, "confirmed", "李审核")
    result = runner.invoke(main, ["report", mixed["before"], "--db", str(store.path), "--format", "html",
                                  "--prepared-by", "合规部 王敏", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "合规部 王敏" in out.read_text(encoding="utf-8")
    wrong = tmp_path / "list.json"
    wrong.write_text("[1, 2]", encoding="utf-8")
    refused = runner.invoke(main, ["report", mixed["before"], "--db", str(store.path), "--kind", "complaint",
                                   "--lender", str(wrong), "-o", str(out)])
    assert refused.exit_code != 0 and "list.json: must hold a JSON object" in refused.output
