"""Images (PNG, JPEG, TIFF, BMP, WebP, GIF, HEIC): every page is OCR'd.

A multi-page TIFF (a fax) is read page by page; a GIF by its first frame. Sizes are checked
from the file's header before anything is decoded.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag_pipeline.errors import LoaderError
from rag_pipeline.loaders.pages import Extraction, PageRef

if TYPE_CHECKING:
    from PIL import Image

    from rag_pipeline.loaders.ocr import OcrConfig

# Formats whose every frame is a page; other formats' extra frames are animation.
_PAGED_FORMATS = {"TIFF", "MPO"}
_heif_registered = False


def load_image(path: Path, source: str, ocr: OcrConfig) -> Extraction:
    """An image file as pages to OCR (after checking its size and page count)."""
    if ocr.mode == "off":
        raise LoaderError(source, "an image holds no text without OCR, and OCR is off (RAG_OCR)")
    with _open(path, source, ocr) as image:
        pages = _page_count(image)
        if pages > ocr.max_pages:
            raise LoaderError(source, f"too many pages: {pages} > limit {ocr.max_pages}")
    return Extraction((), tuple(PageRef(path, source, "image", n + 1) for n in range(pages)))


def render_image_page(page: PageRef, ocr: OcrConfig) -> Image.Image:
    """One page (frame) of an image file, decoded."""
    with _open(page.path, page.source, ocr) as image:
        if page.number > 1:
            image.seek(page.number - 1)
            _check_pixels(image, page.source, ocr, page.number)
        image.load()
        from PIL import ImageOps

        # A photo's EXIF orientation says how it is meant to be seen.
        return ImageOps.exif_transpose(image.copy())


def _open(path: Path, source: str, ocr: OcrConfig) -> Any:
    from PIL import Image, UnidentifiedImageError

    _register_heif()
    try:
        with warnings.catch_warnings():
            # Sizes are checked below against RAG_MAX_IMAGE_PIXELS, with a reason to show.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except UnidentifiedImageError:
        raise LoaderError(
            source, "corrupt or unreadable image: not a format Pillow reads"
        ) from None
    except Image.DecompressionBombError:
        # Pillow's own hard stop (twice its warning size), whatever the setting says.
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        raise LoaderError(
            source, f"image too large: more than {limit} pixels (a decompression bomb?)"
        ) from None
    _check_pixels(image, source, ocr, 1)
    return image


def _check_pixels(image: Any, source: str, ocr: OcrConfig, number: int) -> None:
    width, height = image.size
    if width * height > ocr.max_pixels:
        where = f"page {number}: " if number > 1 else ""
        raise LoaderError(
            source,
            f"{where}image too large: {width}x{height} pixels > limit {ocr.max_pixels} "
            "(RAG_MAX_IMAGE_PIXELS)",
        )


def _page_count(image: Any) -> int:
    if image.format in _PAGED_FORMATS:
        return max(1, int(getattr(image, "n_frames", 1)))
    return 1


def _register_heif() -> None:
    """Teach Pillow HEIC/HEIF (iPhone photos) through pillow-heif, when it is installed."""
    global _heif_registered
    if not _heif_registered:
        _heif_registered = True
        try:
            from pillow_heif import register_heif_opener
        except ImportError:  # then a .heic is reported as a format Pillow does not read
            return
        register_heif_opener()
