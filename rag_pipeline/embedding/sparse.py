"""BM25-style sparse vectors for Qdrant: stemmed words for Latin script, n-grams for CJK."""

from __future__ import annotations

import functools
import re
import unicodedata
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

from rag_pipeline.errors import ConfigError
from rag_pipeline.types import SparseVector

# Han, Hiragana, Katakana (incl. half-width), Hangul syllables and jamo: scripts written
# without spaces between words (or, for Korean, with particles glued to words).
_CJK = (
    "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\uff66-\uff9f\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"
)
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+(?:['’][^\W_{_CJK}]+)*", re.UNICODE)
_IS_CJK = re.compile(rf"[{_CJK}]")

# Stop-word lists ship as data in this package (see stopwords/README.md), named as NLTK
# names them.
_STOPWORDS = Path(__file__).parent / "stopwords"
NLTK_LANGUAGES = {
    "en": "english",
    "de": "german",
    "fr": "french",
    "es": "spanish",
    "it": "italian",
    "pt": "portuguese",
    "nl": "dutch",
    "sv": "swedish",
    "da": "danish",
    "no": "norwegian",
    "fi": "finnish",
    "ru": "russian",
}


@functools.cache
def _word_list(name: str) -> frozenset[str]:
    text = (_STOPWORDS / f"{name}.txt").read_text(encoding="utf-8")
    return frozenset(w.strip() for w in text.splitlines() if w.strip())


def _stopwords(language: str) -> frozenset[str]:
    return _word_list(NLTK_LANGUAGES[language])


def _cjk_stop_bigrams() -> frozenset[str]:
    # Two-character function words of Japanese and Korean (spaCy's lists): as bigrams
    # they match almost every chunk and only add noise to the score.
    return _word_list("cjk_bigrams")


_MAX_MEMO = 200_000


def term_id(term: str) -> int:
    """Return a stable 31-bit id for a term (same on every machine and run)."""
    return zlib.crc32(term.encode("utf-8")) & 0x7FFFFFFF


class SparseEncoder:
    """Turn text into BM25 term-frequency vectors; Qdrant's IDF modifier supplies the IDF."""

    def __init__(
        self,
        language: str = "en",
        *,
        k1: float = 1.2,
        b: float = 0.75,
        avg_len: float = 120.0,
        ngram: int = 2,
    ) -> None:
        if language not in NLTK_LANGUAGES:
            raise ConfigError(
                f"sparse language {language!r} not supported; use one of {sorted(NLTK_LANGUAGES)}"
            )
        if not (k1 > 0 and 0 <= b <= 1 and avg_len > 0 and ngram >= 1):
            raise ConfigError("need k1 > 0, 0 <= b <= 1, avg_len > 0 and ngram >= 1")
        import Stemmer

        self.language = language
        self.k1, self.b, self.avg_len, self.ngram = k1, b, avg_len, ngram
        self._stemmer = Stemmer.Stemmer(NLTK_LANGUAGES[language])
        self._stop = _stopwords(language)
        self._cjk_stop = _cjk_stop_bigrams()
        # Term -> id memo: a corpus repeats its vocabulary, and crc32 per term adds up.
        self._ids: dict[str, int] = {}

    @property
    def config(self) -> dict[str, Any]:
        """The constructor arguments, to build the same encoder in a worker process."""
        return {
            "language": self.language,
            "k1": self.k1,
            "b": self.b,
            "avg_len": self.avg_len,
            "ngram": self.ngram,
        }

    def tokenize(self, text: str) -> list[str]:
        """Return the index terms of ``text``."""
        text = unicodedata.normalize("NFKC", text).lower()
        words: list[str] = []
        terms: list[str] = []
        for match in _TOKEN.finditer(text):
            token = match.group()
            if _IS_CJK.match(token):
                terms.extend(self._ngrams(token))
            elif token not in self._stop and (len(token) > 1 or token.isdigit()):
                words.append(token)
        terms.extend(self._stemmer.stemWords(words))
        return terms

    def _ngrams(self, run: str) -> list[str]:
        # Overlapping character n-grams find words in unsegmented CJK text without a
        # dictionary, and match Korean stems whatever particle is attached.
        n = self.ngram
        if len(run) <= n:
            return [run]
        grams = [run[i : i + n] for i in range(len(run) - n + 1)]
        return [g for g in grams if g not in self._cjk_stop]

    def _vector(self, counts: Counter[str], length: int | None) -> SparseVector:
        weights: dict[int, float] = {}
        for term, tf in counts.items():
            if length is None:
                value = 1.0
            else:
                norm = self.k1 * (1 - self.b + self.b * length / self.avg_len)
                value = tf * (self.k1 + 1) / (tf + norm)
            key = self._ids.get(term)
            if key is None:
                if len(self._ids) >= _MAX_MEMO:
                    self._ids.clear()
                key = self._ids[term] = term_id(term)
            weights[key] = weights.get(key, 0.0) + value
        indices = sorted(weights)
        return SparseVector(indices, [weights[i] for i in indices])

    def embed_document(self, text: str) -> SparseVector:
        """Return the BM25 document vector (saturated term frequency, length-normalised)."""
        terms = self.tokenize(text)
        return self._vector(Counter(terms), len(terms))

    def embed_query(self, text: str) -> SparseVector:
        """Return the query vector: weight 1 per distinct term (IDF is applied by Qdrant)."""
        return self._vector(Counter(self.tokenize(text)), None)
