"""Documents in each format, from one document model (../model.py): HTML, PDF (that
HTML printed by WeasyPrint) and DOCX (python-docx, written from the same blocks)."""

from __future__ import annotations

from ..facts import ReportError
from ..layout import document

KINDS = ("complaint", "incident")
FORMATS = ("html", "pdf", "docx")


def check(context: dict, kind: str) -> None:
    if kind not in KINDS:
        raise ReportError(f"unknown report kind {kind!r}; expected one of: {', '.join(KINDS)}")
    if context.get("kind") != kind:
        raise ReportError(f"this context is for a {context.get('kind')!r} report, not {kind!r}")


def render_html(context: dict, kind: str, standalone: bool = True) -> str:
    """The report as HTML: a whole page, or (``standalone=False``) one ``<article>`` with
    its own scoped styles, to embed in a page of the web app."""
    from .html import html_page

    check(context, kind)
    return html_page(document(context), standalone=standalone)


def render(context: dict, kind: str, fmt: str) -> bytes:
    """The report in ``fmt`` (html, pdf or docx) as bytes."""
    if fmt not in FORMATS:
        raise ReportError(f"unknown report format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    check(context, kind)
    model = document(context)
    if fmt == "html":
        from .html import html_page

        return html_page(model).encode("utf-8")
    if fmt == "pdf":
        from .pdf import pdf_bytes

        return pdf_bytes(model)
    from .docx import docx_bytes

    return docx_bytes(model)
