"""The debtor portal: no account. A debtor uploads a recording with what they know and
gets a receipt page at a secret link (a random token; only its SHA-256 is stored). The
link shows that submission and nothing else; the call also enters the staff queue as
debtor evidence (origin "debtor")."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for

from monitor.audit import Action
from monitor.errors import InputError
from monitor.runs.metadata import CallMetadata, metadata_from_form, metadata_from_json
from . import get_store, present, state
from .reporting import evidence_response, report_response
from .uploads import Refused, queue_upload, receive

bp = Blueprint("submit", __name__, url_prefix="/submit")

_TOKEN_LENGTH = 43  # secrets.token_urlsafe(32)


def receipt_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _form_values() -> dict:
    form = request.form
    return {name: form.get(name, "").strip()[:200] for name in (
        "lender_name", "lender_type", "calling_number", "called_at", "collector_channel", "direction",
        "complainant_name", "complainant_phone",
    )}


def _metadata(values: dict) -> tuple[CallMetadata, dict]:
    lender_type = values["lender_type"] if values["lender_type"] in present.LENDER_TYPES else "unknown"
    fields = {
        "call_id": f"debtor-{datetime.now().strftime('%Y%m%d')}-{secrets.token_hex(3)}",
        "started_at": values["called_at"],
        "direction": values["direction"] if values["direction"] in ("outbound", "inbound") else "outbound",
        "caller_number": values["calling_number"],
        "lender": values["lender_name"],
        "lender_type": lender_type,
        "collector_channel_stated": values["collector_channel"] or "unknown",
    }
    try:
        return metadata_from_form(fields, ZoneInfo(current_app.config["TIMEZONE"]), None, "")
    except InputError:
        raise InputError("通话时间的格式不对，请用“年-月-日 时:分”。") from None


@bp.route("/", methods=["GET", "POST"])
def form():
    if request.method == "GET":
        return render_template("submit/form.html", values={}, error=None)
    values = _form_values()
    storage = request.files.get("recording")
    channel = values["collector_channel"] if values["collector_channel"] in ("left", "right", "unknown") else "unknown"
    try:
        if storage is None or not storage.filename:
            raise Refused("请先选择录音文件。", status=400)
        try:
            metadata, extra = _metadata(values)
        except InputError as error:
            raise Refused(str(error), status=400) from None
        received = receive(storage, state().upload_folder, current_app.config["ASR_OPTIONS"].max_seconds)
    except Refused as refusal:
        return render_template("submit/form.html", values=values, error=refusal.message), refusal.status
    token = secrets.token_urlsafe(32)
    store = get_store()
    extra_private = {**extra, "complainant_name": values["complainant_name"] or None,
                     "complainant_phone": values["complainant_phone"] or None}
    upload_id = queue_upload(store, received, "debtor", "debtor", metadata,
                             {k: v for k, v in extra_private.items() if v}, channel, receipt_hash(token))
    state().queue.notify()
    current_app.logger.info("debtor submission %s queued", upload_id)
    return redirect(url_for("submit.receipt", token=token, new=1), code=303)


def _upload_or_404(token: str) -> dict:
    if len(token) != _TOKEN_LENGTH:
        abort(404)
    row = get_store().upload_by_receipt(receipt_hash(token))
    if row is None or row["origin"] != "debtor":
        abort(404)
    return row


@bp.route("/r/<token>")
def receipt(token: str):
    row = _upload_or_404(token)
    store = get_store()
    store.audit("debtor", Action.RECEIPT_VIEWED, row["id"], {})
    metadata, extra = metadata_from_json(row["metadata"])
    call, findings, turns = None, [], []
    if row["status"] == "done" and row["call_id"]:
        call = store.call(row["call_id"])
        findings = store.findings(row["call_id"])
        turns = present.transcript(call, findings)
    return render_template(
        "submit/receipt.html", upload=row, metadata=metadata, extra=extra, call=call, findings=findings, turns=turns,
        token=token, link=url_for("submit.receipt", token=token, _external=True), new=request.args.get("new") == "1",
        refresh=10 if row["status"] in ("queued", "processing") else None,
    )


@bp.route("/r/<token>/voice", methods=["POST"])
def voice(token: str):
    """The debtor taps one of their own lines: that voice is the debtor's, the other the
    collector's. The rules run again, so the findings, this receipt and the documents
    follow (audited)."""
    from monitor.runs.roles import set_roles

    row = _upload_or_404(token)
    if row["status"] != "done" or not row["call_id"]:
        abort(404)
    call = get_store().call(row["call_id"])
    try:
        mine = call.turns[int(request.form.get("turn", ""))].voice
    except (ValueError, IndexError):
        abort(400)
    if call.roles is None or call.roles.voices < 2 or mine not in ("A", "B"):
        abort(400)
    set_roles(get_store(), state().engine, row["call_id"], "B" if mine == "A" else "A", "debtor",
              Action.VOICE_CLAIMED)
    return redirect(url_for("submit.receipt", token=token), code=303)


def _complaint_parties(extra: dict) -> tuple[dict, dict]:
    """What the debtor typed, in the shape monitor/reports.py reads."""
    complainant = {"name": extra.get("complainant_name"), "phone": extra.get("complainant_phone")}
    lender = {"name": extra.get("lender"), "type": extra.get("lender_type") or "unknown",
              "calling_numbers": [extra["caller_number"]] if extra.get("caller_number") else []}
    return complainant, lender


@bp.route("/r/<token>/complaint.<fmt>")
def complaint(token: str, fmt: str):
    row = _upload_or_404(token)
    if row["status"] != "done" or not row["call_id"]:
        abort(404)
    _, extra = metadata_from_json(row["metadata"])
    complainant, lender = _complaint_parties(extra)
    get_store().audit("debtor", Action.COMPLAINT_LETTER, row["id"], {"format": fmt})
    return report_response(
        "complaint", fmt,
        lambda reports: reports.complaint_context(get_store(), row["call_id"], complainant, lender),
        "complaint",
    )


@bp.route("/r/<token>/evidence.zip")
def evidence(token: str):
    row = _upload_or_404(token)
    if row["status"] != "done" or not row["call_id"]:
        abort(404)
    _, extra = metadata_from_json(row["metadata"])
    complainant, lender = _complaint_parties(extra)
    return evidence_response(row["call_id"], "complaint", "evidence", "debtor", complainant=complainant, lender=lender)
