"""The document model as HTML, styled by templates/reports/report.css."""

from __future__ import annotations

from pathlib import Path

from markupsafe import escape

from ..model import Cell, Document, Heading, Items, Paragraph, Span, Table

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates" / "reports"
# The printable width the column widths of the model are fractions of (A4, report.css margins).
PAGE_WIDTH_CM = 17.0


def css() -> str:
    return (TEMPLATE_DIR / "report.css").read_text(encoding="utf-8")


def _spans(spans: list[Span]) -> str:
    out = []
    for span in spans:
        text = str(escape(span.text))
        out.append(f'<span class="{span.style}">{text}</span>' if span.style else text)
    return "".join(out)


def _cell(cell: Cell) -> str:
    tag = "th" if cell.header else "td"
    attributes = "".join(f' {name}="{value}"' for name, value in (("colspan", cell.colspan), ("rowspan", cell.rowspan)) if value > 1)
    return f"<{tag}{attributes}>" + "<br>".join(_spans(line) for line in cell.lines) + f"</{tag}>"


def _table(table: Table) -> str:
    total = sum(table.widths_cm)
    columns = "".join(f'<col style="width:{100 * w / total:.1f}%">' for w in table.widths_cm)
    parts = [f'<table class="{table.role}"><colgroup>{columns}</colgroup>']
    # The header row is a tbody, not a thead: WeasyPrint never breaks between a thead and
    # the first row, so a table starting low on a page would split its first group.
    if table.head:
        parts.append('<tbody class="head"><tr>' + "".join(_cell(c) for c in table.head) + "</tr></tbody>")
    for body in table.bodies:
        parts.append('<tbody class="group">' + "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in body) + "</tbody>")
    return "".join(parts) + "</table>"


def block_html(block) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level + 1}>{escape(block.text)}</h{block.level + 1}>"
    if isinstance(block, Paragraph):
        if block.role == "title":
            return f"<h1>{_spans(block.content)}</h1>"
        return f'<p class="{block.role}">{_spans(block.content)}</p>' if block.role else f"<p>{_spans(block.content)}</p>"
    if isinstance(block, Items):
        tag = "ol" if block.ordered else "ul"
        return f"<{tag}>" + "".join(f"<li>{_spans(item)}</li>" for item in block.items) + f"</{tag}>"
    if isinstance(block, Table):
        return _table(block)
    raise TypeError(f"not a document block: {block!r}")


def article(document: Document, blocks: list | None = None, appendix: bool = True) -> str:
    body = "\n".join(block_html(b) for b in (document.blocks if blocks is None else blocks))
    if appendix and document.appendix:
        body += '\n<section class="appendix">' + "\n".join(block_html(b) for b in document.appendix) + "</section>"
    return f'<article class="report report-{document.kind}" lang="zh-CN">\n{body}\n</article>'


def html_page(document: Document, standalone: bool = True, blocks: list | None = None, appendix: bool = True,
              extra_css: str = "") -> str:
    inner = article(document, blocks, appendix)
    if not standalone:
        return inner.replace(">\n", f">\n<style>\n{css()}\n</style>\n", 1)
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="generator" content="collection-call-monitor">\n'
        f"<title>{escape(document.title)} — {escape(document.subtitle)}</title>\n"
        f"<style>\n{css()}\n{extra_css}</style>\n</head>\n<body>\n{inner}\n</body>\n</html>\n"
    )
