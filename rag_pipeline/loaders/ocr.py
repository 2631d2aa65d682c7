"""Text from page images: Tesseract (through tesserocr), its language chosen per page.

The engine was chosen by measurement (benchmarks/ocr_engines.py, benchmarks/RESULTS.md):
Tesseract 5 reads Korean, Japanese (vertical too) and English offline from Debian's language
packs; the PP-OCR models that ship inside PyPI wheels do not read Korean.

Which language a page is in is found per page: Tesseract's orientation and script detection
(OSD) gives a first guess and the page's rotation, the guess is read, and a reading whose
mean confidence is low is tried again with the other installed languages (a page read with
the wrong language scores 10-55, with the right one 85-95: measured on the scans of
../shared/data/scans). ``RAG_OCR_LANGUAGES`` skips all that.
"""

from __future__ import annotations

import os
import queue
import re
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag_pipeline.errors import ConfigError, LoaderError

if TYPE_CHECKING:
    from PIL import Image

OCR_MODES = ("auto", "off", "force")
# Where Tesseract's language data is found when RAG_OCR_TESSDATA and TESSDATA_PREFIX are
# unset: Debian/Ubuntu (5 and 4), Fedora, Homebrew (Apple silicon, Intel), Windows' installer.
_TESSDATA_DIRS = (
    "/usr/share/tesseract-ocr/5/tessdata",
    "/usr/share/tesseract-ocr/4.00/tessdata",
    "/usr/share/tessdata",
    "/opt/homebrew/share/tessdata",
    "/usr/local/share/tessdata",
    r"C:\Program Files\Tesseract-OCR\tessdata",
)
# The languages tried when none are set, in the order tried when OSD names no script, and
# the script OSD reports for each. "+..._vert" reads vertical columns too (tried second).
_AUTO_LANGUAGES = ("eng", "kor", "jpn", "chi_sim", "chi_tra")
_LANGUAGE_NAMES = {"eng": "English", "kor": "Korean", "jpn": "Japanese"}
_BY_SCRIPT = {
    "Latin": ("eng",),
    "Korean": ("kor", "kor+kor_vert"),
    "Hangul": ("kor", "kor+kor_vert"),
    "Japanese": ("jpn", "jpn+jpn_vert"),
    "Katakana": ("jpn", "jpn+jpn_vert"),
    "Hiragana": ("jpn", "jpn+jpn_vert"),
    "Han": ("jpn", "chi_sim", "chi_tra", "jpn+jpn_vert"),
}
# Page layout: Tesseract's automatic segmentation splits lines of Korean and Japanese
# into fragments far more often than Latin ones; reading the page as one column of text
# (PSM 4) halved their error rate on the scans (ko 0.147 -> 0.101, ja 0.035 -> 0.012 mean
# CER) and doubled English's (0.0013 -> 0.0125). Vertical text needs the automatic layout.
_SINGLE_COLUMN_LANGUAGES = frozenset({"kor", "jpn", "chi_sim", "chi_tra"})
# A reading at least this confident (Tesseract's mean word confidence, 0-100) is kept
# without trying other languages.
GOOD_CONFIDENCE = 70
# OSD rotates a page only when this sure of its orientation (its own scale; upright scans
# scored 4-20, and a page it is unsure of is read as it is).
_ROTATE_CONFIDENCE = 2.0
# OSD reads a half-size copy of a full page: same script on the scans, half the time
# (0.2 s vs 0.4 s); a smaller image (a cropped photo) at full size, where half finds nothing.
_OSD_SCALE, _OSD_HALF_FROM = 0.5, 1600
# A best reading below this confidence is not text the installed languages read.
_UNREAD_CONFIDENCE = 50

# Tesseract puts spaces between the characters and words of Japanese and Chinese (and
# breaks lines inside sentences); the words of those scripts are not separated by spaces.
_CJK = "\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff01-\uff60"
_CJK_GAP = re.compile(rf"(?<=[{_CJK}])[ \t]+(?=[{_CJK}])")
_CJK_BREAK = re.compile(rf"(?<=[{_CJK}])[ \t]*\n[ \t]*(?=[{_CJK}])")
_BLANK_LINES = re.compile(r"\n\s*\n\s*\n+")
# Resolution: a text line shorter than _SMALL_TEXT pixels is enlarged towards _TARGET_LINE
# (at most _MAX_UPSCALE times); a row is inked when this share of its pixels is ink.
_SMALL_TEXT, _TARGET_LINE, _MAX_UPSCALE, _INKED_ROW = 16, 24.0, 3.0, 0.003


@dataclass(frozen=True, slots=True)
class OcrConfig:
    """How pages without text are read (plain, picklable data for worker processes).

    ``mode``: auto (OCR pages with no real text layer), off, force (OCR every page).
    ``languages``: Tesseract languages such as ``kor+eng``; None chooses per page.
    """

    mode: str = "auto"
    languages: str | None = None
    tessdata: str | None = None
    dpi: int = 200
    page_timeout: float = 120.0
    max_pages: int = 2000
    max_pixels: int = 89_478_485  # Pillow's own decompression-bomb limit

    def __post_init__(self) -> None:
        if self.mode not in OCR_MODES:
            raise ConfigError(f"OCR mode must be one of {', '.join(OCR_MODES)}, got {self.mode!r}")
        if self.dpi < 50 or self.dpi > 600:
            raise ConfigError(f"OCR dpi must be between 50 and 600, got {self.dpi}")
        if self.page_timeout <= 0 or self.max_pages < 1 or self.max_pixels < 1:
            raise ConfigError("OCR page timeout, max pages and max pixels must be positive")


@dataclass(frozen=True, slots=True)
class PageText:
    """What OCR read on one page: text, mean word confidence (0-100), languages used."""

    text: str
    confidence: float
    languages: str


def install_hint(language: str) -> str:
    """The command that installs one Tesseract language pack."""
    package = "tesseract-ocr-" + language.replace("/", "-").replace("_", "-").lower()
    if sys.platform == "darwin":
        return "brew install tesseract tesseract-lang"
    if sys.platform == "win32":
        return f"add {language} to Tesseract's tessdata folder (the UB Mannheim installer)"
    return f"apt-get install {package}"


def find_tessdata(configured: str | None) -> Path | None:
    """The folder holding Tesseract's ``*.traineddata``: the setting, then Tesseract's own
    TESSDATA_PREFIX, then the usual install places; None when there is none."""
    if configured:
        return Path(configured)
    # Tesseract's own variable, read where its default is resolved (the library reads it
    # too, but tesserocr's wheel bundles a libtesseract built with another default path).
    prefix = os.environ.get("TESSDATA_PREFIX")
    candidates = [prefix, os.path.join(prefix, "tessdata")] if prefix else []
    for folder in [*candidates, *_TESSDATA_DIRS]:
        if folder and any(Path(folder).glob("*.traineddata")):
            return Path(folder)
    return None


def clean_ocr_text(text: str) -> str:
    """Tesseract's text without the gaps it puts inside CJK words and sentences."""
    text = _CJK_GAP.sub("", text.replace("\x0c", ""))
    text = _CJK_BREAK.sub("", text)
    return _BLANK_LINES.sub("\n\n", text).strip()


class TesseractEngine:
    """Tesseract models loaded once per language set, used by one thread at a time (a
    tesserocr API object is not thread-safe; ``EnginePool`` hands engines to threads)."""

    def __init__(self, config: OcrConfig) -> None:
        self.config = config
        self.datapath = find_tessdata(config.tessdata)
        self.installed = self._installed()
        self._apis: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _installed(self) -> frozenset[str]:
        if self.datapath is None or not self.datapath.is_dir():
            return frozenset()
        names = {p.name.removesuffix(".traineddata") for p in self.datapath.glob("*.traineddata")}
        return frozenset(names)

    def read(self, image: Image.Image, source: str, page: int) -> PageText:
        """Read one page image (any mode); LoaderError when it cannot be read."""
        where = f"page {page}: " if page else ""
        with self._lock:
            self._check_installed(source, where)
            image = prepare_image(image, self.config.max_pixels)
            guesses, image = self._orient(image)
            if self.config.languages:
                return self._recognize(image, self.config.languages, source, where)
            best: PageText | None = None
            for languages in self._candidates(guesses):
                result = self._recognize(image, languages, source, where)
                if best is None or result.confidence > best.confidence:
                    best = result
                if result.confidence >= GOOD_CONFIDENCE:
                    break
            assert best is not None
            # OSD's script has no installed language and nothing installed read it well:
            # say what to install rather than index a poor guess.
            language = guesses[0].split("+")[0] if guesses else None
            if best.confidence < GOOD_CONFIDENCE and language and language not in self.installed:
                raise LoaderError(
                    source,
                    f"{where}the page looks like {language} text, which Tesseract cannot "
                    f"read here: {install_hint(language)}",
                )
            missing = [lang for lang in _AUTO_LANGUAGES[:3] if lang not in self.installed]
            if best.text and best.confidence < _UNREAD_CONFIDENCE and missing:
                # OSD could not tell the script, and what is installed read it poorly:
                # most likely a language whose data is missing.
                raise LoaderError(
                    source,
                    f"{where}no installed language reads this page well (confidence "
                    f"{best.confidence:.0f}); if it is in "
                    f"{' or '.join(_LANGUAGE_NAMES.get(m, m) for m in missing)}: "
                    + "; ".join(install_hint(m) for m in missing),
                )
            return best

    def _check_installed(self, source: str, where: str) -> None:
        import importlib.util

        if importlib.util.find_spec("tesserocr") is None:
            raise LoaderError(source, f"{where}OCR needs tesserocr: pip install tesserocr")
        wanted = self.config.languages.split("+") if self.config.languages else []
        if not self.installed:
            language = wanted[0] if wanted else "eng"
            raise LoaderError(
                source,
                f"{where}OCR needs Tesseract's language data and none was found"
                f"{f' in {self.datapath}' if self.datapath else ''}: {install_hint(language)}"
                " (or point RAG_OCR_TESSDATA at a tessdata folder)",
            )
        for language in wanted:
            if language not in self.installed:
                raise LoaderError(
                    source,
                    f"{where}Tesseract has no {language!r} language data in {self.datapath}: "
                    f"{install_hint(language)}",
                )

    def _candidates(self, guesses: tuple[str, ...]) -> list[str]:
        """Language sets to try, best guess first, only those installed."""
        ordered = [*guesses, *_AUTO_LANGUAGES]
        out: list[str] = []
        for languages in ordered:
            usable = all(lang in self.installed for lang in languages.split("+"))
            if usable and languages not in out:
                out.append(languages)
        return out or sorted(self.installed - {"osd"})[:1]

    def _orient(self, image: Image.Image) -> tuple[tuple[str, ...], Image.Image]:
        """OSD's script guess (as language sets) and the page turned upright."""
        if "osd" not in self.installed:
            return (), image
        import tesserocr
        from PIL import Image as PILImage

        api = self._api("osd", tesserocr.PSM.OSD_ONLY)
        if min(image.size) >= _OSD_HALF_FROM:
            size = (int(image.width * _OSD_SCALE), int(image.height * _OSD_SCALE))
            api.SetImage(image.resize(size, PILImage.Resampling.BILINEAR))
        else:
            api.SetImage(image)
        try:
            found = api.DetectOrientationScript()
        except RuntimeError:  # too little text to tell
            found = None
        if not found:
            return (), image
        degrees = int(found.get("orient_deg") or 0)
        if degrees and float(found.get("orient_conf") or 0) >= _ROTATE_CONFIDENCE:
            # orient_deg is how far the page is turned clockwise; rotate() turns it back.
            image = image.rotate(degrees, expand=True, fillcolor=255)
        return _BY_SCRIPT.get(str(found.get("script_name")), ()), image

    def _api(self, languages: str, psm: Any = None) -> Any:
        import tesserocr

        if psm is None:
            first = languages.split("+")[0]
            single = first in _SINGLE_COLUMN_LANGUAGES and "_vert" not in languages
            psm = tesserocr.PSM.SINGLE_COLUMN if single else tesserocr.PSM.AUTO
        key = f"{languages}/{psm}"
        api = self._apis.get(key)
        if api is None:
            kwargs: dict[str, Any] = {
                "path": str(self.datapath) + os.sep,
                "lang": languages,
                "psm": psm,
            }
            try:
                api = tesserocr.PyTessBaseAPI(**kwargs)
            except RuntimeError as exc:
                raise ConfigError(
                    f"Tesseract could not load {languages!r} from {self.datapath}: {exc}"
                ) from exc
            self._apis[key] = api
        return api

    def _recognize(self, image: Image.Image, languages: str, source: str, where: str) -> PageText:
        try:
            api = self._api(languages)
        except ConfigError as exc:
            raise LoaderError(source, f"{where}{exc}") from None
        api.SetImage(image)
        started = time.monotonic()
        finished = api.Recognize(timeout=int(self.config.page_timeout * 1000))
        if not finished:
            raise LoaderError(
                source,
                f"{where}OCR stopped after {time.monotonic() - started:.0f} s "
                f"(limit RAG_OCR_PAGE_TIMEOUT={self.config.page_timeout:g} s)",
            )
        text = clean_ocr_text(api.GetUTF8Text())
        confidence = float(api.MeanTextConf()) if text else 0.0
        return PageText(text, confidence, languages)


def prepare_image(image: Image.Image, max_pixels: int | None = None) -> Image.Image:
    """The page as Tesseract reads it best: 8-bit grey, text lines of a readable height,
    speckles removed.

    A 3x3 median filter removes the specks of a scanner or fax that otherwise break
    Tesseract's layout analysis into fragments; a page scanned or saved at a low
    resolution (lines under 16 pixels: a 72-dpi page) is enlarged first, up to 3x: the
    real 72-dpi pages of ../shared/data/scans/real went from mean confidence 42 and 32
    (unreadable) to 95 and 89 (benchmarks/RESULTS.md, OCR).
    """
    from PIL import Image as PILImage
    from PIL import ImageFilter

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent parts are paper, not black.
        from PIL import Image as PILImage

        background = PILImage.new("RGBA", image.size, (255, 255, 255, 255))
        image = PILImage.alpha_composite(background, image.convert("RGBA"))
    if image.mode != "L":
        image = image.convert("L")
    height = text_line_height(image)
    if height is not None and height < _SMALL_TEXT:
        scale = min(_MAX_UPSCALE, _TARGET_LINE / height)
        if max_pixels is not None:
            scale = min(scale, (max_pixels / (image.width * image.height)) ** 0.5)
        if scale > 1.2:
            size = (round(image.width * scale), round(image.height * scale))
            image = image.resize(size, PILImage.Resampling.LANCZOS)
    return image.filter(ImageFilter.MedianFilter(3))


def text_line_height(image: Image.Image) -> float | None:
    """The median height in pixels of the page's bands of inked rows (its text lines),
    None when it has none: a projection profile, cheap enough to run on every page."""
    import numpy as np

    pixels = np.asarray(image, dtype=np.uint8)
    if pixels.size == 0:
        return None
    # Ink is darker than halfway between the page's mean and its darkest pixel.
    ink = pixels < (float(pixels.mean()) + float(pixels.min())) / 2
    inked = ink.mean(axis=1) > _INKED_ROW
    # Lengths of the runs of inked rows: where the row flags change, paired up.
    edges = np.flatnonzero(np.diff(np.concatenate(([0], inked.astype(np.int8), [0]))))
    runs = edges[1::2] - edges[::2]
    runs = runs[runs >= 3]
    return float(np.median(runs)) if runs.size else None


class EnginePool:
    """Engines for one configuration, one per thread reading at once (at most one per core).

    Tesseract releases the GIL while it reads, so a server's threads (uploads being
    processed, several ``PUT /process`` at once) read pages in parallel; each engine loads
    its models once and is reused.
    """

    def __init__(self, config: OcrConfig, size: int) -> None:
        self.config = config
        self.size = max(1, size)
        self._idle: queue.LifoQueue[TesseractEngine] = queue.LifoQueue()
        self._made = 0
        self._lock = threading.Lock()

    def read(self, image: Image.Image, source: str, page: int) -> PageText:
        """Read one page with an idle engine (a new one while fewer than ``size`` exist)."""
        engine = self._take()
        try:
            return engine.read(image, source, page)
        finally:
            self._idle.put(engine)

    def _take(self) -> TesseractEngine:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._made < self.size:
                self._made += 1
                return TesseractEngine(self.config)
        return self._idle.get()


_POOLS: dict[OcrConfig, EnginePool] = {}
_POOLS_LOCK = threading.Lock()


def engine_for(config: OcrConfig) -> EnginePool:
    """This process's engines for ``config`` (models load once per engine, not per page)."""
    with _POOLS_LOCK:
        pool = _POOLS.get(config)
        if pool is None:
            pool = _POOLS[config] = EnginePool(config, os.cpu_count() or 1)
        return pool
