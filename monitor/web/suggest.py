"""The risk model in the review app: the queue ordered by risk (with 建议抽查: calls
with suspected lines and no finding), decisions on suspected lines, and, for admins,
candidate rule examples from reviewers' decisions.

A suspected line is shown in its own section of the call page (``suspected.html``,
through the ``suspected_lines`` template global) and is never a finding until a
reviewer confirms it here."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from monitor.learning.suggest import as_yaml, suggestions
from monitor.learning.suspects import reviewer_finding_terms
from monitor.store import StoreError
from . import abort_with, get_store, state
from .auth import admin_required

bp = Blueprint("learning", __name__)


@bp.app_template_global()
def suspected_lines(call_id: str) -> list[dict]:
    """The call's suspected lines (open and decided), for the call page."""
    return get_store().suspected_lines(call_id)


@bp.route("/risk")
def risk_queue():
    suggested = request.args.get("suggested") == "1"
    calls = get_store().risk_queue(suggested_only=suggested)
    return render_template("risk.html", calls=calls, suggested=suggested)


@bp.route("/calls/<call_id>/suspected", methods=["POST"])
def decide(call_id: str):
    store = get_store()
    suspect_id = request.form.get("suspect_id", "")
    row = store.suspect(suspect_id)
    if row is None or row["call_id"] != call_id:
        abort(404)
    decision = request.form.get("decision", "")
    if decision not in ("confirmed", "dismissed"):
        abort_with(400, "请选择“确认违规”或“驳回”。")
    severity, clauses = reviewer_finding_terms(state().engine.pack, row["category"])
    try:
        store.decide_suspected(suspect_id, decision, g.user["username"], request.form.get("note", "").strip(),
                               severity=severity, legal_basis=clauses)
    except StoreError as error:
        abort_with(409, str(error))
    flash("已确认为违规，并记录为审核员发现的违规" if decision == "confirmed" else "已驳回疑似违规", "ok")
    return redirect(url_for("review.call", call_id=call_id, _anchor=f"s-{suspect_id}"))


@bp.route("/rules/suggestions")
@admin_required
def rule_suggestions():
    found = suggestions(get_store())
    return render_template("suggest.html", suggestions=found, yaml=as_yaml(found))
