"""The CPU stage of a run: load, chunk and sparse-encode one source, in a worker or inline."""

from __future__ import annotations

import logging
import os
import select
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rag_pipeline.chunking.splitter import Chunker, embedding_text
from rag_pipeline.embedding.tokens import TokenSpec, document_tokenizer
from rag_pipeline.errors import LoaderError, RagError
from rag_pipeline.ingest.sources import SourceItem
from rag_pipeline.languages import script_of
from rag_pipeline.loaders import (
    Extraction,
    LoadLimits,
    PageRef,
    extract,
    finish,
    read_page,
    read_pages,
)
from rag_pipeline.types import Chunk, Document, SparseVector

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PrepareConfig:
    """How worker processes rebuild the chunker and sparse encoder (plain, picklable data)."""

    chunk_size: int
    chunk_overlap: int
    sparse: dict[str, Any] | None
    limits: LoadLimits
    split_pages: bool = False
    # How the run's embedder tokenises documents: workers then tokenise too (None: not).
    tokens: TokenSpec | None = None


@dataclass(slots=True)
class Prepared:
    """One source's chunks, the texts to embed and their sparse vectors, ready to embed."""

    source: str  # the item's identity (its key, else its name)
    fingerprint: str
    status: str  # "added" or "updated"
    chunks: list[Chunk]
    texts: list[str]
    sparse: list[SparseVector] | None
    name: str = ""  # the name stored as the chunks' ``source``
    payload: Mapping[str, Any] | None = None
    ocr_pages: int = 0  # pages OCR'd while preparing it (here, not in other workers)
    # The texts' token ids (int32, one array per text) and the TokenSpec that made them;
    # None: the embedder tokenises the texts itself.
    token_ids: list[np.ndarray] | None = None
    tokens: TokenSpec | None = None


@dataclass(frozen=True, slots=True)
class Paged:
    """A source with pages to OCR: the run reads them across its workers, then ``finish``es
    the extraction and prepares the source from the Documents."""

    item: SourceItem
    fingerprint: str
    status: str
    extraction: Extraction


@dataclass(frozen=True, slots=True)
class Failed:
    """A source that could not be prepared, and why (a value: errors do not stop a run)."""

    source: str
    reason: str


class Preparer:
    """Turn a source item into chunks, embedding texts and sparse vectors.

    With ``split_pages`` a file with pages to OCR comes back as ``Paged`` (its pages are
    read by many workers at once); without, its pages are read here, one after another.
    With ``tokens`` the texts are also tokenised, as the embedder would.
    """

    def __init__(
        self,
        chunker: Chunker,
        sparse_encoder: Any,
        limits: LoadLimits,
        split_pages: bool = False,
        tokens: TokenSpec | None = None,
    ) -> None:
        self.chunker = chunker
        self.sparse_encoder = sparse_encoder
        self.limits = limits
        self.split_pages = split_pages
        self.tokens = tokens

    @classmethod
    def from_config(cls, config: PrepareConfig) -> Preparer:
        """Build one from plain settings (in a worker process)."""
        sparse = None
        if config.sparse is not None:
            from rag_pipeline.embedding.sparse import SparseEncoder

            sparse = SparseEncoder(**config.sparse)
        chunker = Chunker(config.chunk_size, config.chunk_overlap)
        return cls(
            chunker, sparse, config.limits, split_pages=config.split_pages, tokens=config.tokens
        )

    def __call__(
        self, item: SourceItem, fingerprint: str, status: str
    ) -> Prepared | Paged | Failed:
        ocr_pages = 0
        try:
            documents: Any = item.documents
            if item.path is not None:
                extraction = extract(item.path, source=item.source, limits=self.limits)
                if extraction.pages and self.split_pages:
                    return Paged(item, fingerprint, status, extraction)
                read = read_pages(extraction.pages, self.limits.ocr)
                ocr_pages = len(read)
                documents = finish(extraction, read, self.limits)
            # Chunk ids derive from the identity, so equal names never share a point.
            chunks = self.chunker.split(documents, item.identity)
            if not chunks:
                raise LoaderError(item.source, "no text to index after chunking")
            for chunk in chunks:
                # Stored with the chunk: a collection's language mix tells retrieval
                # which half of a hybrid search can read a query (rag_pipeline/languages.py).
                chunk.metadata["script"] = script_of(chunk.text)
            texts = [embedding_text(c) for c in chunks]
            sparse = None
            if self.sparse_encoder is not None:
                sparse = [self.sparse_encoder.embed_document(t) for t in texts]
        except RagError as exc:
            return Failed(item.identity, reason(exc))
        except Exception as exc:  # a loader library bug must fail this file, not the run
            return Failed(item.identity, f"{type(exc).__name__}: {exc}")
        token_ids = self._token_ids(texts)
        return Prepared(
            item.identity,
            fingerprint,
            status,
            chunks,
            texts,
            sparse,
            item.source,
            item.payload,
            ocr_pages,
            token_ids,
            self.tokens if token_ids is not None else None,
        )

    def _token_ids(self, texts: list[str]) -> list[np.ndarray] | None:
        """The texts' token ids by ``tokens``; None if there is none or it fails (the
        embedding stage then tokenises the texts, as without it)."""
        if self.tokens is None:
            return None
        try:
            tokenizer = document_tokenizer(self.tokens)
        except Exception:  # a tokenizer that cannot load is not tried for every source
            log.debug("cannot load %s", self.tokens.tokenizer_file, exc_info=True)
            self.tokens = None
            return None
        try:
            return tokenizer(texts)
        except Exception:  # never the source's failure: its texts are still there
            log.debug("cannot tokenise the texts of a source", exc_info=True)
            return None


def reason(exc: RagError) -> str:
    """The message reported for a failed source."""
    return exc.reason if isinstance(exc, LoaderError) else str(exc)


# One Preparer per worker process, built by the pool's initializer.
_worker: Preparer | None = None


def exit_with(parent: int) -> None:
    """End this process within a second of process ``parent``'s death.

    A SIGKILLed (or OOM-killed) run leaves its pool behind otherwise: the workers are
    children of the forkserver, not of the run, and the forkserver and the resource
    tracker stay for as long as the workers do (three such sets of ~600 MB each were found
    twenty minutes on). A pidfd (Linux ≥ 5.3) wakes this thread when ``parent`` exits;
    elsewhere it looks once a second. No library does this; it is a few lines of stdlib.
    """

    def watch() -> None:
        try:
            handle = os.pidfd_open(parent)
        except (AttributeError, OSError):
            handle = None
        if handle is not None:
            select.select([handle], [], [])
        else:
            while True:
                time.sleep(1.0)
                try:
                    os.kill(parent, 0)
                except ProcessLookupError:
                    break
                except PermissionError:
                    continue
        os._exit(1)

    threading.Thread(target=watch, name="rag-exit-with-parent", daemon=True).start()


def init_worker(config: PrepareConfig, parent: int | None = None) -> None:
    """Pool initializer: build this process's chunker and sparse encoder once; exit when
    the run (process ``parent``) is gone."""
    global _worker
    if parent is not None:
        exit_with(parent)
    # Ctrl-C reaches the whole process group: the run (in the parent) decides how to stop.
    # A worker that died of it broke the pool, which the run then rebuilt: the first
    # Ctrl-C seemed ignored.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker = Preparer.from_config(config)


def prepare_batch_in_worker(
    tasks: list[tuple[SourceItem, str, str]],
) -> list[Prepared | Paged | Failed]:
    """Pool task: prepare (item, fingerprint, status) tasks with this process's Preparer."""
    assert _worker is not None, "init_worker did not run"
    return [_worker(*task) for task in tasks]


def read_page_in_worker(page: PageRef) -> Document | Failed | None:
    """Pool task: OCR one page (None: it holds no text; Failed: it cannot be read)."""
    assert _worker is not None, "init_worker did not run"
    try:
        return read_page(page, _worker.limits.ocr)
    except RagError as exc:  # returned, not raised: our errors do not survive pickling
        return Failed(page.source, reason(exc))
    except Exception as exc:
        return Failed(page.source, f"page {page.number}: {type(exc).__name__}: {exc}")
