"""Small scanned-looking pages for OCR tests: text drawn with real fonts, a little noise."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

FONTS = {
    "en": Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    "ko": Path("/usr/share/fonts/truetype/nanum/NanumGothic.ttf"),
    "ja": Path("/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf"),
}
# What each language's page says (sentences in the scans' style).
LINES = {
    "en": ["Invoice 2291 for the harbour crane", "The refund policy allows thirty days"],
    "ko": ["서울특별시 도서관 이용 안내", "환불 정책은 삼십 일 동안 유효합니다"],
    "ja": ["東京都立図書館の利用案内", "返金は三十日以内に申請してください"],
}


def font(language: str, size: int = 40):
    """A TrueType font for ``language`` (the test is skipped where it is not installed)."""
    from PIL import ImageFont

    path = FONTS[language]
    if not path.exists():
        pytest.skip(f"font {path} is not installed (apt-get install fonts-nanum fonts-ipafont)")
    return ImageFont.truetype(str(path), size)


def page(language: str, lines: list[str] | None = None, *, vertical: bool = False, seed: int = 1):
    """A grey page image with ``lines`` (default: ``LINES[language]``) and scanner specks."""
    from PIL import Image, ImageDraw

    lines = lines or LINES[language]
    face = font(language)
    if vertical:
        image = Image.new("L", (120 + 80 * len(lines), 120 + 46 * max(map(len, lines))), 235)
        draw = ImageDraw.Draw(image)
        x = image.width - 110
        for line in lines:
            for row, char in enumerate(line):
                draw.text((x, 50 + 46 * row), char, font=face, fill=20)
            x -= 80
    else:
        width = 120 + max(int(draw_width(face, line)) for line in lines)
        image = Image.new("L", (width, 100 + 70 * len(lines)), 235)
        draw = ImageDraw.Draw(image)
        for row, line in enumerate(lines):
            draw.text((60, 50 + 70 * row), line, font=face, fill=20)
    noise = random.Random(seed)
    for _ in range(image.width * image.height // 400):
        image.putpixel(
            (noise.randrange(image.width), noise.randrange(image.height)), noise.choice((90, 255))
        )
    return image


def draw_width(face, text: str) -> float:
    left, _, right, _ = face.getbbox(text)
    return right - left


def image_pdf(path: Path, images: list, text_pages: dict[int, str] | None = None) -> Path:
    """A PDF whose pages are ``images`` (a scan), with real text on ``text_pages`` instead."""
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), pagesize=(595, 842))
    for number, image in enumerate(images, start=1):
        if text_pages and number in text_pages:
            pdf.setFont("Helvetica", 14)
            for row, line in enumerate(text_pages[number].splitlines()):
                pdf.drawString(60, 780 - 20 * row, line)
        else:
            width = 500
            height = width * image.height / image.width
            pdf.drawImage(ImageReader(image.convert("RGB")), 50, 800 - height, width, height)
        pdf.showPage()
    pdf.save()
    return path


def reads(expected: str, text: str, at_least: float = 0.9) -> bool:
    """Whether ``text`` holds ``expected`` with at most ~10% of its characters misread
    (spaces ignored): the best-matching window of ``text`` is compared character by
    character. OCR of a real engine is allowed a typo; a wrong language is not."""
    from difflib import SequenceMatcher

    want = "".join(expected.split())
    have = "".join(text.split())
    if want in have:
        return True
    best = 0.0
    for start in range(max(1, len(have) - len(want) + 1)):
        window = have[start : start + len(want)]
        best = max(best, SequenceMatcher(None, want, window).ratio())
    return best >= at_least
