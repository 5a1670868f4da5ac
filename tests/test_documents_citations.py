"""The citations of the rule files, checked as a reader of the law would: the current
public-security text first and the 2012 one only for earlier calls, the right
instrument per lender type, no self-regulatory article numbers, every instrument listed
in rules/SOURCES.md with what it was checked against."""

from __future__ import annotations

import re
from datetime import date

import pytest

from monitor.documents.clauses import ClauseTableError, clause_table, cited_clauses, rule_texts

from .conftest import REPO

RULES = REPO / "rules"


def all_lines() -> dict[str, tuple[str, ...]]:
    return {rule: text.legal_basis for rule, text in rule_texts(str(RULES)).items()}


def test_every_rule_cites_current_law_and_no_mixed_up_titles():
    for rule, lines in all_lines().items():
        text = "\n".join(lines)
        assert "互联网金融个人网络消费信贷贷后催收风控指引" not in text, rule  # the mixed-up NIFA title
        assert not re.search(r"自律公约（试行）》第", text), rule  # 公约 by name only
        assert not re.search(r"信用卡业务监督管理办法》第六十八条（参照）", text), rule  # binding, not 参照
        assert "第四十二条" not in text, rule  # the 2012 text comes from citations/clauses.yaml, by date
        for line in lines:
            if "GB/T 45251" in line:
                assert line.startswith("GB/T 45251—2025《互联网金融 个人网络消费信贷 贷后催收风控指引》"), line
    lines = all_lines()
    for rule in ("off-hours-night", "call-frequency-daily"):
        assert any(l.startswith("《民法典》第一千零三十三条第（一）项") for l in lines[rule]), rule
    assert any("未接通" in l and "6 次" in l for l in lines["call-frequency-daily"])
    for rule in ("abuse-curse", "abuse-profanity", "abuse-degrading-address"):
        assert any("第九百九十条第二款" in l for l in lines[rule])
    for rule in [r for r in lines if r.startswith("third-party")]:
        assert any("第一千零三十二条" in l for l in lines[rule]), rule
    assert any("仅限公然侮辱" in l for l in lines["abuse-profanity"] if "第二百四十六条" in l)


def test_every_dated_line_has_its_earlier_text():
    table = clause_table(str(RULES))
    dated = [e["line"] for e in table["by_call_date"]]
    for rule, lines in all_lines().items():
        for line in lines:
            if line.startswith("《治安管理处罚法》"):
                assert any(line.startswith(d) for d in dated), (rule, line)
                assert not cited_clauses([line], call_date=date(2025, 12, 31), directory=str(RULES))[0].startswith(
                    "《治安管理处罚法》第五十条")
                assert cited_clauses([line], call_date=date(2026, 1, 1), directory=str(RULES)) == [line]


def test_lender_type_orders_and_filters_the_instruments():
    lines = list(all_lines()["threat-violence"])
    bank = cited_clauses(lines, lender_type="bank", directory=str(RULES))
    assert bank[0].startswith("《银行保险机构消费者权益保护管理办法》")
    assert not any(l.startswith("《商业银行信用卡业务监督管理办法》") for l in bank)  # card rules: card issuers
    card = cited_clauses(lines, lender_type="credit_card", directory=str(RULES))
    assert [l[:7] for l in card[:2]] == ["《银行保险机构", "《商业银行信用"]
    assert cited_clauses(lines, directory=str(RULES)) == lines  # unknown lender: as written


def test_every_cited_instrument_is_in_sources_md():
    sources = (RULES / "SOURCES.md").read_text(encoding="utf-8")
    table = clause_table(str(RULES))
    cited = [l for lines in all_lines().values() for l in lines] + [e["earlier"] for e in table["by_call_date"]]
    for line in cited:
        title = re.search(r"《([^》]+)》", line).group(1)
        short = re.sub(r"（.*?）|\(.*?\)|《|》", "", title)
        key = "GB/T 45251" if line.startswith("GB/T") else ("软暴力" if "软暴力" in line else short[:8])
        assert key in sources, (key, line)
    assert "checked" in sources and re.search(r"\d{4}-\d\d-\d\d", sources)


def test_a_broken_clause_table_is_named_with_its_line(tmp_path):
    (tmp_path / "citations").mkdir()
    (tmp_path / "citations" / "clauses.yaml").write_text("by_call_date:\n  - line: x\n    since: soon\n    earlier: y\n",
                                                         encoding="utf-8")
    clause_table.cache_clear()
    with pytest.raises(ClauseTableError, match=r"clauses.yaml:2: by_call_date entry 1: since must be a date"):
        clause_table(str(tmp_path))
    clause_table.cache_clear()
