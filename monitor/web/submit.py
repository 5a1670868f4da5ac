"""The debtor portal: no account. A debtor uploads a recording with what they know and
gets a receipt page at a secret link (a random token; only its SHA-256 is stored). The
link shows that submission and nothing else; the call also enters the staff queue as
debtor evidence (origin "debtor")."""

from __future__ import annotations

import hashlib
import json
import secrets
import tempfile
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for

from monitor.audit import Action
from monitor.errors import InputError
from monitor.runs.metadata import CallMetadata, metadata_from_form, metadata_from_json
from monitor.store import Store
from . import get_store, present, state
from .reporting import complete_debtor_side, evidence_response, report_response
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
        # The transcript and findings are shared by the recording's hash; nothing else of
        # a record staff may have stored first (see _own_record for the documents).
        call = store.call(row["call_id"])
        # Numbered afresh: a stored finding's id names the call it was first stored under.
        findings = [replace(f, id=f"finding-{n}", call_id="") for n, f in enumerate(store.findings(row["call_id"]), 1)]
        turns = present.transcript(call, findings)
    cards = present.by_sentence(findings)
    open_cards = [c for c in cards if any(m.decision != "dismissed" for m in c["members"])]
    return render_template(
        "submit/receipt.html", upload=row, metadata=metadata, extra=extra, call=call, findings=findings, turns=turns,
        cards=cards, open_cards=open_cards,
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


def _corrections() -> dict[str, str]:
    """The debtor's corrected quotes from the receipt page's form (``quote-<finding id>``);
    the stored transcript is never changed, the letter shows the original beside them."""
    return {key[len("quote-"):]: value.strip() for key, value in request.form.items()
            if key.startswith("quote-") and value.strip()}


_PRIVATE = ("complainant_name", "complainant_phone")


@contextmanager
def _own_record(row: dict):
    """The debtor's submission as a record of its own, in a private store made for this
    download: the shared transcript and findings (with each finding's latest decision,
    no reviewer or note), the debtor's own call time, number and lender, and none of
    the metadata staff gave the same recording. Yields (store, call id)."""
    metadata, extra = metadata_from_json(row["metadata"])
    started = metadata.started_at
    own = {
        "id": metadata.call_id or f"debtor-{row['id'][:8]}", "origin": "debtor", "source": row["path"],
        "started_at": started.isoformat() if started else None,
        "started_utc": started.astimezone(timezone.utc).isoformat() if started else None,
        "direction": metadata.direction, "caller_number": extra.get("caller_number"),
        "metadata": json.dumps({k: v for k, v in extra.items() if k not in _PRIVATE}, ensure_ascii=False),
    }
    with tempfile.TemporaryDirectory(prefix="monitor-receipt-") as folder:
        private = Store(f"{folder}/own.db")
        try:
            yield private, get_store().copy_call(row["call_id"], private, own)
        finally:
            private.close()


@bp.route("/r/<token>/complaint.<fmt>", methods=["GET", "POST"])
def complaint(token: str, fmt: str):
    row = _upload_or_404(token)
    if row["status"] != "done" or not row["call_id"]:
        abort(404)
    _, extra = metadata_from_json(row["metadata"])
    complainant, lender = _complaint_parties(extra)
    complete_debtor_side(row["call_id"])
    corrections = _corrections() if request.method == "POST" else {}
    get_store().audit("debtor", Action.COMPLAINT_LETTER, row["id"], {"format": fmt, "corrected_quotes": len(corrections)})
    with _own_record(row) as (private, call_id):
        # The receipt numbers findings finding-1, finding-2 … in the store's order (no
        # shared ids shown to the debtor); the private copy keeps that order.
        numbered = {f"finding-{n}": stored.id for n, stored in enumerate(private.findings(call_id), 1)}
        own = {numbered[key]: text for key, text in corrections.items() if key in numbered}
        return report_response(
            "complaint", fmt,
            # Corrections are passed only when the debtor made some: the plain download stays a plain call.
            lambda reports: reports.complaint_context(private, call_id, complainant, lender,
                                                      **({"corrections": own} if own else {})),
            "complaint",
        )


@bp.route("/r/<token>/evidence.zip")
def evidence(token: str):
    row = _upload_or_404(token)
    if row["status"] != "done" or not row["call_id"]:
        abort(404)
    _, extra = metadata_from_json(row["metadata"])
    complainant, lender = _complaint_parties(extra)
    complete_debtor_side(row["call_id"])
    with _own_record(row) as (private, call_id):
        response = evidence_response(call_id, "complaint", "evidence", "debtor", store=private,
                                     complainant=complainant, lender=lender)
    get_store().audit("debtor", Action.EVIDENCE_EXPORTED, row["id"], {"kind": "complaint", "call_id": row["call_id"]})
    return response
