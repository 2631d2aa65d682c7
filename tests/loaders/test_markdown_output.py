"""Structured formats come out as markdown with headings the chunker can follow."""

from __future__ import annotations

from pathlib import Path

from rag_pipeline.loaders import load_file


def test_docx_headings_become_markdown_headings(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.core_properties.title = "Field Guide"
    document.add_heading("Birds", level=1)
    document.add_paragraph("Birds have feathers and lay eggs.")
    document.add_heading("Owls", level=2)
    document.add_paragraph("Owls hunt at night.")
    document.add_paragraph("Barn owl", style="List Bullet")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Species", "Wingspan"
    table.cell(1, 0).text, table.cell(1, 1).text = "Barn owl", "95 cm"
    path = tmp_path / "guide.docx"
    document.save(str(path))

    (doc,) = load_file(path)
    assert doc.markdown is True
    assert doc.metadata["title"] == "Field Guide"
    lines = doc.text.splitlines()
    assert "# Birds" in lines
    assert "## Owls" in lines
    assert lines.index("# Birds") < lines.index("## Owls")
    assert "Owls hunt at night." in lines
    assert "- Barn owl" in lines
    assert "| Species | Wingspan |" in lines
    assert "| Barn owl | 95 cm |" in lines


def test_html_headings_lists_and_tables_become_markdown(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>Tea &amp; Coffee</title></head><body>"
        "<h1>Drinks</h1><p>Hot drinks are popular in winter.</p>"
        "<h2>Tea</h2><ul><li>Green tea</li><li>Black tea</li></ul>"
        "<table><tr><th>Drink</th><th>Caffeine</th></tr>"
        "<tr><td>Espresso</td><td>63 mg</td></tr></table>"
        "</body></html>",
        encoding="utf-8",
    )
    (doc,) = load_file(path)
    assert doc.markdown is True
    assert doc.metadata["title"] == "Tea & Coffee"
    lines = doc.text.splitlines()
    assert "# Drinks" in lines
    assert "## Tea" in lines
    assert "- Green tea" in lines and "- Black tea" in lines
    assert "| Drink | Caffeine |" in lines
    assert "| Espresso | 63 mg |" in lines


def test_html_in_declared_legacy_charset(tmp_path: Path) -> None:
    path = tmp_path / "jp.html"
    html = '<html><head><meta charset="shift_jis"><title>東京</title></head><body><p>晴れです</p>'
    path.write_bytes(html.encode("shift_jis"))
    (doc,) = load_file(path)
    assert doc.metadata["title"] == "東京"
    assert "晴れです" in doc.text


def test_pptx_slide_titles_are_headings(tmp_path: Path) -> None:
    from pptx import Presentation

    presentation = Presentation()
    for title, body in [("Roadmap", "Ship the loader"), ("Risks", "Scanned PDFs")]:
        slide = presentation.slides.add_slide(presentation.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    path = tmp_path / "deck.pptx"
    presentation.save(str(path))

    docs = load_file(path)
    assert [doc.metadata["slide"] for doc in docs] == [1, 2]
    assert docs[0].text.startswith("# Roadmap")
    assert "Ship the loader" in docs[0].text
    assert docs[1].text.startswith("# Risks")
    assert all(doc.markdown for doc in docs)


def test_xlsx_sheet_name_is_heading(tmp_path: Path) -> None:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Prices"
    sheet.append([None, "Item", "Price"])
    sheet.append([None, "Apples", 1.99])
    workbook.create_sheet("Empty")
    path = tmp_path / "book.xlsx"
    workbook.save(str(path))

    (doc,) = load_file(path)
    assert doc.metadata["sheet"] == "Prices"
    assert doc.text == "# Prices\n\nItem\tPrice\nApples\t1.99"
    assert doc.markdown is True
