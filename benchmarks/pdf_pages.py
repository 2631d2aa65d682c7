"""Which PDF pages RAG_OCR=auto OCRs: every page's text layer and images, and the rule's call.

Prints, for each PDF of ../shared/data/mixed_docs (born-digital), the scans (image-only)
and scans/real (a scan that carries its own OCR layer): visible characters of the text
layer, the share of unmapped glyphs, the share of the page covered by images, and whether
`page_needs_ocr` sends the page to OCR. The thresholds in rag_pipeline/loaders/pdf.py
were read off this table.

    python benchmarks/pdf_pages.py [--out benchmarks/results/pdf_pages.md]
"""

from __future__ import annotations

import argparse
import unicodedata
from pathlib import Path

import pypdfium2 as pdfium

from rag_pipeline.loaders.pdf import _clean_page_text, _image_share, page_needs_ocr

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = {
    "mixed_docs": sorted((DATA / "mixed_docs").rglob("*.pdf")),
    "scans": sorted((DATA / "scans").glob("*/docs/*.pdf")),
    "real": sorted((DATA / "scans" / "real").glob("*.pdf")),
}


def page_rows(path: Path) -> list[tuple[int, int, float, float, bool]]:
    rows = []
    pdf = pdfium.PdfDocument(str(path))
    try:
        for index in range(len(pdf)):
            page = pdf[index]
            textpage = page.get_textpage()
            text = _clean_page_text(textpage.get_text_bounded())
            textpage.close()
            visible = [c for c in text if not c.isspace()]
            unmapped = sum(1 for c in visible if unicodedata.category(c) in ("Co", "Cn"))
            share = _image_share(page)
            page.close()
            rows.append(
                (
                    index + 1,
                    len(visible),
                    unmapped / len(visible) if visible else 0.0,
                    share,
                    page_needs_ocr(text, share),
                )
            )
    finally:
        pdf.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    lines = [
        "| set | file | pages | visible chars per page (min–max) | unmapped share (max) "
        "| image share (min–max) | pages OCR'd |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, paths in SETS.items():
        for path in paths:
            rows = page_rows(path)
            chars = [r[1] for r in rows]
            shares = [r[3] for r in rows]
            lines.append(
                f"| {name} | {path.name} | {len(rows)} | {min(chars)}–{max(chars)} "
                f"| {max(r[2] for r in rows):.2f} | {min(shares):.2f}–{max(shares):.2f} "
                f"| {sum(r[4] for r in rows)} |"
            )
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
