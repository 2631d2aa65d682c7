"""The embedded store: Qdrant's own engine in process (qdrant-edge), one shard per collection."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from rag_pipeline.errors import StoreError
from rag_pipeline.store.base import (
    DENSE,
    RRF_K,
    SPARSE,
    CollectionInfo,
    Fusion,
    SearchMode,
    SparseVector,
    StoredPoint,
    Where,
    check_model,
    cosines,
    hit_from_payload,
    validate_collection_name,
)
from rag_pipeline.types import Hit

_META = "collection.json"
_SHARD = "shard"
_SCROLL_PAGE = 1024
# Each open shard runs 8 engine threads and holds its WAL lock; a server with one
# collection per uploaded file would otherwise keep thousands open (300 open shards
# measured 2,400 threads). Least recently used shards beyond this are closed.
MAX_OPEN_COLLECTIONS = 32
# Writes go to the shard's write-ahead log, which survives a killed process; segments are
# flushed at most this often and when a run ends or a shard closes, as a Qdrant server
# does (its flush_interval_sec is 5). A flush per write cost 35 ms under disk load.
FLUSH_INTERVAL_S = 5.0


class EdgeStore:
    """Collections as qdrant-edge shards under one folder."""

    def __init__(self, path: str | Path, *, max_open: int = MAX_OPEN_COLLECTIONS) -> None:
        import qdrant_edge

        if max_open < 1:
            raise StoreError(f"max_open must be >= 1, got {max_open}")
        self._qe = qdrant_edge
        self._root = Path(path)
        self._root.mkdir(parents=True, exist_ok=True)
        self._shards: OrderedDict[str, Any] = OrderedDict()  # least recently used first
        self._in_use: Counter[str] = Counter()
        self._max_open = max_open
        self._lock = threading.RLock()
        self._last_flush: dict[str, float] = {}

    def _dir(self, name: str) -> Path:
        return self._root / validate_collection_name(name)

    def _read_meta(self, name: str) -> dict[str, Any] | None:
        meta = self._dir(name) / _META
        if not meta.exists():
            return None
        return json.loads(meta.read_text(encoding="utf-8"))

    @contextmanager
    def _use(self, name: str) -> Iterator[Any]:
        """Open (or reuse) a collection's shard; it is not closed while in use."""
        with self._lock:
            shard = self._shards.get(name)
            if shard is None:
                if self._read_meta(name) is None:
                    raise StoreError(f"collection {name!r} does not exist")
                try:
                    shard = self._qe.EdgeShard.load(str(self._dir(name) / _SHARD))
                except Exception as exc:  # the engine raises plain RuntimeErrors
                    hint = " (is another process using this data dir?)" if "WAL" in str(exc) else ""
                    raise StoreError(f"cannot open collection {name!r}: {exc}{hint}") from exc
                self._shards[name] = shard
            else:
                self._shards.move_to_end(name)
            self._in_use[name] += 1
        try:
            yield shard
        finally:
            with self._lock:
                self._in_use[name] -= 1
                if self._in_use[name] <= 0:
                    del self._in_use[name]
                self._evict()

    def _evict(self) -> None:
        excess = len(self._shards) - self._max_open
        for name in list(self._shards):
            if excess <= 0:
                return
            if self._in_use.get(name):
                continue
            self._close_shard(name, self._shards.pop(name))
            excess -= 1

    def _close_shard(self, name: str, shard: Any) -> None:
        shard.flush()
        shard.close()
        self._last_flush.pop(name, None)

    @property
    def open_collections(self) -> list[str]:
        """Collections whose shards are open now, least recently used first."""
        with self._lock:
            return list(self._shards)

    def collection_info(self, name: str) -> CollectionInfo | None:
        meta = self._read_meta(name)
        if meta is None:
            return None
        return CollectionInfo(
            name=name,
            model=meta["model"],
            dimension=int(meta["dimension"]),
            points=self.count(name),
            extra=meta.get("extra", {}),
        )

    def has_collection(self, name: str) -> bool:
        return self.collection_model(name) is not None

    def collection_model(self, name: str) -> tuple[str, int] | None:
        meta = self._read_meta(name)
        return None if meta is None else (meta["model"], int(meta["dimension"]))

    def ensure_collection(self, name: str, *, model: str, dimension: int) -> None:
        with self._lock:
            # Model and dimension only: an exact count per call grew with the collection.
            described = self.collection_model(name)
            if described is not None:
                check_model(name, described, model, dimension)
                return
            qe = self._qe
            folder = self._dir(name)
            if folder.exists():
                # A folder without metadata is the leftover of a crash during create.
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            config = qe.EdgeConfig(
                vectors={DENSE: qe.EdgeVectorParams(size=dimension, distance=qe.Distance.Cosine)},
                sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            )
            self._shards[name] = qe.EdgeShard.create(str(folder / _SHARD), config)
            # Metadata is written last: its presence marks a complete collection.
            (folder / _META).write_text(
                json.dumps({"model": model, "dimension": dimension}), encoding="utf-8"
            )
            self._evict()

    def list_collections(self) -> list[str]:
        return sorted(p.parent.name for p in self._root.glob(f"*/{_META}"))

    def delete_collection(self, name: str) -> bool:
        with self._lock:
            folder = self._dir(name)
            if not folder.exists():
                return False
            shard = self._shards.pop(name, None)
            if shard is not None:
                shard.close()
            self._last_flush.pop(name, None)
            (folder / _META).unlink(missing_ok=True)
            shutil.rmtree(folder)
            return True

    def upsert(self, name: str, points: Sequence[StoredPoint]) -> None:
        if not points:
            return
        qe = self._qe
        edge_points = []
        for point in points:
            vector: dict[str, Any] = {DENSE: np.asarray(point.vector, dtype=np.float32).tolist()}
            if point.sparse is not None and point.sparse.indices:
                vector[SPARSE] = qe.SparseVector(point.sparse.indices, point.sparse.values)
            edge_points.append(qe.Point(point.id, vector, point.payload))
        with self._use(name) as shard, self._lock:
            shard.update(qe.UpdateOperation.upsert_points(edge_points))
            self._flush_if_due(name, shard)

    def delete_points(self, name: str, ids: Sequence[str]) -> None:
        if not ids:
            return
        with self._use(name) as shard, self._lock:
            shard.update(self._qe.UpdateOperation.delete_points(list(ids)))
            self._flush_if_due(name, shard)

    def delete_where(self, name: str, key: str, value: str) -> None:
        with self._use(name) as shard, self._lock:
            shard.update(
                self._qe.UpdateOperation.delete_points_by_filter(self._filter({key: value}))
            )
            self._flush_if_due(name, shard)

    def _flush_if_due(self, name: str, shard: Any) -> None:
        now = time.monotonic()
        last = self._last_flush.setdefault(name, now)
        if now - last >= FLUSH_INTERVAL_S:
            shard.flush()
            self._last_flush[name] = now

    def flush(self, name: str) -> None:
        with self._use(name) as shard, self._lock:
            shard.flush()
            self._last_flush[name] = time.monotonic()

    def _filter(self, where: Where | None) -> Any:
        if not where:
            return None
        qe = self._qe
        return qe.Filter(
            must=[
                qe.FieldCondition(
                    key=key,
                    match=qe.MatchValue(value)
                    if isinstance(value, str)
                    else qe.MatchAny(list(value)),
                )
                for key, value in where.items()
            ]
        )

    def ensure_payload_index(self, name: str, key: str) -> None:
        with self._use(name) as shard, self._lock:
            if key not in shard.info().payload_schema:
                shard.update(
                    self._qe.UpdateOperation.create_field_index(
                        key, self._qe.PayloadSchemaType.Keyword
                    )
                )

    def scroll_payloads(
        self,
        name: str,
        fields: Sequence[str] | None = None,
        *,
        with_vectors: bool = False,
        where: Where | None = None,
    ) -> Iterator[tuple[str, dict[str, Any], Any]]:
        offset = None
        with_payload: Any = list(fields) if fields is not None else True
        flt = self._filter(where)
        while True:
            # Held per page, not across the consumer's work between pages.
            with self._use(name) as shard:
                records, offset = shard.scroll(
                    self._qe.ScrollRequest(
                        offset=offset,
                        limit=_SCROLL_PAGE,
                        filter=flt,
                        with_payload=with_payload,
                        with_vector=with_vectors,
                    )
                )
            for record in records:
                vectors = _plain_vectors(record.vector) if with_vectors else None
                yield str(record.id), dict(record.payload or {}), vectors
            if offset is None:
                return

    def search(
        self,
        name: str,
        *,
        dense: np.ndarray | None = None,
        sparse: SparseVector | None = None,
        limit: int = 10,
        mode: SearchMode = "dense",
        where: Where | None = None,
        candidates: int = 100,
        fusion: Fusion = "dbsf",
    ) -> list[Hit]:
        qe = self._qe
        flt = self._filter(where)
        dense_query = None
        if dense is not None:
            dense_query = qe.Query.Nearest(
                np.asarray(dense, dtype=np.float32).tolist(), using=DENSE
            )
        sparse_query = None
        if sparse is not None and sparse.indices:
            sparse_query = qe.Query.Nearest(
                qe.SparseVector(sparse.indices, sparse.values), using=SPARSE
            )
        if mode == "hybrid" and dense_query is not None and sparse_query is not None:
            request = qe.QueryRequest(
                limit=limit,
                prefetches=[
                    qe.Prefetch(limit=candidates, query=dense_query, filter=flt),
                    qe.Prefetch(limit=candidates, query=sparse_query, filter=flt),
                ],
                query=qe.Fusion.Rrf(k=RRF_K) if fusion == "rrf" else qe.Fusion.Dbsf(),
                with_payload=True,
                with_vector=[DENSE],
            )
            with self._use(name) as shard:
                points = shard.query(request)
            similarities = cosines([(p.vector or {}).get(DENSE) for p in points], dense)
            return [
                hit_from_payload(str(p.id), p.score, p.payload or {}, similarity)
                for p, similarity in zip(points, similarities, strict=True)
            ]
        query = sparse_query if mode == "sparse" else dense_query
        if query is None:
            return []
        request = qe.QueryRequest(limit=limit, query=query, filter=flt, with_payload=True)
        with self._use(name) as shard:
            points = shard.query(request)
        # A dense search already scores by cosine similarity.
        return [
            hit_from_payload(
                str(p.id), p.score, p.payload or {}, None if mode == "sparse" else p.score
            )
            for p in points
        ]

    def count(self, name: str) -> int:
        with self._use(name) as shard:
            return int(shard.count(self._qe.CountRequest(exact=True)))

    def optimize(self, name: str) -> None:
        """Build the HNSW index of a collection (worth it after a large ingest)."""
        with self._use(name) as shard, self._lock:
            shard.optimize()

    def close(self) -> None:
        with self._lock:
            for name, shard in self._shards.items():
                self._close_shard(name, shard)
            self._shards.clear()


def _plain_vectors(vector: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (vector or {}).items():
        if hasattr(value, "indices"):
            out[key] = SparseVector(list(value.indices), list(value.values))
        else:
            out[key] = np.asarray(value, dtype=np.float32)
    return out
