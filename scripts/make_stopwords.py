"""Regenerate rag_pipeline/embedding/stopwords/ from NLTK's lists and spaCy's JA/KO lists."""

from __future__ import annotations

from pathlib import Path

import llama_index.core
from spacy.lang.ja.stop_words import STOP_WORDS as JA
from spacy.lang.ko.stop_words import STOP_WORDS as KO

from rag_pipeline.embedding.sparse import NLTK_LANGUAGES

OUT = Path(__file__).resolve().parents[1] / "rag_pipeline" / "embedding" / "stopwords"
NLTK = Path(llama_index.core.__file__).parent / "_static" / "nltk_cache" / "corpora" / "stopwords"


def main() -> None:
    for name in NLTK_LANGUAGES.values():
        lines = (NLTK / name).read_text(encoding="utf-8").splitlines()
        words = [w.strip() for w in lines if w.strip()]
        (OUT / f"{name}.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    bigrams = sorted({w for w in JA | KO if len(w) == 2})
    (OUT / "cjk_bigrams.txt").write_text("\n".join(bigrams) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
