"""Cheap magic-byte checks that catch files whose content does not match their suffix."""

from __future__ import annotations

from pathlib import Path

from rag_pipeline.errors import LoaderError

_HEAD_BYTES = 8192
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_TEXT_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_ZIP_FORMATS = {".docx": "DOCX", ".pptx": "PPTX", ".xlsx": "XLSX", ".odt": "ODT", ".epub": "EPUB"}
_OOXML_SUFFIXES = {".docx", ".pptx", ".xlsx"}
_TEXT_SUFFIXES = {
    ".txt", ".text", ".csv", ".tsv", ".json", ".jsonl", ".md", ".markdown", ".html", ".htm",
    ".eml",
}  # fmt: skip
# PNG, JPEG, GIF, BMP, TIFF (both byte orders), WebP (HEIC: "ftyp" at offset 4).
_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*", b"RIFF")
_IMAGE_SUFFIXES = {
    ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".heic", ".heif",
}  # fmt: skip


def looks_like_text(head: bytes) -> bool:
    """Return whether a file's first bytes look like text rather than binary data."""
    if head.startswith(_TEXT_BOMS):
        return True
    if b"\x00" in head:
        return False
    controls = sum(1 for byte in head if byte < 0x20 and byte not in b"\t\n\r\f\x1b")
    return controls <= len(head) // 100


def check_signature(path: Path, suffix: str, source: str) -> None:
    """Raise ``LoaderError`` when the content of ``path`` cannot be a ``suffix`` file."""
    with path.open("rb") as file:
        head = file.read(_HEAD_BYTES)
    content = "text" if looks_like_text(head) else "binary data"
    if suffix == ".pdf":
        # Binary non-PDF content is left to pdfium, whose message names the damage.
        if b"%PDF-" not in head[:1024] and content == "text":
            raise LoaderError(source, "not a PDF file (content looks like text)")
    elif suffix in _ZIP_FORMATS:
        if head.startswith(_ZIP_MAGIC):
            return
        name = _ZIP_FORMATS[suffix]
        if suffix in _OOXML_SUFFIXES and head.startswith(_OLE_MAGIC):
            # Office wraps a password-protected OOXML package in an OLE container.
            if _ole_has_stream(path, "EncryptionInfo"):
                raise LoaderError(source, "encrypted (password-protected)")
            raise LoaderError(source, f"not a {name} file (looks like a legacy binary Office file)")
        raise LoaderError(source, f"not a {name} file (content looks like {content})")
    elif suffix == ".msg":
        if not head.startswith(_OLE_MAGIC):
            raise LoaderError(source, f"not an Outlook MSG file (content looks like {content})")
    elif suffix == ".rtf":
        if not head.lstrip().startswith(b"{\\rtf"):
            raise LoaderError(source, f"not an RTF file (content looks like {content})")
    elif suffix in _IMAGE_SUFFIXES:
        # Pillow names the damage of a file that starts like an image; one that does not,
        # and reads as text, is not an image at all.
        if content == "text" and not head.startswith(_IMAGE_MAGIC) and head[4:8] != b"ftyp":
            raise LoaderError(source, "not an image file (content looks like text)")
    elif suffix in _TEXT_SUFFIXES and content != "text":
        raise LoaderError(source, "not a text file (content looks like binary data)")


def _ole_has_stream(path: Path, name: str) -> bool:
    """Return whether the OLE compound file at ``path`` has a top-level stream ``name``."""
    import olefile

    try:
        with olefile.OleFileIO(str(path)) as ole:
            return bool(ole.exists(name))
    except OSError:
        return False
