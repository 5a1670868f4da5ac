"""The complaint letter and the incident report laid out as document blocks
(model.py), part by part in the order of shared/domain/regulations.md."""

from __future__ import annotations

from .model import Cell, Document, Heading, Items, Paragraph, Span, Table, cell, spans


def _fields(rows: list[tuple[str, object]], label_cm: float = 4.2, style: dict | None = None,
            keep_together: bool = False) -> Table:
    style = style or {}
    pairs = [[cell(label, header=True, shade=True), cell(value, style.get(label, ""))] for label, value in rows]
    return Table([label_cm, 17.0 - label_cm], None, [pairs] if keep_together else [[pair] for pair in pairs], role="fields")


def _grid(widths: list[float], head: list[str], rows: list[list], styles: list[str] | None = None) -> Table:
    styles = styles or [""] * len(widths)
    bodies = [[[c if isinstance(c, Cell) else cell(c, styles[i]) for i, c in enumerate(row)]] for row in rows]
    return Table(widths, [cell(h, header=True, shade=True) for h in head], bodies)


def _lines(values: list[str], bullet: str = "") -> Cell:
    return Cell([[Span(bullet), *spans(v)] if bullet else spans(v) for v in values] or [[Span("")]])


def complaint_document(report: dict) -> Document:
    c, r, d = report["complainant"], report["respondent"], report["debt"]
    blocks: list = [
        Paragraph([Span(report["title"])], "title"),
        Paragraph(spans("——" + report["subtitle"]), "subtitle"),
        Paragraph(spans("致：" + report["addressee"]["to"]), "addressee"),
    ]
    if report["addressee"]["copy"]:
        blocks.append(Paragraph(spans("抄送：" + report["addressee"]["copy"]), "addressee"))
    blocks.append(Paragraph(spans(report["automatic_notice"]), "notice"))

    rows = [("姓名", c["name"]), ("身份证号（部分隐去）", c["id_number"]), ("联系电话", c["phone"]), ("联系地址", c["address"])]
    if c["relation"]:
        rows.append(("与债务人的关系", c["relation"]))
    if c["agent"]:
        rows += [("委托代理人", c["agent"]), ("授权委托", c["agent_authorization"])]
    blocks += [Heading("一、投诉人"), _fields(rows)]
    blocks += [Heading("二、被投诉人"), _fields([
        ("机构名称（全称）", r["name"]), ("机构类型", r["type_label"]), (f"{r['account_label']}（部分隐去）", r["account"]),
        ("委托催收机构", r["agency"]), ("催收人员姓名或工号", r["collector"]), ("来电号码", r["calling_numbers"]),
    ])]
    blocks += [Heading("三、投诉请求"), Items([spans(x) for x in report["requests"]])]

    blocks += [Heading("四、事实与理由"), Paragraph(spans(
        f"投诉人在被投诉人处办理的借款：产品 {d['product']}，借款时间 {d['borrowed_on']}，借款金额 {d['amount']}，"
        f"自 {d['overdue_since']} 起逾期。投诉人对债务本身另行依法处理；本投诉针对的是催收方式，而非债务本身。"))]
    blocks.append(Paragraph(spans("被投诉人（或其委托的催收机构）在催收过程中有下列违规行为，每项为一次事件（一句话违反多项规定的，合并为一项）。"
                                  "时间为当地时间；“录音”为该句在录音文件中的位置，可据证据清单核对。"), "small"))
    bodies = []
    for incident in report["incidents"]:
        first = [cell(incident["no"], rowspan=2), cell(incident["date"]), cell(incident["time"]), cell(incident["channel"]),
                 cell(incident["calling_number"]), cell(incident["contacted"]), _lines(incident["effects"])]
        if incident["is_call_level"]:
            detail = [Span("、".join(incident["titles"]) + "：", "bold"), *spans(incident["summary"])]
        else:
            quote = incident["quote"]
            detail = [Span(f"违规情形：{'；'.join(incident['titles'])}。", "bold"), Span(f"原话（录音 {incident['at']}）：“"),
                      *spans(quote["text"], "bold"), Span("”"), Span(quote["mark"], "small")]
            if quote["original"]:
                detail += [Span(f"自动转写原文：“{quote['original']}”", "small")]
        if not incident["speaker_verified"]:
            detail.append(Span("（单声道录音，说话人未经核实）", "small"))
        bodies.append([first, [Cell([detail], colspan=6)]])
    blocks.append(Table([1.3, 2.3, 2.0, 1.3, 2.6, 3.1, 4.4],
                        [cell(h, header=True, shade=True) for h in ("序号", "日期", "当地时间", "方式", "来电号码", "被联系人（关系）", "造成的影响")],
                        bodies))

    blocks += [Heading("五、违规条款"),
               _grid([2.2, 5.0, 9.8], ["事实", "违规情形", "涉及条款"],
                     [[v["facts"], v["title"], _lines(v["clauses"], "· ")] for v in report["violations"]]),
               Paragraph(spans("标注“参照”的条款为行业自律规范、国家推荐性标准或条文序号尚待核对的规定，以有权机关的认定为准。"), "small")]

    blocks += [Heading("六、证据清单"),
               Paragraph([Span(f"原始录音 {report['call']['recording']} 的 SHA-256：")]),
               Paragraph([Span(report["call"]["sha256"], "mono")]),
               _grid([1.3, 4.0, 2.3, 3.2, 3.0, 3.2], ["序号", "证据类型", "日期", "文件名", "原始文件 SHA-256", "时间范围"],
                     [[e["no"], e["type"], e["date"], e["file"],
                       # The same original throughout: its hash in full once, not five times over.
                       e["sha256"] if i == 0 or e["sha256"] != report["evidence"][0]["sha256"] else "同第 1 项",
                       e["range"]] for i, e in enumerate(report["evidence"])],
                     ["", "", "", "", "mono", ""])]

    blocks += [Heading("七、声明与签署"), Paragraph(spans(report["statement"])),
               Paragraph([Span("此致")], "closing"), Paragraph([Span("敬礼")], "salute"),
               Paragraph([Span("投诉人（签名）：＿＿＿＿＿＿＿＿　　日期：＿＿＿＿年＿＿月＿＿日")], "sign")]
    if c["agent"]:
        blocks.append(Paragraph([Span("委托代理人（签名）：＿＿＿＿＿＿＿＿　　日期：＿＿＿＿年＿＿月＿＿日")], "sign"))
    blocks += [Heading("附件", 2), Items([spans(a) for a in report["attachments"]])]

    appendix = [
        Heading("附：投诉渠道（供投诉人参考，递交投诉书时可删去本页）"),
        Paragraph(spans("建议按下列顺序投诉；机构未答复或对答复不满意时，再向下一渠道反映。涉及人身安全的，请直接报警。")),
        _grid([1.3, 4.5, 4.2, 7.0], ["顺序", "渠道", "联系方式", "适用情形"],
              [[i, ch["name"], ch["contact"], ch["why"]] for i, ch in enumerate(report["channels"], start=1)]),
        Paragraph(spans(f"本文件由通话合规监测工具生成于 {report['generated_at']}，不构成法律意见。"), "small"),
    ]
    return Document("complaint", report["title"], report["subtitle"], blocks, appendix, "附页（递交时可删去）")


def incident_document(report: dict) -> Document:
    h, call, integrity = report["header"], report["call"], report["integrity"]
    blocks: list = [Paragraph([Span(report["title"])], "title"), Paragraph(spans(report["subtitle"]), "subtitle")]
    blocks += [Heading("一、事件概要"), Paragraph(spans(report["summary"])), _fields([
        ("事件编号", h["incident_id"]), ("状态", h["status"]),
        ("严重程度", f"{h['severity_label']}（{h['severity']}，已确认发现中的最高级别）"),
        ("发现时间", h["detected_at"]), ("发现方式", h["detected_by"]), ("规则版本", h["rules_version"]),
        ("编制人", report["prepared_by"]), ("报告生成时间", report["generated_at"]),
    ], style={"规则版本": "mono"})]
    blocks += [Heading("二、通话信息"), _fields([
        ("通话编号", call["id"]), ("开始时间（债务人当地）", call["started_local"]), ("时长", call["duration"]),
        ("方向", call["direction"]), ("催收员", call["agent"]), ("团队", call["team"]), ("委托催收机构", call["agency"]),
        ("账户（部分隐去）", call["account"]), ("债务人编号", call["debtor"]), ("通话对象", call["other_party"]),
        ("主叫号码 / 被叫号码", f"{call['caller_number']} / {call['callee_number']}"),
        ("当日致电该债务人", call["calls_that_day"]), ("近 7 日致电该债务人", call["calls_last_7_days"]),
    ])]
    blocks += [Heading("三、已确认的违规发现"),
               Paragraph(spans(f"仅列经人工审核确认的发现；未审核（{report['pending']} 项）或已驳回的自动发现不在本报告之内。"), "small")]
    for f in report["findings"]:
        when = f["at"] + (f"（当地 {f['date']} {f['time']}）" if f["date"] else "（通话开始时间未记录）") if not f["is_call_level"] \
            else (f"全程（通话开始于当地 {f['date']} {f['time']}）" if f["date"] else "全程")
        excerpt = f["quote"] if f["is_call_level"] else f"“{f['quote']}”" + (f"（命中：{f['matched']}）" if f["matched"] else "")
        if not f["speaker_verified"]:
            excerpt += "（说话人未核实：单声道）"
        review = f"{f['decision']}：{f['reviewer']}，{f['decided_at']}" + (f"；备注：{f['note']}" if f["note"] else "")
        table = _fields([
            ("规则", f["rule"]), ("类别", f"{f['category_label']}（{f['category']}）"),
            ("严重程度", f"{f['severity_label']}（{f['severity']}）"), ("录音时间", when), ("摘录（自动转写）", excerpt),
            ("识别置信度", f"{f['confidence']:.2f}" if f["confidence"] is not None else "—"),
            ("涉及条款", ""), ("审核", review), *([("证据包中的片段", f["clip"])] if f["clip"] else []),
        ], style={"规则": "mono", "证据包中的片段": "mono"}, keep_together=True)
        for row in table.bodies[0]:  # the clauses: one a line
            if row[0].lines[0][0].text == "涉及条款":
                row[1] = _lines(f["clauses"], "· ")
        blocks += [Heading(f"发现 {f['no']}：{f['title']}", 2), table]

    blocks += [Heading("四、证据完整性"), _fields([
        ("录音文件", integrity["recording"]), ("存放位置", integrity["source"]), ("SHA-256（入库时）", integrity["sha256"]),
        ("哈希复核", integrity["file_check"]), ("保存期限", integrity["retention"]), ("至少保存至", integrity["retain_until"]),
    ], style={"存放位置": "mono", "SHA-256（入库时）": "mono"}), Heading("保管链（审计日志）", 2),
        _grid([3.6, 2.6, 3.6, 3.4, 3.8], ["时间（UTC）", "操作人", "操作", "对象", "备注"],
              [[e["at"], e["actor"], e["action"], e["subject"], e["note"]] for e in integrity["custody"]],
              ["", "", "", "mono", ""])]
    blocks += [Heading("五、影响评估"), _grid([5.0, 7.0, 5.0], ["项目", "初步判断（依据已确认发现）", "核实结果"],
                                          [[x["item"], x["assessment"], x["to_complete"]] for x in report["impact"]])]
    blocks += [Heading("六、根本原因"), Paragraph(spans(report["root_cause"])),
               Heading("七、控制措施"), Paragraph(spans(report["containment"])),
               Heading("八、整改措施"), _grid([9.0, 4.0, 4.0], ["措施", "责任人", "完成期限"],
                                           [[a["action"], a["owner"], a["due"]] for a in report["corrective_actions"]]),
               Heading("九、对外报告（监管机构、公安机关）"),
               _grid([5.0, 5.6, 3.2, 3.2], ["对象", "建议", "决定", "日期"],
                     [[n["body"], n["suggestion"], n["decision"], n["date"]] for n in report["notifications"]]),
               Heading("十、签批"), _grid([4.4, 4.2, 4.2, 4.2], ["角色", "姓名", "签名", "日期"],
                                         [[s["role"], "", "", ""] for s in report["sign_offs"]]),
               Paragraph(spans(f"本报告由 {report['prepared_by']} 使用通话合规监测工具生成于 {report['generated_at']}；内部资料，注意保密。"), "small")]
    return Document("incident", report["title"], report["subtitle"], blocks)


def document(report: dict) -> Document:
    return complaint_document(report) if report["kind"] == "complaint" else incident_document(report)
