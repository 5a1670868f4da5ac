"""The document model both renderers read: headings, paragraphs, lists and tables of
text spans. The HTML (and so the PDF) and the DOCX are written from the same blocks,
so the three formats never disagree."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Span:
    text: str
    style: str = ""  # "", "bold", "mono", "small", "blank"


def spans(value, style: str = "") -> list[Span]:
    """``value`` as spans, its 〔…〕 blanks marked so they stand out until filled in."""
    text = "" if value is None else str(value)
    out = []
    for piece in re.split(r"(〔[^〔〕]*〕)", text):
        if piece:
            out.append(Span(piece, "blank" if piece.startswith("〔") and piece.endswith("〕") else style))
    return out


@dataclass
class Heading:
    text: str
    level: int = 1  # 1: a part of the document, 2: within a part


@dataclass
class Paragraph:
    content: list[Span]
    role: str = ""  # title, subtitle, notice, small, sign, addressee, closing, right


@dataclass
class Items:
    items: list[list[Span]]
    ordered: bool = True


@dataclass
class Cell:
    lines: list[list[Span]]  # one entry a line (a list inside a cell: one item a line)
    header: bool = False
    colspan: int = 1
    rowspan: int = 1
    shade: bool = False


def cell(value, style: str = "", **options) -> Cell:
    return Cell([spans(value, style)], **options)


@dataclass
class Table:
    widths_cm: list[float]  # the column widths; renderers scale them to the page
    head: list[Cell] | None
    bodies: list[list[list[Cell]]]  # groups of rows kept together on a page
    role: str = "grid"  # grid, or fields (label | value)


@dataclass
class Document:
    kind: str
    title: str
    subtitle: str
    blocks: list = field(default_factory=list)
    # Pages after the document proper (the debtor's guidance): a new page, not counted
    # in the document's page numbers, easy to leave out when filing.
    appendix: list = field(default_factory=list)
    appendix_label: str = ""
