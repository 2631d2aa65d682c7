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
from rag_pipeline.languages import CHINESE, JAPANESE, KOREAN, LATIN, NO_LETTERS, script_of

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
# Korean text carries English words that the Korean model reads as noise; with English
# beside it the scans' mean CER went 0.096 -> 0.088 and the worst page 0.47 -> 0.42 (at
# 0.6 instead of 0.44 CPU-s a page). The Japanese model reads Latin letters itself
# (jpn+eng: 0.0077 -> 0.0095).
_WITH_LATIN = {"kor": "kor+eng"}
_BY_SCRIPT = {
    "Latin": ("eng",),
    "Korean": ("kor", "kor+kor_vert"),
    "Hangul": ("kor", "kor+kor_vert"),
    "Japanese": ("jpn", "jpn+jpn_vert"),
    "Katakana": ("jpn", "jpn+jpn_vert"),
    "Hiragana": ("jpn", "jpn+jpn_vert"),
    "Han": ("jpn", "chi_sim", "chi_tra", "jpn+jpn_vert"),
}
# Page layout, measured on the scans (mean CER; benchmarks/RESULTS.md, OCR): Tesseract's
# automatic segmentation (PSM 3) splits lines of Korean and Japanese into fragments, worse
# with scanner specks; reading the page as one block (PSM 6) as it is reads them best
# (ko 0.289 -> 0.096, ja 0.014 -> 0.008) and costs less, while Latin pages keep the
# automatic layout (it finds columns) after a despeckling median filter (which helps PSM 3
# and hurts PSM 6). Vertical text needs the automatic layout.
_BLOCK_LANGUAGES = frozenset({"kor", "jpn", "chi_sim", "chi_tra"})
_VERTICAL_LANGUAGES = frozenset({"jpn", "chi_sim", "chi_tra"})
# A reading at least this confident (Tesseract's mean word confidence, 0-100) is kept
# without trying other languages.
GOOD_CONFIDENCE = 70
# OSD rotates a page only when this sure of its orientation (its own scale: a page turned
# upside down scored 5.7; the one wrong turn on the scans, a Korean page it took for
# Arabic turned 90 degrees, 0.33). A reading before turning stays in the running.
_ROTATE_CONFIDENCE = 2.0
# A best reading below this confidence is not text the installed languages read; one
# that is not confident and has fewer letters than this is noise (real/example.jpg, a
# flower: "는 ~ ," at 51).
_UNREAD_CONFIDENCE, _FEW_LETTERS = 50, 10

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
        # Why this engine cannot read at all (found once; said again for every page).
        self.unusable = self._unusable()
        self._apis: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _installed(self) -> frozenset[str]:
        if self.datapath is None or not self.datapath.is_dir():
            return frozenset()
        names = {p.name.removesuffix(".traineddata") for p in self.datapath.glob("*.traineddata")}
        return frozenset(names)

    def read(self, image: Image.Image, source: str, page: int, hint: str | None = None) -> PageText:
        """Read one page image (any mode); LoaderError when it cannot be read.

        ``hint`` (the languages that read the last page well) is tried first: the pages of
        one run are mostly in one language, and a reading that is confident and in the
        script of its language is kept without asking OSD (0.2-0.4 s a page, and wrong
        for 8 of 45 Korean scans). Otherwise OSD's script and rotation order the rest.
        """
        where = f"page {page}: " if page else ""
        if self.unusable is not None:
            raise LoaderError(source, f"{where}{self.unusable}")
        with self._lock:
            images = _PageImages(prepare_image(image, self.config.max_pixels))
            if self.config.languages:
                return self._recognize(images, self.config.languages, source, where)
            first = self._candidates((hint,) if hint else ())[0]
            result = self._recognize(images, self._with_direction(first, images), source, where)
            if _reads_well(result, first):
                return result
            readings, tried = [result], {first}
            guesses, upright = self._orient(images.grey)
            if upright is not images.grey:
                images, tried = _PageImages(upright), set()  # turned: read it again
            for candidate in self._candidates(guesses):
                if candidate in tried:
                    continue
                tried.add(candidate)
                languages = self._with_direction(candidate, images)
                result = self._recognize(images, languages, source, where)
                if _reads_well(result, candidate):
                    return result
                readings.append(result)
            best = max(readings, key=lambda r: r.confidence)
            self._explain_unread(best, guesses, source, where)
            if sum(map(str.isalpha, best.text)) < _FEW_LETTERS:
                # A few unsure letters in a photo of a flower or a coloured shape are
                # noise read as text: the page holds none.
                return PageText("", 0.0, best.languages)
            return best

    def _explain_unread(
        self, best: PageText, guesses: tuple[str, ...], source: str, where: str
    ) -> None:
        """Raise with the command to run when a missing language pack is the likely cause."""
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

    def _unusable(self) -> str | None:
        """What stops this engine from reading any page (no tesserocr, no language data, a
        language asked for that is not installed), or None."""
        import importlib.util

        if importlib.util.find_spec("tesserocr") is None:
            return "OCR needs tesserocr: pip install tesserocr"
        wanted = self.config.languages.split("+") if self.config.languages else []
        if not self.installed:
            language = wanted[0] if wanted else "eng"
            return (
                "OCR needs Tesseract's language data and none was found"
                f"{f' in {self.datapath}' if self.datapath else ''}: {install_hint(language)}"
                " (or point RAG_OCR_TESSDATA at a tessdata folder)"
            )
        for language in wanted:
            if language not in self.installed:
                return (
                    f"Tesseract has no {language!r} language data in {self.datapath}: "
                    f"{install_hint(language)}"
                )
        return None

    def _has(self, languages: str) -> bool:
        """Whether every language of ``languages`` ("kor+eng") is installed."""
        return all(lang in self.installed for lang in languages.split("+"))

    def _candidates(self, guesses: tuple[str, ...]) -> list[str]:
        """Language sets to try, best guess first, only those installed."""
        ordered = [*guesses, *_AUTO_LANGUAGES]
        out: list[str] = []
        for languages in ordered:
            with_latin = _WITH_LATIN.get(languages, languages)
            if self._has(with_latin):
                languages = with_latin
            if self._has(languages) and languages not in out:
                out.append(languages)
        return out or sorted(self.installed - {"osd"})[:1]

    def _orient(self, image: Image.Image) -> tuple[tuple[str, ...], Image.Image]:
        """OSD's script guess (as language sets) and the page turned upright."""
        if "osd" not in self.installed:
            return (), image
        import tesserocr

        api = self._api("osd", tesserocr.PSM.OSD_ONLY)
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

    def _with_direction(self, languages: str, page_images: _PageImages) -> str:
        """``languages``, with the vertical model added when the page's text runs top to
        bottom: a page of vertical Japanese read as one block of horizontal lines comes
        out as confident nonsense (confidence 84), so the layout is looked at first."""
        first = languages.split("+")[0]
        vertical = f"{first}_vert"
        # Modern Korean is written across; Japanese and Chinese pages often run down.
        if first not in _VERTICAL_LANGUAGES or vertical not in self.installed:
            return languages
        if page_images.vertical is None:
            page_images.vertical = self._runs_vertically(page_images.grey)
        return f"{first}+{vertical}" if page_images.vertical else languages

    def _runs_vertically(self, image: Image.Image) -> bool:
        """Whether most text blocks of Tesseract's layout analysis run top to bottom
        (0.02-0.2 s a page; the analysis needs no language model)."""
        if "osd" not in self.installed:
            return False
        import tesserocr

        api = self._api("osd", tesserocr.PSM.AUTO)
        api.SetImage(image)
        blocks = api.AnalyseLayout()
        if blocks is None:
            return False
        directions = []
        while True:
            directions.append(blocks.Orientation()[1])
            if not blocks.Next(tesserocr.RIL.BLOCK):
                break
        down = sum(1 for d in directions if d == tesserocr.WritingDirection.TOP_TO_BOTTOM)
        return down * 2 > len(directions)

    def _api(self, languages: str, psm: Any = None) -> Any:
        import tesserocr

        if psm is None:
            psm = tesserocr.PSM.SINGLE_BLOCK if _reads_as_block(languages) else tesserocr.PSM.AUTO
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

    def _recognize(
        self, page_images: _PageImages, languages: str, source: str, where: str
    ) -> PageText:
        try:
            api = self._api(languages)
        except ConfigError as exc:
            raise LoaderError(source, f"{where}{exc}") from None
        block = _reads_as_block(languages)
        api.SetImage(page_images.grey if block else page_images.despeckled())
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


# The script a reading in each language must mostly come out in (ISO 15924, languages.py):
# a confident reading in another is the wrong language (Japanese read by the Chinese model
# loses its kana; English read by the Japanese model is right but slower and without
# English words to check against).
_SCRIPTS_READ = {
    "eng": LATIN,
    "kor": KOREAN,
    "jpn": JAPANESE,
    "chi_sim": CHINESE,
    "chi_tra": CHINESE,
}


def _reads_well(result: PageText, languages: str) -> bool:
    """A confident reading, in a script its language writes."""
    if result.confidence < GOOD_CONFIDENCE:
        return False
    expected = _SCRIPTS_READ.get(languages.split("+")[0])
    script = script_of(result.text)
    return expected is None or script in (NO_LETTERS, expected)


def _reads_as_block(languages: str) -> bool:
    return languages.split("+")[0] in _BLOCK_LANGUAGES and "_vert" not in languages


class _PageImages:
    """A page as grey pixels, and despeckled once if a reading asks for it."""

    def __init__(self, grey: Image.Image) -> None:
        self.grey = grey
        self._despeckled: Image.Image | None = None
        self.vertical: bool | None = None  # found once, when a CJK reading asks

    def despeckled(self) -> Image.Image:
        """A 3x3 median filter removes the specks of a scanner or fax that otherwise break
        Tesseract's automatic layout analysis into fragments."""
        if self._despeckled is None:
            from PIL import ImageFilter

            self._despeckled = self.grey.filter(ImageFilter.MedianFilter(3))
        return self._despeckled


def prepare_image(image: Image.Image, max_pixels: int | None = None) -> Image.Image:
    """The page as Tesseract reads it best: 8-bit grey, text lines of a readable height.

    A page scanned or saved at a low resolution (lines under 16 pixels: a 72-dpi page) is
    enlarged, up to 3x: the real 72-dpi pages of ../shared/data/scans/real went from mean
    confidence 42 and 32 (unreadable) to 95 and 89 (benchmarks/RESULTS.md, OCR).
    """
    from PIL import Image as PILImage

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent parts are paper, not black.
        background = PILImage.new("RGBA", image.size, (255, 255, 255, 255))
        image = PILImage.alpha_composite(background, image.convert("RGBA"))
    if image.mode.startswith("I") or image.mode == "F":
        image = _to_8_bits(image)
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
    return image


def _to_8_bits(image: Image.Image) -> Image.Image:
    """A 16-bit or float grey image (a scanner's TIFF) as 8 bits, scaled to its own range:
    Pillow's convert("L") clips such values to white, and the page reads as blank."""
    import numpy as np
    from PIL import Image as PILImage

    pixels = np.asarray(image, dtype=np.float64)
    low, high = float(pixels.min()), float(pixels.max())
    scaled = (pixels - low) * (255.0 / (high - low)) if high > low else pixels * 0 + 255
    return PILImage.fromarray(scaled.astype(np.uint8), mode="L")


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
        # The language that read the last page well: tried first on the next.
        self.last_languages: str | None = None
        self._lock = threading.Lock()

    def read(self, image: Image.Image, source: str, page: int) -> PageText:
        """Read one page with an idle engine (a new one while fewer than ``size`` exist)."""
        engine = self._take()
        try:
            result = engine.read(image, source, page, self.last_languages)
        finally:
            self._idle.put(engine)
        if _reads_well(result, result.languages):
            self.last_languages = result.languages.split("+")[0]
        return result

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
