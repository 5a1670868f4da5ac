"""The debtor corrects an automatic quote on the receipt page before generating the
letter: the letter shows the correction, marked, with the automatic text beside it; the
stored transcript is unchanged."""

from __future__ import annotations

import pytest

import re

from .test_web import ABUSIVE, _receipt_token, csrf, submit, web  # noqa: F401 (web is a fixture)


@pytest.mark.slow
def test_the_receipt_page_lets_the_debtor_correct_a_quote(web):  # noqa: F811
    debtor = web.app.test_client()
    token = _receipt_token(submit(debtor, web.recording("q.wav", 440, ABUSIVE), lender_name="甲贷款",
                                  lender_type="micro_lender", calling_number="111", complainant_name="王芳"))
    web.queue.process_pending()
    page = debtor.get(f"/submit/r/{token}").text
    fields = re.findall(r'<textarea name="(quote-[^"]+)" rows="2">([^<]*)</textarea>', page)
    assert fields, page
    name, automatic = fields[0]
    corrected = automatic + "（更正）"
    letter = debtor.post(f"/submit/r/{token}/complaint.html",
                         data={"csrf_token": csrf(debtor, f"/submit/r/{token}"), name: corrected})
    text = letter.data.decode("utf-8")
    assert letter.status_code == 200
    assert corrected in text and "投诉人据录音更正" in text and f"自动转写原文：“{automatic}”" in text
    plain = debtor.get(f"/submit/r/{token}/complaint.html").data.decode("utf-8")
    assert corrected not in plain and "自动转写，可能有误" in plain
    stored = [turn.text for row in web.store.db.query("SELECT id FROM calls") for turn in web.store.call(row["id"]).turns]
    assert any(automatic in text for text in stored) and not any(corrected in text for text in stored)
