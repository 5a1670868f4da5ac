"""The documents' public face, kept for the CLI and the web app: build a context with
``complaint_context`` / ``incident_context``, render it with ``render(context, kind,
fmt)``. The judgement lives in complaint.py and incident.py, the shared facts in
facts.py and clauses.py, the layout in layout.py and the formats under render/."""

from __future__ import annotations

from .clauses import cited_clauses, rule_titles
from .complaint import (
    AUTOMATIC_MARK,
    CORRECTED_MARK,
    LENDER_TYPES,
    classify_lender,
    complaint_channels,
    complaint_context,
    complaint_requests,
)
from .facts import ReportError, clip_file_name
from .formatting import BLANK, TO_COMPLETE, mask, mask_id_number, time_range
from .incident import incident_context
from .render import FORMATS, KINDS, render, render_html

__all__ = [
    "AUTOMATIC_MARK", "BLANK", "CORRECTED_MARK", "FORMATS", "KINDS", "LENDER_TYPES", "TO_COMPLETE", "ReportError",
    "cited_clauses", "classify_lender", "clip_file_name", "complaint_channels", "complaint_context",
    "complaint_requests", "incident_context", "mask", "mask_id_number", "render", "render_html", "rule_titles",
    "time_range",
]
