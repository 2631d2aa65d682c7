"""Document → chunks: token-aware, following markdown headings, safe for CJK sentences."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from typing import Any

from rag_pipeline.chunking.tokens import get_encoding
from rag_pipeline.errors import ConfigError
from rag_pipeline.types import Chunk, Document

# Fixed namespace so that chunk ids are the same on every machine and every run.
CHUNK_NAMESPACE = uuid.UUID("5b0c1f55-6a43-4b8e-9f0e-3a7c2d1e8b61")

# Sentence ends for the fallback split: Latin and CJK full-width punctuation, so that
# Japanese and Korean text without spaces still splits between sentences, not mid-word.
SENTENCE_END_REGEX = r"[^,.;!?。．！？；、]+[,.;!?。．！？；、]?"
PARAGRAPH_SEPARATOR = "\n\n"


def content_hash(text: str) -> str:
    """Return a short, stable hash of ``text``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def chunk_id(source: str, index: int, text: str) -> str:
    """Return the deterministic point id of a chunk: UUID5 of source, index and content."""
    return str(uuid.uuid5(CHUNK_NAMESPACE, f"{source}\x00{index}\x00{content_hash(text)}"))


class Chunker:
    """Split documents into chunks of at most ``chunk_size`` cl100k tokens."""

    def __init__(self, chunk_size: int = 256, chunk_overlap: int = 32) -> None:
        if chunk_size < 16:
            raise ConfigError(f"chunk_size must be at least 16 tokens, got {chunk_size}")
        if not 0 <= chunk_overlap < chunk_size:
            raise ConfigError(
                f"chunk_overlap must be >= 0 and smaller than chunk_size ({chunk_size}), "
                f"got {chunk_overlap}"
            )
        from llama_index.core.node_parser import MarkdownNodeParser, SentenceSplitter

        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        encoding = get_encoding()
        self._count = lambda text: encoding.encode(text, disallowed_special=())
        self._sentences = SentenceSplitter(
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            tokenizer=self._count,
            paragraph_separator=PARAGRAPH_SEPARATOR,
            secondary_chunking_regex=SENTENCE_END_REGEX,
        )
        self._markdown = MarkdownNodeParser()

    def sections(self, document: Document) -> list[tuple[str, list[str]]]:
        """Return (text, heading path) sections of a document."""
        if not document.markdown:
            return [(document.text, [])]
        from llama_index.core import Document as LlamaDocument

        nodes = self._markdown.get_nodes_from_documents([LlamaDocument(text=document.text)])
        sections: list[tuple[str, list[str]]] = []
        carried = ""
        for node in nodes:
            text = node.get_content()
            path = [p for p in node.metadata.get("header_path", "/").split("/") if p]
            first, _, body = text.lstrip().partition("\n")
            if first.startswith("#"):
                path.append(first.lstrip("#").strip())
                if not body.strip():
                    # A heading with nothing under it before the next heading would be a
                    # chunk of one line; carry it into the next section instead.
                    carried += text.strip() + "\n\n"
                    continue
            sections.append((carried + text, path))
            carried = ""
        if carried:
            sections.append((carried.strip(), path))
        return sections

    def split(self, documents: Sequence[Document], source: str) -> list[Chunk]:
        """Split one file's documents into chunks with ids unique to ``source``."""
        chunks: list[Chunk] = []
        for document in documents:
            for section_text, heading_path in self.sections(document):
                if not section_text.strip():
                    continue
                for piece in self._sentences.split_text(section_text):
                    piece = piece.strip()
                    if not piece:
                        continue
                    metadata: dict[str, Any] = {
                        k: v for k, v in document.metadata.items() if k != "source"
                    }
                    if heading_path:
                        metadata["heading_path"] = heading_path
                    index = len(chunks)
                    chunks.append(
                        Chunk(
                            id=chunk_id(source, index, piece),
                            text=piece,
                            source=source,
                            index=index,
                            metadata=metadata,
                        )
                    )
        return chunks


def embedding_text(chunk: Chunk) -> str:
    """Return the text to embed for a chunk: its title and heading path, then its text."""
    # A chunk cut from the middle of a section loses the words that say what it is
    # about; putting the title and heading path in front puts them back for the model.
    context = [str(chunk.metadata.get("title") or "")]
    context.extend(chunk.metadata.get("heading_path") or [])
    context = [c for c in context if c and c not in chunk.text[:200]]
    if not context:
        return chunk.text
    return " > ".join(context) + "\n" + chunk.text
