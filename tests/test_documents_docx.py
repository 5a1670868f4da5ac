"""The DOCX as Word and LibreOffice show it: a centred black title (not Word's blue
Title style), black headings, no italics, fixed column widths wide enough for Chinese,
page numbers counting the letter only, the guidance in its own section on a new page,
zh-CN as East Asian language. Rendered by LibreOffice (when installed) to PDF and PNG
under test-output/documents/ for a person to look at."""

from __future__ import annotations

import re
import shutil
import subprocess

import docx
import pytest
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn

from monitor.documents.reports import render

from .conftest import REPO
from .test_reports import COMPLAINANT, LENDER, compact, contexts, instance, poppler, sample  # noqa: F401 (fixtures)

OUTPUT = REPO / "test-output" / "documents"


@pytest.fixture(scope="module")
def letter_docx(contexts, tmp_path_factory):  # noqa: F811
    OUTPUT.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind in ("complaint", "incident"):
        path = OUTPUT / f"{kind}.docx"
        path.write_bytes(render(contexts[kind], kind, "docx"))
        paths[kind] = path
    return paths


@pytest.mark.parametrize("kind", ["complaint", "incident"])
def test_title_headings_and_language(letter_docx, kind):
    document = docx.Document(str(letter_docx[kind]))
    title = document.paragraphs[0]
    assert title.alignment == WD_ALIGN_PARAGRAPH.CENTER and title.style.name != "Title"
    for name in ("Heading 1", "Heading 2"):
        color = document.styles[name].font.color
        assert color.rgb == docx.shared.RGBColor(0, 0, 0) and color.theme_color is None
    assert not any(run.italic for p in document.paragraphs for run in p.runs)
    languages = document.styles.element.findall(".//" + qn("w:lang"))
    assert languages and all(lang.get(qn("w:eastAsia")) == "zh-CN" for lang in languages)


@pytest.mark.parametrize("kind", ["complaint", "incident"])
def test_columns_are_wide_enough_for_chinese(letter_docx, kind):
    document = docx.Document(str(letter_docx[kind]))
    for table in document.tables:
        assert table._tbl.tblPr.find(qn("w:tblLayout")).get(qn("w:type")) == "fixed"
        widths = [column.width.cm for column in table.columns]
        assert abs(sum(widths) - 17.0) < 0.1
        # Each header on one line: a 9 pt Chinese character is about 0.32 cm, plus the cell's padding.
        header = [cell.text for cell in table.rows[0].cells]
        for text, width in zip(header, widths):
            assert width >= 0.35 * len(text) + 0.45 or len(text) > 6, (text, width, kind)


def test_page_numbers_count_the_letter_not_the_guidance(letter_docx):
    document = docx.Document(str(letter_docx["complaint"]))
    assert len(document.sections) == 2
    from docx.enum.section import WD_SECTION

    assert document.sections[1].start_type == WD_SECTION.NEW_PAGE
    first = "".join(document.sections[0].footer._element.itertext())
    assert "PAGE" in first and "第" in first
    assert "附页（递交时可删去）" in "".join(document.sections[1].footer._element.itertext())


@pytest.mark.slow
def test_libreoffice_shows_it_in_simplified_chinese(letter_docx, tmp_path):
    office = shutil.which("soffice") or shutil.which("libreoffice")
    if not office:
        pytest.skip("LibreOffice not installed (scripts/system-packages.sh installs libreoffice-writer-nogui)")
    for kind, path in letter_docx.items():
        done = subprocess.run([office, f"-env:UserInstallation=file://{tmp_path}/profile", "--headless",
                               "--convert-to", "pdf", "--outdir", str(OUTPUT), str(path)],
                              capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr
        pdf = OUTPUT / f"{kind}.pdf"
        fonts = poppler("pdffonts", str(pdf))
        # Noto CJK embedded. LibreOffice names a subset of the Noto CJK collection (.ttc)
        # after its first face (…CJKjp…) whichever face it used, so the name cannot tell SC
        # from JP here; the DOCX's own font names and zh-CN language are checked above.
        assert "NotoSansCJK" in fonts and "NotoSerifCJK" in fonts, fonts
        for old in OUTPUT.glob(f"{kind}-lo-*.png"):
            old.unlink()
        poppler("pdftoppm", "-png", "-r", "70", str(pdf), str(OUTPUT / f"{kind}-lo"))
        assert list(OUTPUT.glob(f"{kind}-lo-*.png"))
        text = compact(poppler("pdftotext", "-enc", "UTF-8", str(pdf), "-"))
        assert "序号" in text and "〔请填写〕" in text or kind == "incident"
        if kind == "complaint":
            pages = int(re.search(r"Pages:\s+(\d+)", poppler("pdfinfo", str(pdf))).group(1))
            assert pages >= 3 and "第1页" in text and "第2页" in text
            assert f"第{pages}页" not in text  # the guidance page carries no number
