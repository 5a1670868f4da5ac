"""The debtor's complaint letter (投诉书): the judgement behind it — which remedies to
ask for, whom to address, where else to file — built into a plain dict in the order of
the parts listed in shared/domain/regulations.md.

It is built from the *automatic* findings of the recording the debtor submitted (nobody
at the lender has reviewed them, and the letter says so). One row per incident: a
sentence that breaks several rules is one row listing all of them. Quotes come from
automatic transcription; the complainant may correct them before generating, and the
letter marks which are automatic and keeps the original beside a correction."""

from __future__ import annotations

from monitor.labels import CATEGORY_LABELS
from monitor.redaction import redact_if_configured
from monitor.store import Store
from monitor.times import clock

from .facts import ReportError, finding_facts, group_incidents, load_call, sorted_findings
from .formatting import BLANK, item_numbers, mask, mask_id_number, now_local, or_blank, with_zone

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
# 《银行业保险业消费投诉处理管理办法》 binds banks and insurers only: its 15/30/60-day
# deadline is stated for them, and for nobody else.
_COMPLAINT_DEADLINE_BINDS = ("bank", "credit_card")
STATUTORY_DEADLINE = "一般应在 15 日内，情况复杂的可延长至 30 日，最长不超过 60 日（《银行业保险业消费投诉处理管理办法》）"
REQUESTED_DEADLINE = "请于收到本投诉书之日起 15 日内书面答复（被投诉机构不适用银行保险机构的法定答复期限，此为投诉人的请求）"

# Rules whose conduct is a police matter (regulations.md, complaint channel 5).
_POLICE_CATEGORIES = ("threat", "impersonation")
_POLICE_RULES = ("third-party-contact-list",)  # 爆通讯录: contact-list bombing
_FRAUD_CATEGORIES = ("cash_to_collector", "impersonation")
CONDUCT_CATEGORIES = ("abuse", "threat", "third_party", "cash_to_collector", "impersonation")

AUTOMATIC_MARK = "（自动转写，可能有误）"
CORRECTED_MARK = "（投诉人据录音更正）"


def classify_lender(lender: dict) -> str:
    """The lender type key (bank, credit_card, …, unknown) from what the debtor typed:
    a key of LENDER_TYPES or a Chinese word such as 银行, 小贷, 网贷."""
    given = str(lender.get("type") or "").strip()
    if given in LENDER_TYPES:
        return given
    return _LENDER_TYPE_WORDS.get(given, "unknown")


def reply_deadline(lender_type: str) -> str:
    return STATUTORY_DEADLINE if lender_type in _COMPLAINT_DEADLINE_BINDS else REQUESTED_DEADLINE


def complaint_requests(categories: set[str], lender_type: str, complainant: dict) -> list[str]:
    """The numbered remedies (regulations.md, 投诉请求), chosen by what was found."""
    requests = ["立即停止违规催收行为，今后严格依法依规催收。"]
    if "third_party" in categories:
        requests.append("立即停止联系、骚扰与债务无关的第三人（亲友、同事、单位等），并删除违规收集、使用的第三人个人信息。")
    if "impersonation" in categories:
        requests.append("立即停止冒用公安机关、法院等国家机关或律师名义催收。")
    if categories & {"off_hours", "call_frequency"}:
        requests.append("将催收联系限定在合理时间（08:00–22:00）和合理频次之内。")
    if categories & set(CONDUCT_CATEGORIES):
        requests.append("更换违规的催收人员；如委托外部催收机构，更换或终止委托该机构。")
    requests.append("就上述违规行为向投诉人作出书面说明并赔礼道歉。")
    if "cash_to_collector" in categories:
        requests.append("核查催收人员要求向个人或非指定账户付款的情况；已付款项应如实计入还款，核减、退还以催收名义收取的不当费用。")
    if complainant.get("hardship_plan"):
        basis = "（参照《商业银行信用卡业务监督管理办法》有关规定）" if lender_type == "credit_card" else ""
        requests.append(f"结合投诉人的实际困难，协商个性化分期或延期还款方案{basis}。")
    if categories & set(CONDUCT_CATEGORIES):
        requests.append("依规追究相关责任人员的责任，并将处理结果告知投诉人。")
    if lender_type in _COMPLAINT_DEADLINE_BINDS:
        requests.append(f"在法定期限内书面答复投诉人（{STATUTORY_DEADLINE}）。")
    else:
        requests.append(f"书面答复投诉人：{REQUESTED_DEADLINE}。")
    return requests


def police_matters(categories: set[str], rules: set[str]) -> list[str]:
    """What in the findings is a matter for the police (regulations.md, channel 5)."""
    matters = [CATEGORY_LABELS[c] for c in _POLICE_CATEGORIES if c in categories]
    if rules & set(_POLICE_RULES):
        matters.append("爆通讯录")
    return matters


def complaint_channels(lender_type: str, lender_name: str | None, categories: set[str], rules: set[str],
                       complainant: dict) -> list[dict]:
    """Where to file, in the order regulations.md gives (lender first, then the
    regulator for that lender type; police, fraud, data and court channels by what was found)."""
    who = lender_name or "被投诉机构"
    own = ("应先向放贷机构投诉；机构应" + STATUTORY_DEADLINE.replace("一般应", "") + "答复。"
           if lender_type in _COMPLAINT_DEADLINE_BINDS
           else "应先向放贷机构投诉；该类机构无法定答复期限，可要求其 15 日内书面答复。")
    channels = [{"name": f"{who}的投诉渠道", "contact": "客服热线、官方应用或网站的投诉入口，或书面投诉", "why": own}]
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
        channels.append({"name": "当地政府服务热线", "contact": "12345", "why": "放贷机构类型不明时，由 12345 转交主管部门。"})
    police = police_matters(categories, rules)
    if police:
        channels.append({"name": "公安机关", "contact": "110，或向当地派出所报案",
                         "why": f"通话中有{'、'.join(police)}等情形，可能涉嫌违法犯罪。"})
    if categories & set(_FRAUD_CATEGORIES):
        channels.append({"name": "反诈骗咨询热线", "contact": "96110", "why": "被要求向个人账户付款或对方冒充国家机关，疑似诈骗。"})
    if "third_party" in categories:
        channels.append({"name": "个人信息违法违规举报", "contact": "12377", "why": "对方向第三人披露或滥用投诉人及其亲友的个人信息。"})
    if complainant.get("credit_report_dispute"):
        channels.append({"name": "中国人民银行征信投诉", "contact": "12363", "why": "对征信记录有异议。"})
    if categories & {"third_party", "abuse", "threat"}:
        channels.append({
            "name": "人民法院",
            "contact": "向有管辖权的人民法院提起诉讼",
            "why": "就隐私权、名誉权、人格尊严、个人信息权益受到侵害主张权利"
                   + ("；个人信息处理者应证明自己没有过错（《个人信息保护法》第六十九条）" if "third_party" in categories else "")
                   + "。",
        })
    return channels


def addressee(lender_type: str, lender_name: str | None) -> dict:
    """致： the lender's complaint department (filed there first); 抄送： the regulator of
    that lender type, so the same letter can go on to it unchanged."""
    to = f"{lender_name or BLANK}（消费者投诉处理部门）"
    copy = {
        "bank": "国家金融监督管理总局〔所在地〕监管局",
        "credit_card": "国家金融监督管理总局〔所在地〕监管局",
        "consumer_finance": "国家金融监督管理总局〔所在地〕监管局",
        "micro_lender": "〔机构注册地〕地方金融管理局",
        "online_platform": "中国互联网金融协会",
    }.get(lender_type)
    return {"to": to, "copy": copy}


def _debt(complainant: dict, lender: dict) -> dict:
    """The debt itself, from what the complainant or the lender file gave."""
    def given(*keys):
        for source in (lender, complainant):
            for key in keys:
                if source.get(key) not in (None, ""):
                    return str(source[key])
        return None

    amount = given("amount", "loan_amount", "principal")
    return {
        "product": or_blank(given("product", "loan_product")),
        "borrowed_on": or_blank(given("borrowed_on", "loan_date")),
        "amount": or_blank(f"{amount} 元" if amount and amount.replace(".", "", 1).isdigit() else amount),
        "overdue_since": or_blank(given("overdue_since")),
    }


def _quote(incident: dict, corrections: dict[str, str], redact) -> dict:
    """The incident's quote: the automatic transcript, or the complainant's correction
    with the automatic text kept beside it."""
    original = incident["facts"][0]["quote"] or ""
    corrected = next((corrections[i] for i in incident["finding_ids"] if corrections.get(i, "").strip()), None)
    if corrected and corrected.strip() != original:
        return {"text": redact(corrected.strip()), "mark": CORRECTED_MARK, "original": original}
    return {"text": original, "mark": AUTOMATIC_MARK, "original": None}


def complaint_context(store: Store, call_id: str, complainant: dict | None, lender: dict | None,
                      corrections: dict[str, str] | None = None) -> dict:
    """The debtor's 投诉书 for one recording they submitted, parts in the order of
    regulations.md. ``complainant`` (name, id_number, phone, address, agent, relation,
    hardship_plan, credit_report_dispute) and ``lender`` (name, type, contract_number,
    card_number, agency, collector_name, calling_numbers, product, borrowed_on, amount,
    overdue_since) are what the debtor typed; anything missing becomes a 〔请填写〕 blank.
    ``corrections`` maps a finding id to the complainant's corrected quote. Uses every
    active automatic finding and raises ReportError when there is none."""
    complainant = dict(complainant or {})
    lender = dict(lender or {})
    corrections = {str(k): str(v) for k, v in (corrections or {}).items() if v is not None}
    redact = redact_if_configured
    record = load_call(store, call_id)
    findings = sorted_findings(store.findings(call_id))
    if not findings:
        raise ReportError(
            f"call {call_id!r}: the automatic analysis found no violation in this recording, "
            "so there is nothing to base a complaint letter on"
        )
    lender_type = classify_lender(lender)
    lender_name = lender.get("name") or None
    facts = [finding_facts(record, stored, n, lender_type) for n, stored in enumerate(findings, start=1)]
    for fact in facts:
        fact["quote"], fact["matched"] = redact(fact["quote"]), redact(fact["matched"])
    incidents = group_incidents(facts)
    categories = {f["category"] for f in facts}
    rules = {f["rule"] for f in facts}

    calling_numbers = [str(n) for n in lender.get("calling_numbers") or [] if n]
    recorded_caller = record.meta("caller_number") if record.call.direction == "outbound" else None
    if recorded_caller and recorded_caller not in calling_numbers:
        calling_numbers.insert(0, recorded_caller)
    caller = recorded_caller or (calling_numbers[0] if len(calling_numbers) == 1 else None)
    relation = complainant.get("relation")
    contacted = f"投诉人（{relation}）" if relation else "投诉人本人（债务人）"
    for incident in incidents:
        first = incident["facts"][0]
        incident.update(
            date=first["date"] or BLANK,
            time=first["time"] or BLANK,
            channel="电话",
            calling_number=caller or BLANK,
            contacted=record.meta("other_party") or contacted,
            titles=[f["title"] for f in incident["facts"]],
            effects=list(dict.fromkeys(CATEGORY_EFFECTS.get(f["category"], "") for f in incident["facts"])),
            category_labels=list(dict.fromkeys(f["category_label"] for f in incident["facts"])),
            quote=None if incident["is_call_level"] else _quote(incident, corrections, redact),
            summary=first["quote"] if incident["is_call_level"] else None,
            speaker_verified=all(f["speaker_verified"] for f in incident["facts"]),
        )

    started = record.started
    recording = record.recording_name
    call_date = started.strftime("%Y-%m-%d") if started else BLANK
    whole = f"全程 {clock(0)}–{clock(record.call.duration)}"
    evidence = [{"no": 1, "type": "通话录音（原始文件）", "date": call_date, "file": recording,
                 "sha256": record.call.sha256, "range": whole}]
    for incident in incidents:
        if incident["clip"]:
            evidence.append({
                "no": len(evidence) + 1, "type": f"录音节选（事实第 {incident['no']} 项；节选文件 {incident['clip']}）",
                "date": call_date, "file": recording, "sha256": record.call.sha256, "range": incident["at"],
            })
    evidence.append({
        "no": len(evidence) + 1, "type": "通话文字记录（自动转写，可能有误；据第 1 项录音生成）", "date": call_date,
        "file": "transcript.txt", "sha256": record.call.sha256, "range": whole,
    })

    violations = []
    for rule in dict.fromkeys(f["rule"] for f in facts):  # first-seen order
        group = [f for f in facts if f["rule"] == rule]
        violations.append({
            "facts": item_numbers(sorted({f["incident"] for f in group})), "title": group[0]["title"],
            "category_label": group[0]["category_label"], "clauses": group[0]["clauses"],
        })

    lender_label = lender_name or "〔被投诉机构名称〕"
    return {
        "kind": "complaint",
        "title": "投诉书",
        "subtitle": f"关于{lender_label}及其委托催收机构违规催收的投诉",
        "blank": BLANK,
        "generated_at": with_zone(now_local()),
        "addressee": addressee(lender_type, lender_name),
        "automatic_notice": (
            "本投诉书“事实与理由”“违规条款”所列情形，由投诉人提交的通话录音经自动分析（语音转写与规则比对）得出，"
            f"尚未经{lender_name or '被投诉机构'}审核确认；摘录的原话为自动转写，可能有误，"
            "经投诉人更正的已注明并附自动转写原文。录音原件及其 SHA-256 校验值列于证据清单，可供核验。"
        ),
        "complainant": {
            "name": or_blank(complainant.get("name")),
            "id_number": or_blank(mask_id_number(complainant.get("id_number"))),
            "phone": or_blank(complainant.get("phone")),
            "address": or_blank(complainant.get("address")),
            "relation": relation,
            "agent": complainant.get("agent"),
            "agent_authorization": complainant.get("agent_authorization")
            or ("授权委托书（见附件）" if complainant.get("agent") else None),
        },
        "respondent": {
            "name": lender_name or BLANK,
            "type": lender_type,
            "type_label": LENDER_TYPES[lender_type],
            "account": or_blank(mask(lender.get("contract_number") or lender.get("card_number") or record.meta("account"))),
            "account_label": "信用卡卡号" if lender.get("card_number") and not lender.get("contract_number") else "合同号或卡号",
            "agency": or_blank(lender.get("agency") or record.meta("agency")),
            "collector": or_blank(lender.get("collector_name") or record.meta("collector_name", "collector_id")),
            "calling_numbers": "、".join(calling_numbers) if calling_numbers else BLANK,
        },
        "debt": _debt(complainant, lender),
        "requests": complaint_requests(categories, lender_type, complainant),
        "reply_deadline": reply_deadline(lender_type),
        "incidents": incidents,
        "facts": facts,
        "violations": violations,
        "evidence": evidence,
        "statement": "投诉人承诺：以上所述内容及所附证据均真实、完整，如有不实，愿承担相应的法律责任。",
        "attachments": [
            f"通话录音原始文件（{recording}）",
            "录音节选及通话文字记录（见证据包 manifest.json，含各文件 SHA-256）",
            "投诉人身份证件复印件〔请附上〕",
            "借款合同、账单或还款记录〔请附上〕",
            *(["授权委托书及代理人身份证件复印件"] if complainant.get("agent") else []),
        ],
        "channels": complaint_channels(lender_type, lender_name, categories, rules, complainant),
        "call": {"id": record.call.id, "sha256": record.call.sha256, "recording": recording},
    }
