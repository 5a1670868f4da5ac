"""Complaint letters (投诉书) for debtors and compliance incident reports for lenders.

Two steps, kept apart so the web app, the CLI and the evidence package share them:

1. ``complaint_context`` / ``incident_context`` read one call from the store and build a
   plain dict in the order of the parts listed in shared/domain/regulations.md. All the
   judgement (which remedies to ask for, where to file, what the impact is) lives here.
2. ``render(context, kind, fmt)`` turns a context into HTML, PDF or DOCX. The wording and
   layout live in Jinja2 templates under templates/reports/; the PDF is that HTML printed
   by WeasyPrint, and the DOCX is built from the same HTML, so the three never disagree.

The two reports read different findings on purpose. A debtor's complaint is built from
the *automatic* findings of the recording they submitted (nobody at the lender has
reviewed them, and the letter says so). A lender's incident report lists only findings
a reviewer *confirmed*; a call without one gets no incident report.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
import yaml
from markupsafe import Markup, escape

from monitor import settings
from monitor.labels import CATEGORY_LABELS, SEVERITY_LABELS
from monitor.times import clock
from monitor import audit
from monitor.audit import Action
from monitor.errors import MonitorError
from monitor.hashing import file_sha256
from monitor.models import Call, Finding
from monitor.store import SEVERITY_RANK, Store, StoredFinding

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates" / "reports"
KINDS = ("complaint", "incident")
FORMATS = ("html", "pdf", "docx")

# A blank the debtor fills in by hand, and one the compliance team completes.
BLANK = "〔请填写〕"
TO_COMPLETE = "〔待填写〕"
# 《互联网金融逾期债务催收自律公约》 asks for 5 years (信用卡办法: at least 2).
RETENTION_YEARS = 5
DEFAULT_INCIDENT_STATUS = "待调查（open）"

# The effect column of the complaint's timeline: what the conduct did to the debtor.
CATEGORY_EFFECTS = {
    "abuse": "人格尊严受到侮辱，精神受到伤害",
    "threat": "感到恐惧，担心本人及家人的人身、财产安全",
    "third_party": "亲友、同事或单位被告知或可能被告知债务，隐私和名誉受损",
    "cash_to_collector": "被要求向个人或非指定账户付款，存在资金被截留、诈骗的风险",
    "impersonation": "误以为司法或行政机关已介入，受到恐吓",
    "off_hours": "休息时间受到打扰",
    "call_frequency": "一日内被反复拨打，正常生活和工作受到干扰",
}
DIRECTION_LABELS = {"outbound": "呼出（催收方拨打）", "inbound": "呼入（债务人来电）"}

# Lender types a debtor can name, with the words they are likely to type.
LENDER_TYPES = {
    "bank": "商业银行",
    "credit_card": "银行信用卡",
    "consumer_finance": "消费金融公司",
    "micro_lender": "小额贷款公司",
    "online_platform": "网络借贷平台",
    "unknown": "类型不明",
}
_LENDER_TYPE_WORDS = {
    "银行": "bank", "商业银行": "bank", "信用卡": "credit_card", "银行信用卡": "credit_card",
    "消费金融": "consumer_finance", "消费金融公司": "consumer_finance", "消金": "consumer_finance",
    "小贷": "micro_lender", "小额贷款": "micro_lender", "小额贷款公司": "micro_lender", "网络小贷": "micro_lender",
    "网贷": "online_platform", "网络借贷": "online_platform", "网络借贷平台": "online_platform",
    "互联网平台": "online_platform", "平台": "online_platform",
}
_REGULATED_BY_NFRA = ("bank", "credit_card", "consumer_finance")

# Rules whose conduct is a police matter (regulations.md, complaint channel 5).
_POLICE_CATEGORIES = ("threat", "impersonation")
_POLICE_RULES = ("third-party-contact-list",)  # 爆通讯录: contact-list bombing
_FRAUD_CATEGORIES = ("cash_to_collector", "impersonation")
_CONDUCT_CATEGORIES = ("abuse", "threat", "third_party", "cash_to_collector", "impersonation")


class ReportError(MonitorError):
    """A report cannot be made from what the store holds, or cannot be rendered."""


# --- small formatting helpers ------------------------------------------------------------


def time_range(start: float | None, end: float | None) -> str:
    return "全程" if start is None else f"{clock(start)}–{clock(end)}"


def mask(value: str | None, keep_start: int = 0, keep_end: int = 4) -> str | None:
    """``6222021234567890`` → ``************7890``. Values already masked (holding a
    ``*``) or too short to hide anything are returned as given."""
    if not value:
        return None
    value = str(value).strip()
    if "*" in value or len(value) <= keep_start + keep_end:
        return value
    hidden = len(value) - keep_start - keep_end
    return value[:keep_start] + "*" * hidden + (value[-keep_end:] if keep_end else "")


def mask_id_number(value: str | None) -> str | None:
    """A resident ID keeps its first 3 and last 4 characters: the birth date is hidden."""
    return mask(value, keep_start=3, keep_end=4)


def _local_zone() -> ZoneInfo:
    return ZoneInfo(settings.get("timezone"))


def _local(moment: datetime | None) -> datetime | None:
    """A stored start time in the debtor's local time (the monitor's time-zone setting)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=_local_zone())
    return moment.astimezone(_local_zone())


def _utc_offset(moment: datetime) -> str:
    offset = moment.utcoffset() or timedelta(0)
    sign = "+" if offset >= timedelta(0) else "-"
    minutes = int(abs(offset).total_seconds() // 60)
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "未知"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} 分 {secs} 秒（{seconds:.1f} 秒）" if minutes else f"{seconds:.1f} 秒"


def _years_later(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February, in a year that has none
        return moment.replace(year=moment.year + years, month=3, day=1)


def _utc_text(stamp: str | None) -> str | None:
    """A stored UTC timestamp (ISO) for people: ``2026-11-28 08:23:11 UTC``."""
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return stamp


def mark_blanks(value) -> Markup:
    """Escape ``value`` and wrap its 〔…〕 blanks in ``<span class="blank">`` so they
    stand out until someone fills them in."""
    escaped = str(escape("" if value is None else value))
    return Markup(re.sub(r"〔[^〔〕]*〕", lambda m: f'<span class="blank">{m.group(0)}</span>', escaped))


def _now_local() -> datetime:
    return datetime.now(timezone.utc).astimezone(_local_zone())


def _or_blank(value, blank: str = BLANK) -> str:
    return blank if value in (None, "") else str(value)


def _item_numbers(numbers: list[int]) -> str:
    return "第" + "、".join(str(n) for n in numbers) + "项"


def clip_file_name(number: int, finding: Finding) -> str:
    """Where the evidence package stores the audio clip of the ``number``-th finding; the
    complaint's evidence list names the same file."""
    return f"clips/{number:02d}-{finding.rule}-{finding.start or 0:.2f}s.wav"


@lru_cache(maxsize=4)
def rule_titles(directory: str | None = None) -> dict[str, str]:
    """Rule id → title (e.g. 威胁：以暴力或人身伤害相威胁), read straight from the rule
    files: reports need the words, not a compiled rule pack."""
    from monitor.detection.rules import DEFAULT_RULES_DIR, rule_files

    folder = Path(directory or settings.get("rules_dir") or DEFAULT_RULES_DIR)
    titles = {}
    for path in rule_files(folder) if folder.is_dir() else []:
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue  # a broken rule file is `monitor rules check`'s business, not ours
        if isinstance(document, dict) and document.get("id") and document.get("title"):
            titles[str(document["id"])] = str(document["title"])
    return titles


# --- what both reports read from the store ----------------------------------------------


@dataclass(frozen=True)
class _CallRecord:
    call: Call
    row: dict
    metadata: dict  # the JSON sidecar / manifest fields kept as given (numbers, agency …)

    def meta(self, *keys: str) -> str | None:
        for key in keys:
            value = self.row.get(key) if key in self.row else self.metadata.get(key)
            if value not in (None, ""):
                return str(value)
        return None


def _load_call(store: Store, call_id: str) -> _CallRecord:
    row = store.call_row(call_id)
    if row is None:
        raise ReportError(f"no call with id {call_id!r} in {store.path}")
    if row["status"] != "done":
        state = f"failed ({row['error']})" if row["status"] == "failed" else "not scanned by the rules yet"
        raise ReportError(f"call {call_id!r} is {state}: there are no findings to report")
    try:
        metadata = json.loads(row["metadata"]) if row["metadata"] else {}
    except json.JSONDecodeError:
        metadata = {}
    return _CallRecord(store.call(call_id), row, metadata if isinstance(metadata, dict) else {})


def _sorted_findings(findings: list[StoredFinding]) -> list[StoredFinding]:
    # Call-level findings (night call, frequency) first: they describe the whole call.
    return sorted(findings, key=lambda s: (s.finding.start is not None, s.finding.start or 0.0, s.finding.rule))


def _turn_confidence(call: Call, finding: Finding) -> float | None:
    if finding.turn is None or not 0 <= finding.turn < len(call.turns):
        return None
    return call.turns[finding.turn].confidence


def _said_at(record: _CallRecord, finding: Finding) -> datetime | None:
    started = _local(record.call.started_at)
    if started is None:
        return None
    return started + timedelta(seconds=finding.start or 0.0)


def _recording_name(record: _CallRecord) -> str:
    return Path(record.row["source"]).name if record.row.get("source") else f"{record.call.id}（原始文件名未知）"


def _finding_facts(record: _CallRecord, stored: StoredFinding, number: int, titles: dict[str, str]) -> dict:
    """What both reports say about one finding."""
    finding = stored.finding
    said = _said_at(record, finding)
    return {
        "no": number,
        "id": stored.id,
        "rule": finding.rule,
        "title": titles.get(finding.rule, finding.rule),
        "category": finding.category,
        "category_label": CATEGORY_LABELS.get(finding.category, finding.category),
        "severity": finding.severity,
        "severity_label": SEVERITY_LABELS.get(finding.severity, finding.severity),
        "quote": finding.evidence,
        "matched": finding.matched,
        "is_call_level": finding.start is None,
        "start": finding.start,
        "end": finding.end,
        "at": time_range(finding.start, finding.end),
        "date": said.strftime("%Y-%m-%d") if said else BLANK,
        "time": said.strftime("%H:%M:%S") if said else BLANK,
        "speaker_verified": finding.speaker_verified,
        "confidence": _turn_confidence(record.call, finding),
        "clauses": list(finding.legal_basis),
        "clip": clip_file_name(number, finding) if finding.start is not None else None,
    }


# --- the debtor's complaint letter -------------------------------------------------------


def classify_lender(lender: dict) -> str:
    """The lender type key (bank, credit_card, …, unknown) from what the debtor typed:
    a key of LENDER_TYPES or a Chinese word such as 银行, 小贷, 网贷."""
    given = str(lender.get("type") or "").strip()
    if given in LENDER_TYPES:
        return given
    return _LENDER_TYPE_WORDS.get(given, "unknown")


def complaint_requests(categories: set[str], lender_type: str, complainant: dict) -> list[str]:
    """The numbered remedies (regulations.md, 投诉请求), chosen by what was found."""
    requests = ["立即停止违规催收行为，今后严格依法依规催收。"]
    if "third_party" in categories:
        requests.append("立即停止联系、骚扰与债务无关的第三人（亲友、同事、单位等），并删除违规收集、使用的第三人个人信息。")
    if "impersonation" in categories:
        requests.append("立即停止冒用公安机关、法院等国家机关或律师名义催收。")
    if categories & {"off_hours", "call_frequency"}:
        requests.append("将催收联系限定在合理时间（08:00–22:00）和合理频次之内。")
    if categories & set(_CONDUCT_CATEGORIES):
        requests.append("更换违规的催收人员；如委托外部催收机构，更换或终止委托该机构。")
    requests.append("就上述违规行为向投诉人作出书面说明并赔礼道歉。")
    if "cash_to_collector" in categories:
        requests.append("核查催收人员要求向个人或非指定账户付款的情况；已付款项应如实计入还款，核减、退还以催收名义收取的不当费用。")
    if complainant.get("hardship_plan"):
        basis = "（参照《商业银行信用卡业务监督管理办法》有关规定）" if lender_type in ("credit_card", "bank") else ""
        requests.append(f"结合投诉人的实际困难，协商个性化分期或延期还款方案{basis}。")
    if categories & set(_CONDUCT_CATEGORIES):
        requests.append("依规追究相关责任人员的责任，并将处理结果告知投诉人。")
    requests.append("在法定期限内书面答复投诉人（一般应在 15 日内，情况复杂的可延长至 30 日，最长不超过 60 日）。")
    return requests


def complaint_channels(lender_type: str, lender_name: str | None, categories: set[str], rules: set[str],
                       complainant: dict) -> list[dict]:
    """Where to file, in the order regulations.md gives (lender first, then the
    regulator for that lender type; police, fraud, data and court channels by what was found)."""
    who = lender_name or "被投诉机构"
    channels = [{
        "name": f"{who}的投诉渠道",
        "contact": "客服热线、官方应用或网站的投诉入口，或书面投诉",
        "why": "应先向放贷机构投诉；机构应在 15 日内答复，情况复杂的可延长至 30 日，最长不超过 60 日。",
    }]
    if lender_type in _REGULATED_BY_NFRA:
        channels.append({
            "name": "国家金融监督管理总局 银行保险消费者投诉维权热线",
            "contact": "12378",
            "why": f"被投诉机构为{LENDER_TYPES[lender_type]}，属银行业保险业监管范围；机构未处理或处理不满意时投诉。",
        })
    elif lender_type == "micro_lender":
        channels.append({
            "name": "机构注册地的地方金融管理局",
            "contact": "当地地方金融管理局官方网站或信访、投诉渠道",
            "why": "小额贷款公司由地方金融管理部门监管。",
        })
    elif lender_type == "online_platform":
        channels.append({
            "name": "中国互联网金融协会 投诉举报平台",
            "contact": "中国互联网金融协会官方网站的投诉举报入口",
            "why": "网络借贷平台（协会会员）适用《互联网金融逾期债务催收自律公约（试行）》。",
        })
    else:
        channels.append({
            "name": "当地政府服务热线",
            "contact": "12345",
            "why": "放贷机构类型不明时，由 12345 转交主管部门。",
        })
    police = _police_matters(categories, rules)
    if police:
        channels.append({
            "name": "公安机关",
            "contact": "110，或向当地派出所报案",
            "why": f"通话中有{'、'.join(police)}等情形，可能涉嫌违法犯罪。",
        })
    if categories & set(_FRAUD_CATEGORIES):
        channels.append({
            "name": "反诈骗咨询热线",
            "contact": "96110",
            "why": "被要求向个人账户付款或对方冒充国家机关，疑似诈骗。",
        })
    if "third_party" in categories:
        channels.append({
            "name": "个人信息违法违规举报",
            "contact": "12377",
            "why": "对方向第三人披露或滥用投诉人及其亲友的个人信息。",
        })
    if complainant.get("credit_report_dispute"):
        channels.append({
            "name": "中国人民银行征信投诉",
            "contact": "12363",
            "why": "对征信记录有异议。",
        })
    if categories & {"third_party", "abuse", "threat"}:
        channels.append({
            "name": "人民法院",
            "contact": "向有管辖权的人民法院提起诉讼",
            "why": "就隐私权、名誉权、个人信息权益受到侵害主张权利"
                   + ("；个人信息处理者应证明自己没有过错（《个人信息保护法》第六十九条）" if "third_party" in categories else "")
                   + "。",
        })
    return channels


def _police_matters(categories: set[str], rules: set[str]) -> list[str]:
    """What in the findings is a matter for the police (regulations.md, channel 5)."""
    matters = [CATEGORY_LABELS[c] for c in _POLICE_CATEGORIES if c in categories]
    if rules & set(_POLICE_RULES):
        matters.append("爆通讯录")
    return matters


def complaint_context(store: Store, call_id: str, complainant: dict | None, lender: dict | None) -> dict:
    """The debtor's 投诉书 for one recording they submitted, parts in the order of
    regulations.md. ``complainant`` (name, id_number, phone, address, agent, relation,
    hardship_plan, credit_report_dispute) and ``lender`` (name, type, contract_number,
    card_number, agency, collector_name, calling_numbers) are what the debtor typed;
    anything missing becomes a 〔请填写〕 blank. Uses every active automatic finding
    (none of them reviewed) and raises ReportError when there is none."""
    complainant = dict(complainant or {})
    lender = dict(lender or {})
    record = _load_call(store, call_id)
    findings = _sorted_findings(store.findings(call_id))
    if not findings:
        raise ReportError(
            f"call {call_id!r}: the automatic analysis found no violation in this recording, "
            "so there is nothing to base a complaint letter on"
        )
    titles = rule_titles()
    facts = [_finding_facts(record, stored, n, titles) for n, stored in enumerate(findings, start=1)]
    categories = {f["category"] for f in facts}
    rules = {f["rule"] for f in facts}
    lender_type = classify_lender(lender)
    lender_name = lender.get("name") or None

    calling_numbers = [str(n) for n in lender.get("calling_numbers") or [] if n]
    caller = record.meta("caller_number") if record.call.direction == "outbound" else None
    if caller and caller not in calling_numbers:
        calling_numbers.insert(0, caller)
    relation = complainant.get("relation")
    contacted = f"投诉人（{relation}）" if relation else "投诉人本人（债务人）"
    for fact in facts:
        fact.update(
            channel="电话",
            calling_number=caller or BLANK,
            contacted=record.meta("other_party") or contacted,
            effect=CATEGORY_EFFECTS.get(fact["category"], ""),
        )

    started = _local(record.call.started_at)
    recording = _recording_name(record)
    call_date = started.strftime("%Y-%m-%d") if started else BLANK
    evidence = [{
        "no": 1, "type": "通话录音（原始文件）", "date": call_date, "file": recording,
        "sha256": record.call.sha256, "range": f"全程 {clock(0)}–{clock(record.call.duration)}",
    }]
    for fact in facts:
        if fact["clip"]:
            evidence.append({
                "no": len(evidence) + 1, "type": f"录音节选（事实第 {fact['no']} 项；节选文件 {fact['clip']}）",
                "date": call_date, "file": recording, "sha256": record.call.sha256, "range": fact["at"],
            })
    evidence.append({
        "no": len(evidence) + 1, "type": "通话文字记录（自动转写，据第 1 项录音生成）", "date": call_date,
        "file": "transcript.txt", "sha256": record.call.sha256, "range": f"全程 {clock(0)}–{clock(record.call.duration)}",
    })

    violations = []
    for rule in dict.fromkeys(f["rule"] for f in facts):  # first-seen order
        group = [f for f in facts if f["rule"] == rule]
        violations.append({
            "facts": _item_numbers([f["no"] for f in group]), "title": group[0]["title"],
            "category_label": group[0]["category_label"], "clauses": group[0]["clauses"],
        })

    lender_label = lender_name or "〔被投诉机构名称〕"
    return {
        "kind": "complaint",
        "title": "投诉书",
        "subtitle": f"关于{lender_label}及其委托催收机构违规催收的投诉",
        "blank": BLANK,
        "generated_at": _now_local().strftime("%Y-%m-%d %H:%M"),
        "automatic_notice": (
            "本投诉书“事实与理由”“违规条款”所列情形，由投诉人提交的通话录音经自动分析（语音转写与规则比对）得出，"
            f"尚未经{lender_name or '被投诉机构'}审核确认；录音原件及其 SHA-256 校验值列于证据清单，可供核验。"
        ),
        "complainant": {
            "name": _or_blank(complainant.get("name")),
            "id_number": _or_blank(mask_id_number(complainant.get("id_number"))),
            "phone": _or_blank(complainant.get("phone")),
            "address": _or_blank(complainant.get("address")),
            "relation": relation,
            "agent": complainant.get("agent"),
            "agent_authorization": complainant.get("agent_authorization")
            or ("授权委托书（见附件）" if complainant.get("agent") else None),
        },
        "respondent": {
            "name": lender_name or BLANK,
            "type_label": LENDER_TYPES[lender_type],
            "account": _or_blank(mask(lender.get("contract_number") or lender.get("card_number") or record.meta("account"))),
            "account_label": "信用卡卡号" if lender.get("card_number") and not lender.get("contract_number") else "合同号或卡号",
            "agency": _or_blank(lender.get("agency") or record.meta("agency")),
            "collector": _or_blank(lender.get("collector_name") or record.meta("collector_name", "collector_id")),
            "calling_numbers": "、".join(calling_numbers) if calling_numbers else BLANK,
        },
        "requests": complaint_requests(categories, lender_type, complainant),
        "facts": facts,
        "violations": violations,
        "evidence": evidence,
        "statement": "投诉人承诺：以上所述内容及所附证据均真实、完整，如有不实，愿承担相应的法律责任。",
        "attachments": [
            f"通话录音原始文件（{recording}）",
            "录音节选及通话文字记录（见证据包 manifest.json，含各文件 SHA-256）",
            "投诉人身份证件复印件" + BLANK.replace("请填写", "请附上"),
            "借款合同、账单或还款记录" + BLANK.replace("请填写", "请附上"),
            *(["授权委托书及代理人身份证件复印件"] if complainant.get("agent") else []),
        ],
        "channels": complaint_channels(lender_type, lender_name, categories, rules, complainant),
        "call": {"id": record.call.id, "sha256": record.call.sha256, "recording": recording},
    }


# --- the lender's incident report ---------------------------------------------------------


def _confirmed(store: Store, call_id: str) -> list[tuple[StoredFinding, dict]]:
    """Confirmed findings (latest decision) with that decision's review row. Inactive
    findings count too: a reviewer's confirmation stands even if a later rule change
    stopped raising the finding."""
    confirmed = []
    for stored in _sorted_findings(store.findings(call_id, active_only=False)):
        if stored.decision != "confirmed":
            continue
        review = store.latest_review(stored.id)
        confirmed.append((stored, review))
    return confirmed


def _detected_at(store: Store, finding_ids: list[str]) -> str | None:
    return store.first_detected(finding_ids)


def _calls_to_debtor(store: Store, call: Call) -> tuple[int | None, int | None]:
    """Stored calls to the same debtor on the call's local day, and over the 7 local days
    ending that day (this call included; failed recordings not counted)."""
    started = _local(call.started_at)
    if not (call.debtor_id and started):
        return None, None
    day_start = started.replace(hour=0, minute=0, second=0, microsecond=0)
    day_end = day_start + timedelta(days=1)

    def count(since: datetime) -> int:
        return store.count_calls_to_debtor(call.debtor_id, since, day_end)

    return count(day_start), count(day_start - timedelta(days=6))


def _custody(store: Store, record: _CallRecord) -> list[dict]:
    """Who touched the recording and its findings, from the append-only audit log,
    starting with when the monitor stored it."""
    events = [{"at": _utc_text(record.row["created_at"]), "actor": f"monitor（{record.row['origin'] or '未知来源'}）",
               "action": Action.CALL_STORED.label, "subject": record.call.id, "note": ""}]
    call_id = record.call.id
    for entry in store.audit_log(call_id):
        subject = entry["subject"]
        if subject != call_id and not subject.startswith(call_id + ":"):
            continue  # a longer id that merely starts with this one
        try:
            detail = json.loads(entry["detail"] or "{}")
        except json.JSONDecodeError:
            detail = {"detail": entry["detail"]}
        note = detail.get("note") or "；".join(f"{k}: {v}" for k, v in detail.items() if k != "note" and v)
        events.append({"at": _utc_text(entry["at"]), "actor": entry["actor"],
                       "action": audit.label(entry["action"]), "subject": subject, "note": note})
    return events


def _file_check(record: _CallRecord) -> str:
    source = record.row.get("source")
    if not source or not os.path.isfile(source):
        return f"原始文件不在原存放位置（{source or '未记录路径'}），无法当场复核哈希"
    if file_sha256(source) == record.call.sha256:
        return "已复核：原始文件的 SHA-256 与入库时一致"
    return "不一致：原始文件在入库后被修改或替换，需立即调查"


# The impact rows of an incident report: the question, the category whose confirmed
# findings answer it (None: only a person can), and what such a finding means.
_IMPACT_QUESTIONS = (
    ("是否联系或披露给第三人", "third_party", "是{where}：需核实被联系人身份、人数及披露内容"),
    ("是否涉及弱势群体（老人、病患、未成年人、孕妇等）", None, "需人工核实"),
    ("是否有款项被截留、挪用", "cash_to_collector", "可能{where}：核查债务人是否已向非指定账户付款及金额"),
    ("人身安全与恐吓", "threat", "有威胁言论{where}：评估债务人及家人的安全风险"),
    ("冒充国家机关或律师", "impersonation", "是{where}：可能涉嫌《刑法》第二百七十九条"),
    ("人格尊严与名誉", "abuse", "有辱骂言论{where}"),
)


def _impact(facts: list[dict]) -> list[dict]:
    rows = []
    for question, category, meaning in _IMPACT_QUESTIONS:
        numbers = [f["no"] for f in facts if f["category"] == category]
        if category is None:
            assessment = meaning
        elif numbers:
            assessment = meaning.format(where=f"（见发现{_item_numbers(numbers)}）")
        else:
            assessment = "未发现"
        rows.append({"item": question, "assessment": assessment, "to_complete": TO_COMPLETE})
    return rows


def _notifications(categories: set[str], rules: set[str]) -> list[dict]:
    police = _police_matters(categories, rules) + (["款项可能被截留"] if "cash_to_collector" in categories else [])
    return [
        {"body": "公安机关（110 / 当地派出所）",
         "suggestion": f"建议评估：已确认{'、'.join(police)}" if police else "一般无需（已确认发现不涉及刑事情形）",
         "decision": TO_COMPLETE, "date": TO_COMPLETE},
        {"body": "监管机构（国家金融监督管理总局派出机构 / 地方金融管理局）",
         "suggestion": "按机构类型和内部报告制度评估", "decision": TO_COMPLETE, "date": TO_COMPLETE},
        {"body": "行业协会（中国银行业协会 / 中国互联网金融协会）",
         "suggestion": "会员机构按自律规则评估", "decision": TO_COMPLETE, "date": TO_COMPLETE},
        {"body": "委托催收机构", "suggestion": "如为外包催收，书面通知并要求整改", "decision": TO_COMPLETE, "date": TO_COMPLETE},
    ]


def incident_context(store: Store, call_id: str, incident_id: str | None = None) -> dict:
    """The lender's compliance incident report for one call, parts in the order of
    regulations.md. Lists only findings a reviewer confirmed; raises ReportError when
    there is none (an incident report needs at least one)."""
    record = _load_call(store, call_id)
    confirmed = _confirmed(store, call_id)
    if not confirmed:
        raise ReportError(
            f"call {call_id!r} has no confirmed finding: an incident report needs at least one finding "
            "confirmed by a reviewer (review the findings first)"
        )
    titles = rule_titles()
    facts = []
    for number, (stored, review) in enumerate(confirmed, start=1):
        fact = _finding_facts(record, stored, number, titles)
        fact.update(reviewer=review["reviewer"], decided_at=_utc_text(review["decided_at"]), note=review["note"] or "",
                    decision="确认违规")
        facts.append(fact)
    categories = {f["category"] for f in facts}
    rules = {f["rule"] for f in facts}
    severity = max((f["severity"] for f in facts), key=lambda s: SEVERITY_RANK.get(s, -1))
    started = _local(record.call.started_at)
    today, week = _calls_to_debtor(store, record.call)
    unknown_count = "未知（缺少债务人编号或开始时间）"
    origin = record.row.get("origin") or "batch"
    retained_from = started or datetime.fromisoformat(record.row["created_at"])

    return {
        "kind": "incident",
        "title": "合规事件报告",
        "subtitle": f"催收通话 {record.call.id}",
        "blank": TO_COMPLETE,
        "generated_at": _now_local().strftime("%Y-%m-%d %H:%M"),
        "header": {
            "incident_id": incident_id or f"INC-{record.call.id}",
            "status": DEFAULT_INCIDENT_STATUS,
            "severity": severity,
            "severity_label": SEVERITY_LABELS.get(severity, severity),
            "detected_at": _utc_text(_detected_at(store, [f["id"] for f in facts])) or TO_COMPLETE,
            "detected_by": record.meta("detected_by") or f"自动监测（{origin}），人工复核确认",
            "rules_version": record.row.get("rules_version") or "未知",
        },
        "call": {
            "id": record.call.id,
            "started_local": f"{started:%Y-%m-%d %H:%M:%S}（{_utc_offset(started)}，{_local_zone().key}）" if started else "未知",
            "duration": _duration_text(record.call.duration),
            "direction": DIRECTION_LABELS.get(record.call.direction, record.call.direction),
            "agent": record.meta("collector_name", "collector_id") or "未知",
            "team": record.meta("team") or "未记录",
            "agency": record.meta("agency") or "未记录（如为外包请注明）",
            "account": mask(record.meta("account", "account_number", "contract_number", "card_number")) or "未记录",
            "debtor": record.call.debtor_id or "未知",
            "other_party": record.meta("other_party") or "债务人本人（通话对象未另行记录）",
            "caller_number": record.meta("caller_number") or "未记录",
            "callee_number": mask(record.meta("callee_number")) or "未记录",
            "calls_that_day": unknown_count if today is None else today,
            "calls_last_7_days": unknown_count if week is None else week,
        },
        "findings": facts,
        "integrity": {
            "sha256": record.call.sha256,
            "recording": _recording_name(record),
            "source": record.row.get("source") or "未记录",
            "file_check": _file_check(record),
            "custody": _custody(store, record),
            "retention": f"录音及本报告至少保存 {RETENTION_YEARS} 年（《互联网金融逾期债务催收自律公约（试行）》；"
                         "《商业银行信用卡业务监督管理办法》第六十八条要求至少 2 年）",
            "retain_until": f"{_years_later(retained_from, RETENTION_YEARS):%Y-%m-%d}",
        },
        "impact": _impact(facts),
        "root_cause": TO_COMPLETE,
        "containment": TO_COMPLETE,
        "corrective_actions": [{"action": "", "owner": "", "due": ""} for _ in range(3)],
        "notifications": _notifications(categories, rules),
        "sign_offs": [{"role": role} for role in ("合规负责人", "催收团队负责人", "法务负责人")],
    }


# --- rendering ----------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,  # a missing key is a bug, not an empty cell
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["fill"] = mark_blanks
    return environment


def _check(context: dict, kind: str) -> None:
    if kind not in KINDS:
        raise ReportError(f"unknown report kind {kind!r}; expected one of: {', '.join(KINDS)}")
    if context.get("kind") != kind:
        raise ReportError(f"this context is for a {context.get('kind')!r} report, not {kind!r}")


def render_html(context: dict, kind: str, standalone: bool = True) -> str:
    """The report as HTML: a whole page, or (``standalone=False``) one ``<article>`` with
    its own scoped styles, to embed in a page of the web app."""
    _check(context, kind)
    return _environment().get_template(f"{kind}.html").render(report=context, standalone=standalone)


def render(context: dict, kind: str, fmt: str) -> bytes:
    """The report in ``fmt`` (html, pdf or docx) as bytes."""
    if fmt not in FORMATS:
        raise ReportError(f"unknown report format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    html = render_html(context, kind)
    if fmt == "html":
        return html.encode("utf-8")
    if fmt == "pdf":
        return _pdf(html)
    return _docx(html)


def _pdf(html: str) -> bytes:
    try:
        import weasyprint
    except OSError as error:  # WeasyPrint is installed but Pango is not
        raise ReportError(f"PDF output needs the Pango libraries (Debian: libpango-1.0-0 libpangoft2-1.0-0): {error}") from error
    return weasyprint.HTML(string=html, base_url=str(TEMPLATE_DIR)).write_pdf()


# --- DOCX: the same HTML, walked into Word paragraphs and tables -------------------------


def _docx_style() -> dict:
    return json.loads((TEMPLATE_DIR / "docx-style.json").read_text(encoding="utf-8"))


def _set_fonts(element, latin: str, east_asian: str) -> None:
    """Set the Latin and East-Asian fonts of a run or style. Word picks the font for
    Chinese characters from w:eastAsia only; python-docx's ``font.name`` sets just the
    Latin ones, which leaves Chinese in whatever Word guesses."""
    from docx.oxml.ns import qn

    properties = element.get_or_add_rPr()
    fonts = properties.find(qn("w:rFonts"))
    if fonts is None:
        fonts = properties.makeelement(qn("w:rFonts"), {})
        properties.insert(0, fonts)
    # Theme fonts win over named ones: the default template's headings carry them.
    for theme in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
        fonts.attrib.pop(qn(theme), None)
    for attribute, value in (("w:ascii", latin), ("w:hAnsi", latin), ("w:cs", latin), ("w:eastAsia", east_asian)):
        fonts.set(qn(attribute), value)


class _DocxWriter:
    """Writes the elements of one rendered report into a python-docx Document."""

    def __init__(self, style: dict):
        from docx import Document
        from docx.shared import Cm, Pt

        self.Pt = Pt
        self.style = style
        self.document = Document()
        section = self.document.sections[0]
        section.page_width, section.page_height = Cm(style["page"]["width_cm"]), Cm(style["page"]["height_cm"])
        for side in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
            setattr(section, side, Cm(style["page"]["margin_cm"]))
        body, heading = style["body"], style["heading"]
        for name, fonts, size in (
            ("Normal", body, body["size_pt"]),
            ("Title", heading, heading["title_size_pt"]),
            ("Heading 1", heading, heading["size_pt"][0]),
            ("Heading 2", heading, heading["size_pt"][1]),
            ("Heading 3", heading, heading["size_pt"][2]),
        ):
            word_style = self.document.styles[name]
            word_style.font.size = Pt(size)
            _set_fonts(word_style.element, fonts["latin"], fonts["east_asian"])

    # -- inline content ----------------------------------------------------------------

    def _runs(self, paragraph, element, bold: bool = False, italic: bool = False, mono: bool = False,
              size: float | None = None, fonts: dict | None = None) -> None:
        """Add the text of ``element`` and its inline children to ``paragraph`` as runs,
        each with its Latin and East-Asian fonts set."""
        fonts = fonts or self.style["body"]

        def add(text: str, bold: bool, italic: bool, mono: bool) -> None:
            text = re.sub(r"\s+", " ", text)  # HTML whitespace: template indentation is not content
            if not "".join(run.text for run in paragraph.runs).strip():
                text = text.lstrip()
            if not text:
                return
            run = paragraph.add_run(text)
            run.bold, run.italic = bold or None, italic or None
            chosen = self.style["mono"] if mono else fonts
            _set_fonts(run._element, chosen["latin"], chosen["east_asian"])
            if size:
                run.font.size = self.Pt(size)

        if element.text:
            add(element.text, bold, italic, mono)
        for child in element:
            if not isinstance(child.tag, str):  # comments
                if child.tail:
                    add(child.tail, bold, italic, mono)
                continue
            tag = child.tag.lower()
            if tag == "br":
                paragraph.add_run().add_break()
            elif "docx-skip" not in (child.get("class") or ""):
                if tag == "li":  # a list inside a table cell: one item a line
                    if child.getprevious() is not None:
                        paragraph.add_run().add_break()
                    add("• ", bold, italic, mono)
                self._runs(paragraph, child, bold or tag in ("strong", "b", "th") or "quote" in (child.get("class") or ""),
                           italic or tag in ("em", "i"), mono or tag == "code" or "mono" in (child.get("class") or ""),
                           size, fonts)
            if child.tail:
                add(child.tail, bold, italic, mono)

    def paragraph(self, element, style: str | None = None, prefix: str = "", **inline) -> None:
        paragraph = self.document.add_paragraph(style=style)
        fonts = self.style["heading"] if style and style.startswith(("Title", "Heading")) else self.style["body"]
        if prefix:
            run = paragraph.add_run(prefix)
            _set_fonts(run._element, fonts["latin"], fonts["east_asian"])
        self._runs(paragraph, element, fonts=fonts, **inline)
        _trim_end(paragraph)

    # -- blocks --------------------------------------------------------------------------

    def block(self, element) -> None:
        if not isinstance(element.tag, str) or "docx-skip" in (element.get("class") or ""):
            return
        tag = element.tag.lower()
        if tag in ("style", "script", "head", "title", "meta"):
            return
        if tag == "h1":
            self.paragraph(element, "Title")
        elif tag in ("h2", "h3", "h4"):
            self.paragraph(element, f"Heading {min(int(tag[1]) - 1, 3)}")
        elif tag == "p":
            self.paragraph(element, italic="notice" in (element.get("class") or ""))
        elif tag in ("ol", "ul"):
            # Numbers written out: Word's list numbering continues across lists unless
            # each list gets its own numbering definition, which python-docx cannot make.
            items = [li for li in element if isinstance(li.tag, str) and li.tag.lower() == "li"]
            for number, item in enumerate(items, start=1):
                self.paragraph(item, prefix=f"{number}. " if tag == "ol" else "• ")
        elif tag == "table":
            self.table(element)
        else:  # article, section, div, header, footer …: their children
            if element.text and element.text.strip():
                self.document.add_paragraph(element.text.strip())
            for child in element:
                self.block(child)

    def table(self, element) -> None:
        rows = [[c for c in tr if isinstance(c.tag, str) and c.tag.lower() in ("td", "th")] for tr in element.iter("tr")]
        if not rows:
            return
        width = max(sum(_span(c, "colspan") for c in cells) for cells in rows)
        table = self.document.add_table(rows=len(rows), cols=width)
        table.style = self.document.styles["Table Grid"]
        size = self.style["table"]["size_pt"]
        taken: set[tuple[int, int]] = set()  # grid slots covered by a rowspan from above
        demand = [4] * width  # per column: the widest single-column cell, in half-width characters
        for r, cells in enumerate(rows):
            column = 0
            for cell in cells:
                while (r, column) in taken:
                    column += 1
                if column >= width:
                    break
                across, down = _span(cell, "colspan"), _span(cell, "rowspan")
                last_row, last_column = min(r + down, len(rows)) - 1, min(column + across, width) - 1
                word_cell = table.cell(r, column)
                if (last_row, last_column) != (r, column):
                    word_cell = word_cell.merge(table.cell(last_row, last_column))
                taken.update((i, j) for i in range(r, last_row + 1) for j in range(column, last_column + 1))
                self._runs(word_cell.paragraphs[0], cell, bold=cell.tag.lower() == "th", size=size)
                _trim_end(word_cell.paragraphs[0])
                if across == 1:
                    demand[column] = max(demand[column], _display_width(word_cell.text))
                column = last_column + 1
        self._fit_columns(table, demand)
        self.document.add_paragraph()

    def _fit_columns(self, table, demand: list[int]) -> None:
        """Column widths in proportion to their content (capped, so one long cell does not
        squeeze the rest): Word and LibreOffice otherwise make every column equally wide."""
        from docx.shared import Cm

        page = self.style["page"]
        usable = page["width_cm"] - 2 * page["margin_cm"]
        weights = [min(max(d, 4), 40) for d in demand]
        widths = [Cm(usable * weight / sum(weights)) for weight in weights]
        table.autofit = False
        for column, width in zip(table.columns, widths, strict=True):
            column.width = width  # the grid: what LibreOffice reads
        for row in table.rows:
            for cell, width in zip(row.cells, widths, strict=True):
                cell.width = width  # each cell: what Word reads

    def to_bytes(self) -> bytes:
        from io import BytesIO

        buffer = BytesIO()
        self.document.save(buffer)
        return buffer.getvalue()


def _trim_end(paragraph) -> None:
    """Drop the space that template indentation leaves at the end of a paragraph."""
    for run in reversed(paragraph.runs):
        text = run.text
        if text.strip(" "):  # words, or a line break
            if text.endswith(" "):
                run.text = text.rstrip(" ")
            return
        run.text = ""


def _display_width(text: str) -> int:
    """Width of the longest line in half-width characters (a Chinese character is two)."""
    return max((sum(2 if ord(ch) >= 0x2E80 else 1 for ch in line) for line in text.split("\n")), default=0)


def _span(cell, attribute: str) -> int:
    try:
        return max(1, int(cell.get(attribute, 1)))
    except ValueError:
        return 1


def _docx(html: str) -> bytes:
    import lxml.html

    page = lxml.html.document_fromstring(html)
    writer = _DocxWriter(_docx_style())
    title = page.findtext(".//title")
    if title:
        writer.document.core_properties.title = title
    for article in page.iter("article"):
        writer.block(article)
    return writer.to_bytes()
