"""JSON API, authenticated with ``Authorization: Bearer <token>`` (see
``create_api_token``); the gate in ``create_app`` checks the token before any view runs.

    POST /api/v1/recordings          multipart: file (one or more), started_at, collector_id,
                                     debtor_id, direction, caller_number, collector_channel
                                     → 202 {"uploads": [{"id", "status", "url"}]}
    GET  /api/v1/uploads/<id>        status: queued | processing | done | failed (+ call_id, error)
    GET  /api/v1/calls/<call_id>     the call, its findings and every decision on them
    GET  /api/v1/findings            active findings; filters since, until (YYYY-MM-DD),
                                     category, collector, review_status, and on the
                                     call's signals raised_voice (any | collector),
                                     overtalk_at_least, collector_share_at_least (0–1)
                                     (as `monitor export`); debtor ids masked for a
                                     reviewer's token
"""

from __future__ import annotations

import json
from datetime import date

from flask import Blueprint, abort, g, jsonify, request, url_for

from monitor.audit import Action
from monitor.models import CATEGORIES
from monitor.runs.roles import call_signals, turn_signals
from . import get_store, present
from .signal_filters import BadSignalFilter, signal_filters
from .staff import accept_files
from .uploads import Refused

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _upload_json(row: dict) -> dict:
    return {
        "id": row["id"], "status": row["status"], "error": row["error"], "call_id": row["call_id"],
        "filename": row["filename"], "sha256": row["sha256"], "origin": row["origin"],
        "created_at": row["created_at"], "updated_at": row["updated_at"],
        "url": url_for("api.upload", upload_id=row["id"]),
        "call_url": url_for("api.call", call_id=row["call_id"]) if row["call_id"] and row["status"] == "done" else None,
    }


@bp.route("/recordings", methods=["POST"])
def recordings():
    files = request.files.getlist("file")
    if not any(f.filename for f in files):
        return jsonify(error="no_file", message="send the recording as multipart field 'file'"), 400
    try:
        queued, refused = accept_files(files, request.form, "api")
    except Refused as refusal:
        return jsonify(error="refused", message=refusal.message), refusal.status
    store = get_store()
    body = {
        "uploads": [_upload_json(store.upload(upload_id)) for upload_id in queued],
        "refused": [{"filename": r.filename, "message": r.message} for r in refused],
    }
    return jsonify(body), (202 if queued else refused[0].status)


@bp.route("/uploads/<upload_id>")
def upload(upload_id: str):
    row = get_store().upload(upload_id)
    if row is None or row["origin"] == "debtor":
        abort(404)  # debtor submissions are reached through the staff pages only
    return jsonify(_upload_json(row))


def _finding_json(stored, reviews: list[dict]) -> dict:
    return {
        "id": stored.id, **stored.finding.to_contract(), "rules_version": stored.rules_version,
        "active": stored.active, "decision": stored.decision,
        "reviews": [{"decision": r["decision"], "note": r["note"], "reviewer": r["reviewer"], "decided_at": r["decided_at"]}
                    for r in reviews],
    }


@bp.route("/calls/<call_id>")
def call(call_id: str):
    store = get_store()
    row = store.call_row(call_id)
    if row is None:
        abort(404)
    store.audit(g.user["username"], Action.CALL_VIEWED_API, call_id, {})
    reviews: dict[str, list] = {}
    for review in store.reviews(call_id):
        reviews.setdefault(review["finding_id"], []).append(review)
    call = store.call(call_id) if row["status"] != "failed" else None
    return jsonify({
        "id": row["id"], "status": row["status"], "error": row["error"], "origin": row["origin"],
        "sha256": row["sha256"], "duration": row["duration"], "started_at": row["started_at"],
        "collector_id": row["collector_id"], "debtor_id": row["debtor_id"], "direction": row["direction"],
        "categories": json.loads(row["categories"] or "[]"), "max_severity": row["max_severity"],
        "rules_version": row["rules_version"],
        "turns": [{"speaker": t.speaker, "text": t.text, "start": t.start, "end": t.end, **turn_signals(t)}
                  for t in call.turns] if call else [],
        "findings": [_finding_json(f, reviews.get(f.id, [])) for f in store.findings(call_id)],
        **(call_signals(call) if call else {"signals": None, "roles": None, "notes": []}),
    })


@bp.route("/findings")
def findings():
    args = request.args
    status = args.get("review_status")
    if status and status not in ("unreviewed", "confirmed", "dismissed"):
        return jsonify(error="bad_request", message="review_status: unreviewed, confirmed or dismissed"), 400
    category = args.get("category")
    if category and category not in CATEGORIES:
        return jsonify(error="bad_request", message=f"category: one of {', '.join(CATEGORIES)}"), 400
    dates = {}
    for name in ("since", "until"):
        value = args.get(name)
        if value:
            try:
                dates[name] = date.fromisoformat(value).isoformat()
            except ValueError:
                return jsonify(error="bad_request",
                               message=f"{name}: expected a date as YYYY-MM-DD (e.g. 2025-03-01), not {value[:40]!r}"), 400
    if dates.get("since") and dates.get("until") and dates["since"] > dates["until"]:
        return jsonify(error="bad_request", message="since is after until"), 400
    try:
        signals = signal_filters(args, percent=False)
    except BadSignalFilter as bad:
        return jsonify(error="bad_request", message=bad.english), 400
    store = get_store()
    rows = list(store.export_rows(since=dates.get("since"), until=dates.get("until"), category=category,
                                  collector=args.get("collector"), review_status=status, **signals))
    reviewer = g.user["role"] != "admin"
    for row in rows:
        row.pop("source", None)  # where the server keeps the file is not the caller's business
        if reviewer:  # an export: ID numbers masked for reviewers, as in the queue and CSV
            row["debtor_id"] = present.mask(row["debtor_id"]) or None
        row["legal_basis"] = json.loads(row["legal_basis"] or "[]")
        row["speaker_verified"] = bool(row["speaker_verified"])
    store.audit(g.user["username"], Action.FINDINGS_READ_API, "findings", {k: v for k, v in args.items()})
    return jsonify({"findings": rows, "count": len(rows)})
