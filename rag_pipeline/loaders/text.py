"""Plain-text formats (txt, csv, tsv, json, jsonl) and the decoding all text formats share."""

from __future__ import annotations

import codecs
import unicodedata
from pathlib import Path

from rag_pipeline.types import Document

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Tried before charset-normalizer's guesses: it misreads short CJK and most cp1252 samples.
_PREFERRED_LEGACY = ("cp932", "euc_jp", "cp949", "cp1252")
_CJK_MULTIBYTE = {"cp932", "shift_jis", "euc_jp", "euc_jis_2004", "cp949", "euc_kr", "gb18030",
                  "gb2312", "gbk", "big5", "big5hkscs", "johab"}  # fmt: skip
# Below this size charset-normalizer's statistics are too thin to break ties.
_TRUSTED_DETECTION_BYTES = 512


def load_text(path: Path, source: str) -> list[Document]:
    """Load a plain-text file (txt, csv, tsv, json, jsonl) as one Document."""
    return [Document(text=normalize_newlines(decode_text(path.read_bytes())))]


def normalize_newlines(text: str) -> str:
    """Return ``text`` with CRLF/CR line ends as LF and outer blank space stripped."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def decode_text(data: bytes) -> str:
    """Decode bytes of unknown encoding: BOM, then strict UTF-8, then a scored legacy guess."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    return _decode_legacy(data)


def _decode_legacy(data: bytes) -> str:
    """Pick the legacy encoding whose decoding of ``data`` reads most like real text."""
    from charset_normalizer import from_bytes

    guesses = [match.encoding for match in from_bytes(data)]
    # UTF-16/32 without a BOM is rare and its guesses on short legacy bytes are noise.
    guesses = [enc for enc in guesses if not enc.startswith(("utf_16", "utf_32"))]
    if len(data) >= _TRUSTED_DETECTION_BYTES and guesses and guesses[0] in _CJK_MULTIBYTE:
        return data.decode(guesses[0], errors="replace")
    order = [*_PREFERRED_LEGACY, *guesses, "gb18030", "big5"]

    best_text: str | None = None
    best_score = float("-inf")
    for encoding in dict.fromkeys(order):
        try:
            text = data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
        score = _plausibility(text)
        if score > best_score:
            best_text, best_score = text, score
    if best_text is None:
        return data.decode("utf-8", errors="replace")
    return best_text


def _plausibility(text: str) -> float:
    """Score how natural the non-ASCII characters of a decoding are (higher is better)."""
    letters = sum(1 for ch in text if ch.isalpha())
    latin1_letters = sum(1 for ch in text if "\u00c0" <= ch <= "\u00ff" and ch.isalpha())
    # Western European text has a few accented letters among many ASCII ones; Cyrillic or
    # Greek bytes read as cp1252 come out as runs of accented letters.
    latin1_plausible = latin1_letters <= 0.5 * letters
    total = 0.0
    count = 0
    for ch in text:
        if ch.isascii():
            if ch.isprintable() or ch in "\t\n\r\f":
                continue
            total -= 5
            count += 1
            continue
        count += 1
        total += _char_score(ch, latin1_plausible)
    return total / count if count else 0.0


def _char_score(ch: str, latin1_plausible: bool) -> float:
    """Score one non-ASCII character as evidence for the decoding that produced it."""
    code = ord(ch)
    if 0x3040 <= code <= 0x30FF:  # hiragana, katakana: rarely produced by a wrong CJK codec
        return 2.0
    if 0xAC00 <= code <= 0xD7A3:  # Hangul syllables: only the KS X 1001 set is common
        return 1.2 if _in_ks_x_1001(ch) else -1.0
    if 0x4E00 <= code <= 0x9FFF or 0x3000 <= code <= 0x303F or 0xFF01 <= code <= 0xFF5E:
        return 1.0
    if "\u00c0" <= ch <= "\u00ff" and ch.isalpha():
        return 1.0 if latin1_plausible else -1.0
    if 0x00A0 <= code <= 0x00BF or 0x2010 <= code <= 0x2026 or ch == "\u20ac":
        return 1.0  # Latin-1 signs and typographic punctuation
    if 0x0370 <= code <= 0x03FF or 0x0400 <= code <= 0x04FF:
        return 1.0  # Greek, Cyrillic
    if 0x0100 <= code <= 0x017F:
        # Slightly below Latin-1 so that Western text ties go to cp1252, the common case.
        return 0.8
    if 0xFF61 <= code <= 0xFF9F:
        return 0.0  # half-width katakana: real but rare, and what Korean bytes become in cp932
    category = unicodedata.category(ch)
    if category in ("Cc", "Co", "Cn", "Cs"):
        return -5.0
    return -1.0  # half-width kana, jamo, box drawing, rare ideographs: typical mis-decodings


def _in_ks_x_1001(ch: str) -> bool:
    """Return whether a Hangul syllable is one of the 2,350 that EUC-KR has a code for."""
    try:
        # Python's euc_kr spells the other syllables as 8-byte jamo sequences.
        return len(ch.encode("euc_kr")) == 2
    except UnicodeEncodeError:
        return False
