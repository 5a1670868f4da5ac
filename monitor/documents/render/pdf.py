"""The HTML printed by WeasyPrint. The appendix (the debtor's guidance) is laid out as
its own document and appended: "第 N 页 / 共 M 页" counts the letter's pages only."""

from __future__ import annotations

from ..facts import ReportError
from ..model import Document
from .html import TEMPLATE_DIR, html_page

_APPENDIX_PAGE = """@page {{ @bottom-center {{ content: "{label}"; }} }}"""


def pdf_bytes(document: Document) -> bytes:
    try:
        import weasyprint
    except OSError as error:  # WeasyPrint is installed but Pango is not
        raise ReportError(f"PDF output needs the Pango libraries (Debian: libpango-1.0-0 libpangoft2-1.0-0): {error}") from error
    main = weasyprint.HTML(string=html_page(document, appendix=False), base_url=str(TEMPLATE_DIR)).render()
    if not document.appendix:
        return main.write_pdf()
    extra = _APPENDIX_PAGE.format(label=document.appendix_label)
    appendix = weasyprint.HTML(string=html_page(document, blocks=document.appendix, appendix=False, extra_css=extra),
                               base_url=str(TEMPLATE_DIR)).render()
    return main.copy(main.pages + appendix.pages).write_pdf()
