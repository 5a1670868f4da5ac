"""The document model written into a Word file with python-docx: a centred title in
black (not Word's blue Title style), black headings, fixed column widths from the model
(Chinese never stacks one character a line), page numbers on the document's pages
(none on the appendix), the appendix in its own section on a new page, and zh-CN as the
East Asian language, so that Word and LibreOffice pick a Simplified Chinese font."""

from __future__ import annotations

import json
from io import BytesIO

from docx import Document as WordDocument
from docx.enum.section import WD_SECTION
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt, RGBColor

from ..model import Cell, Document, Heading, Items, Paragraph, Span, Table
from .html import TEMPLATE_DIR

BLACK = RGBColor(0, 0, 0)
BLANK_RED = RGBColor(0xA4, 0, 0)
LANGUAGE = {"val": "zh-CN", "eastAsia": "zh-CN", "bidi": "ar-SA"}


def docx_style() -> dict:
    return json.loads((TEMPLATE_DIR / "docx-style.json").read_text(encoding="utf-8"))


def set_fonts(element, latin: str, east_asian: str) -> None:
    """Set the Latin and East-Asian fonts of a run or style. Word picks the font for
    Chinese characters from w:eastAsia only; python-docx's ``font.name`` sets just the
    Latin ones. Theme fonts win over named ones, so they are removed."""
    properties = element.get_or_add_rPr()
    fonts = properties.find(qn("w:rFonts"))
    if fonts is None:
        fonts = OxmlElement("w:rFonts")
        properties.insert(0, fonts)
    for theme in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
        fonts.attrib.pop(qn(theme), None)
    for attribute, value in (("w:ascii", latin), ("w:hAnsi", latin), ("w:cs", latin), ("w:eastAsia", east_asian)):
        fonts.set(qn(attribute), value)


def set_language(properties) -> None:
    language = properties.find(qn("w:lang"))
    if language is None:
        language = OxmlElement("w:lang")
        properties.append(language)
    for key, value in LANGUAGE.items():
        language.set(qn(f"w:{key}"), value)


class _Writer:
    def __init__(self, style: dict):
        self.style = style
        self.word = WordDocument()
        page = style["page"]
        section = self.word.sections[0]
        section.page_width, section.page_height = Cm(page["width_cm"]), Cm(page["height_cm"])
        for side in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
            setattr(section, side, Cm(page["margin_cm"]))
        self.usable_cm = page["width_cm"] - 2 * page["margin_cm"]
        # The document's default run properties: zh-CN for East Asian text.
        defaults = self.word.styles.element.find(qn("w:docDefaults"))
        rpr_default = defaults.find(qn("w:rPrDefault")) if defaults is not None else None
        if rpr_default is not None:
            rpr = rpr_default.find(qn("w:rPr"))
            if rpr is None:
                rpr = OxmlElement("w:rPr")
                rpr_default.append(rpr)
            set_language(rpr)
        body, heading = style["body"], style["heading"]
        for name, fonts, size in (("Normal", body, body["size_pt"]), ("Heading 1", heading, heading["size_pt"][0]),
                                  ("Heading 2", heading, heading["size_pt"][1])):
            word_style = self.word.styles[name]
            word_style.font.size = Pt(size)
            word_style.font.color.rgb = BLACK
            word_style.font.italic = False
            set_fonts(word_style.element, fonts["latin"], fonts["east_asian"])
            set_language(word_style.element.get_or_add_rPr())

    # -- inline -----------------------------------------------------------------------

    def runs(self, paragraph, spans: list[Span], size: float | None = None, bold: bool = False, fonts: dict | None = None) -> None:
        for span in spans:
            if not span.text:
                continue
            run = paragraph.add_run(span.text)
            chosen = self.style["mono"] if span.style == "mono" else (fonts or self.style["body"])
            set_fonts(run._element, chosen["latin"], chosen["east_asian"])
            run.bold = True if (bold or span.style == "bold") else None
            run.italic = False
            if span.style == "blank":
                run.font.color.rgb = BLANK_RED
            if span.style == "small":
                run.font.size = Pt((size or self.style["body"]["size_pt"]) - 1)
            elif span.style == "mono":
                run.font.size = Pt(min(size or 99, 8))
            elif size:
                run.font.size = Pt(size)

    # -- blocks -----------------------------------------------------------------------

    def block(self, block) -> None:
        if isinstance(block, Heading):
            paragraph = self.word.add_paragraph(style=f"Heading {block.level}")
            self.runs(paragraph, [Span(block.text)], fonts=self.style["heading"])
            paragraph.paragraph_format.keep_with_next = True
        elif isinstance(block, Paragraph):
            self.paragraph(block)
        elif isinstance(block, Items):
            for number, item in enumerate(block.items, start=1):
                paragraph = self.word.add_paragraph()
                paragraph.paragraph_format.left_indent = Cm(0.75)
                paragraph.paragraph_format.first_line_indent = Cm(-0.75)
                self.runs(paragraph, [Span(f"{number}. " if block.ordered else "• "), *item])
        elif isinstance(block, Table):
            self.table(block)
        else:
            raise TypeError(f"not a document block: {block!r}")

    def paragraph(self, block: Paragraph) -> None:
        paragraph = self.word.add_paragraph()
        role = block.role
        heading = self.style["heading"]
        if role == "title":
            paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
            self.runs(paragraph, block.content, size=heading["title_size_pt"], bold=True, fonts=heading)
            return
        if role == "subtitle":
            paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
            self.runs(paragraph, block.content, size=heading["size_pt"][1], fonts=heading)
            return
        if role == "closing":
            paragraph.paragraph_format.first_line_indent = Pt(2 * self.style["body"]["size_pt"])
        if role == "sign":
            paragraph.paragraph_format.space_before = Pt(18)
        if role == "notice":
            _border(paragraph)
        size = self.style["body"]["size_pt"] - 1 if role in ("notice", "small") else None
        self.runs(paragraph, block.content, size=size, bold=role == "addressee")

    def table(self, table: Table) -> None:
        rows = ([table.head] if table.head else []) + [row for body in table.bodies for row in body]
        columns = len(table.widths_cm)
        word_table = self.word.add_table(rows=len(rows), cols=columns)
        word_table.style = self.word.styles["Table Grid"]
        word_table.alignment = WD_TABLE_ALIGNMENT.CENTER
        word_table.autofit = False
        _fixed_layout(word_table)
        scale = self.usable_cm / sum(table.widths_cm)
        widths = [Cm(w * scale) for w in table.widths_cm]
        for column, width in zip(word_table.columns, widths):
            column.width = width  # the grid: what LibreOffice reads
        size = self.style["table"]["size_pt"]
        taken: set[tuple[int, int]] = set()
        for r, cells in enumerate(rows):
            column = 0
            for cell in cells:
                while (r, column) in taken:
                    column += 1
                last_row, last_column = min(r + cell.rowspan, len(rows)) - 1, min(column + cell.colspan, columns) - 1
                word_cell = word_table.cell(r, column)
                if (last_row, last_column) != (r, column):
                    word_cell = word_cell.merge(word_table.cell(last_row, last_column))
                taken.update((i, j) for i in range(r, last_row + 1) for j in range(column, last_column + 1))
                self.cell(word_cell, cell, size, table.role == "fields" and column == 0)
                column = last_column + 1
        for row in word_table.rows:
            for word_cell, width in zip(row.cells, widths):
                word_cell.width = width  # each cell: what Word reads
        if table.head:
            _repeat_header(word_table.rows[0])
        self.word.add_paragraph()

    def cell(self, word_cell, cell: Cell, size: float, label: bool) -> None:
        fonts = self.style["heading"] if cell.header else self.style["body"]
        first = True
        for line in cell.lines:
            paragraph = word_cell.paragraphs[0] if first else word_cell.add_paragraph()
            first = False
            self.runs(paragraph, line, size=size, bold=cell.header and not label, fonts=fonts)
        if cell.shade:
            _shade(word_cell, "EEEEEE" if not label else "F4F4F4")

    def footer(self, section, text: str | None) -> None:
        """Page numbers (第 PAGE 页), or a fixed label (the appendix). No page total: Word's
        SECTIONPAGES would count the letter without the appendix, but LibreOffice shows
        that field's cached text, so a total would be wrong there; the PDF has the total."""
        section.footer.is_linked_to_previous = False
        paragraph = section.footer.paragraphs[0]
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
        fonts = self.style["body"]
        if text is not None:
            self.runs(paragraph, [Span(text)], size=8)
            return
        for piece in ("第 ", "PAGE", " 页"):
            if piece.isupper():
                _field(paragraph, piece, fonts)
            else:
                self.runs(paragraph, [Span(piece)], size=8)

    def write(self, document: Document) -> bytes:
        self.word.core_properties.title = f"{document.title} — {document.subtitle}"
        self.word.core_properties.language = "zh-CN"
        for block in document.blocks:
            self.block(block)
        self.footer(self.word.sections[0], None)
        if document.appendix:
            section = self.word.add_section(WD_SECTION.NEW_PAGE)
            self.footer(section, document.appendix_label)
            for block in document.appendix:
                self.block(block)
        buffer = BytesIO()
        self.word.save(buffer)
        return buffer.getvalue()


def _field(paragraph, instruction: str, fonts: dict) -> None:
    def run_with(child):
        run = paragraph.add_run()
        set_fonts(run._element, fonts["latin"], fonts["east_asian"])
        run.font.size = Pt(8)
        run._element.append(child)
        return run

    begin = OxmlElement("w:fldChar")
    begin.set(qn("w:fldCharType"), "begin")
    run_with(begin)
    text = OxmlElement("w:instrText")
    text.set(qn("xml:space"), "preserve")
    text.text = f" {instruction} "
    run_with(text)
    separate = OxmlElement("w:fldChar")
    separate.set(qn("w:fldCharType"), "separate")
    run_with(separate)
    placeholder = paragraph.add_run("1")
    placeholder.font.size = Pt(8)
    end = OxmlElement("w:fldChar")
    end.set(qn("w:fldCharType"), "end")
    run_with(end)


def _fixed_layout(word_table) -> None:
    properties = word_table._tbl.tblPr
    layout = OxmlElement("w:tblLayout")
    layout.set(qn("w:type"), "fixed")
    properties.append(layout)


def _repeat_header(row) -> None:
    properties = row._tr.get_or_add_trPr()
    header = OxmlElement("w:tblHeader")
    header.set(qn("w:val"), "true")
    properties.append(header)


def _shade(word_cell, fill: str) -> None:
    shading = OxmlElement("w:shd")
    shading.set(qn("w:val"), "clear")
    shading.set(qn("w:color"), "auto")
    shading.set(qn("w:fill"), fill)
    word_cell._tc.get_or_add_tcPr().append(shading)


def _border(paragraph) -> None:
    properties = paragraph._p.get_or_add_pPr()
    borders = OxmlElement("w:pBdr")
    for side in ("top", "left", "bottom", "right"):
        edge = OxmlElement(f"w:{side}")
        for key, value in (("val", "single"), ("sz", "4"), ("space", "4"), ("color", "888888")):
            edge.set(qn(f"w:{key}"), value)
        borders.append(edge)
    properties.append(borders)


def docx_bytes(document: Document) -> bytes:
    return _Writer(docx_style()).write(document)
