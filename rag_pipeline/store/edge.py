"""The embedded store: Qdrant's own engine in process (qdrant-edge), one shard per collection."""

from __future__ import annotations

import json
import os
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
    COUNT_LIMIT,
    DENSE,
    FILTERED_FIELDS,
    HNSW_EF_CONSTRUCT,
    HNSW_FULL_SCAN_THRESHOLD,
    HNSW_M,
    RRF_K,
    SPARSE,
    CollectionConfig,
    CollectionInfo,
    Fusion,
    SearchMode,
    SparseVector,
    StoredPoint,
    Where,
    check_model,
    check_weights,
    cosines,
    hit_from_payload,
    validate_collection_name,
)
from rag_pipeline.types import Hit

_META = "collection.json"
_SHARD = "shard"
# qdrant-edge has no aliases: ours live in this file of the store's folder (alias ->
# collection folder), replaced atomically, so `rag reindex` can swap a rebuilt collection
# in with one rename and readers of another process see the old one or the new one.
_ALIASES = "aliases.json"
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

    def __init__(
        self,
        path: str | Path,
        *,
        max_open: int = MAX_OPEN_COLLECTIONS,
        config: CollectionConfig | None = None,
    ) -> None:
        """``config``: on-disk storage, quantization and HNSW of the collections it creates
        (sharding and replication have no meaning in one process and are ignored)."""
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
        self._config = config or CollectionConfig()
        self._alias_cache: tuple[tuple[int, int], dict[str, str]] = ((-1, -1), {})

    def _alias_map(self) -> dict[str, str]:
        """Alias -> collection folder, re-read when another process replaced the file."""
        path = self._root / _ALIASES
        try:
            stat = path.stat()
        except FileNotFoundError:
            return {}
        # Each write is a new file (os.replace), so the inode tells a change apart even
        # within the file system's mtime granularity.
        stamp = (stat.st_ino, stat.st_mtime_ns)
        if stamp != self._alias_cache[0]:
            self._alias_cache = (stamp, json.loads(path.read_text(encoding="utf-8")))
        return self._alias_cache[1]

    def _resolve(self, name: str) -> str:
        """The collection folder a name means: every access goes through here."""
        validate_collection_name(name)
        return self._alias_map().get(name, name)

    def _dir(self, name: str) -> Path:
        return self._root / self._resolve(name)

    def _read_meta(self, name: str) -> dict[str, Any] | None:
        meta = self._dir(name) / _META
        if not meta.exists():
            return None
        return json.loads(meta.read_text(encoding="utf-8"))

    @contextmanager
    def _use(self, name: str) -> Iterator[Any]:
        """Open (or reuse) a collection's shard; it is not closed while in use."""
        # Shards are kept by folder, so an alias switched to another folder opens that one.
        name = self._resolve(name)
        with self._lock:
            shard = self._shards.get(name)
            if shard is None:
                if not (self._root / name / _META).exists():
                    raise StoreError(f"collection {name!r} does not exist")
                try:
                    shard = self._qe.EdgeShard.load(str(self._root / name / _SHARD))
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
            folder = self._dir(name)
            if folder.exists():
                # A folder without metadata is the leftover of a crash during create.
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            shard = self._qe.EdgeShard.create(str(folder / _SHARD), self._edge_config(dimension))
            # Indexes made before data arrives are built as points come, not rebuilt later.
            for key in FILTERED_FIELDS:
                shard.update(
                    self._qe.UpdateOperation.create_field_index(
                        key, self._qe.PayloadSchemaType.Keyword
                    )
                )
            self._shards[folder.name] = shard
            # Metadata is written last: its presence marks a complete collection.
            (folder / _META).write_text(
                json.dumps({"model": model, "dimension": dimension}), encoding="utf-8"
            )
            self._evict()

    def _edge_config(self, dimension: int) -> Any:
        qe, cfg = self._qe, self._config
        on_disk = cfg.on_disk or None
        hnsw = None
        if cfg.custom_hnsw:
            hnsw = qe.HnswIndexConfig(
                m=HNSW_M if cfg.hnsw_m is None else cfg.hnsw_m,
                ef_construct=cfg.hnsw_ef_construct or HNSW_EF_CONSTRUCT,
                full_scan_threshold=HNSW_FULL_SCAN_THRESHOLD,
            )
        quantization = None
        if cfg.quantization == "int8":
            # The int8 copy stays in RAM for the search; the originals rescore the best.
            quantization = qe.ScalarQuantizationConfig(qe.ScalarType.Int8, always_ram=True)
        return qe.EdgeConfig(
            vectors={
                DENSE: qe.EdgeVectorParams(
                    size=dimension, distance=qe.Distance.Cosine, on_disk=on_disk
                )
            },
            sparse_vectors={
                SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf, on_disk=on_disk)
            },
            on_disk_payload=on_disk,
            hnsw_config=hnsw,
            quantization_config=quantization,
        )

    def list_collections(self) -> list[str]:
        folders = {p.parent.name for p in self._root.glob(f"*/{_META}")}
        # A folder reached through an alias is listed by its alias only.
        aliases = {a: f for a, f in self._alias_map().items() if f in folders}
        return sorted((folders - set(aliases.values())) | set(aliases))

    def delete_collection(self, name: str) -> bool:
        with self._lock:
            folder = self._resolve(name)
            if name in self._alias_map():
                self._write_aliases({a: f for a, f in self._alias_map().items() if a != name})
            return self._delete_folder(folder)

    def _delete_folder(self, name: str) -> bool:
        folder = self._root / name
        if not folder.exists():
            return False
        shard = self._shards.pop(name, None)
        if shard is not None:
            shard.close()
        self._last_flush.pop(name, None)
        (folder / _META).unlink(missing_ok=True)
        shutil.rmtree(folder)
        return True

    def _write_aliases(self, aliases: dict[str, str]) -> None:
        path = self._root / _ALIASES
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as out:
            json.dump(aliases, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        self._alias_cache = ((-1, -1), {})

    def switch_alias(self, alias: str, target: str) -> None:
        with self._lock:
            validate_collection_name(alias)
            folder = self._resolve(target)
            if not (self._root / folder / _META).exists():
                raise StoreError(f"collection {target!r} does not exist")
            old = self._resolve(alias)
            # The record is replaced in one rename: that is the switch.
            self._write_aliases({**self._alias_map(), alias: folder})
            if old != folder:
                # The old folder (a collection made before the alias, or the previous
                # target) is shadowed now; a crash before this leaves it as garbage only.
                self._delete_folder(old)

    def existing_ids(self, name: str, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        with self._use(name) as shard:
            records = shard.retrieve(list(ids), with_payload=False, with_vector=False)
        return {str(r.id) for r in records}

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

    def delete_where(self, name: str, key: str, value: str, *, where: Where | None = None) -> None:
        flt = self._filter({**(where or {}), key: value})
        with self._use(name) as shard, self._lock:
            shard.update(self._qe.UpdateOperation.delete_points_by_filter(flt))
            self._flush_if_due(name, shard)

    def set_payload_where(
        self,
        name: str,
        payload: dict[str, Any],
        key: str,
        value: str,
        *,
        where: Where | None = None,
    ) -> None:
        flt = self._filter({**(where or {}), key: value})
        with self._use(name) as shard, self._lock:
            shard.update(self._qe.UpdateOperation.set_payload_by_filter(flt, payload))
            self._flush_if_due(name, shard)

    def _flush_if_due(self, name: str, shard: Any) -> None:
        now = time.monotonic()
        last = self._last_flush.setdefault(name, now)
        if now - last >= FLUSH_INTERVAL_S:
            shard.flush()
            self._last_flush[name] = now

    def sidecar(self, name: str, filename: str) -> Path | None:
        if filename in (_META, _SHARD) or "/" in filename:
            raise StoreError(f"not a sidecar file name: {filename!r}")
        folder = self._dir(name)
        return folder / filename if (folder / _META).exists() else None

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

    def ensure_payload_index(self, name: str, key: str, *, is_tenant: bool = False) -> None:
        qe = self._qe
        schema: Any = qe.KeywordIndexParams(is_tenant=True) if is_tenant else None
        with self._use(name) as shard, self._lock:
            if key not in shard.info().payload_schema:
                shard.update(
                    qe.UpdateOperation.create_field_index(
                        key, schema or qe.PayloadSchemaType.Keyword
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
        # No fields: ids alone, without touching the payload storage (0.2 s at 185k).
        with_payload: Any = list(fields) if fields else fields is None
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
                yield str(record.id), record.payload or {}, vectors  # a new dict already
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
        weights: tuple[int, int] = (1, 1),
        sparse_floor: float = 0.0,
    ) -> list[Hit]:
        check_weights(weights)
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
                # A half weighted n is n identical prefetches: DBSF has no weights of its
                # own, and one more HNSW search (~1 ms) is cheaper than a second round trip.
                prefetches=[qe.Prefetch(limit=candidates, query=dense_query, filter=flt)]
                * weights[0]
                + [
                    qe.Prefetch(
                        limit=candidates,
                        query=sparse_query,
                        filter=flt,
                        score_threshold=sparse_floor or None,
                    )
                ]
                * weights[1],
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

    def value_counts(self, name: str, key: str, *, where: Where | None = None) -> dict[str, int]:
        qe = self._qe
        # Counting by a field needs its index; collections made before it was one get it now.
        self.ensure_payload_index(name, key)
        request = qe.FacetRequest(key, limit=COUNT_LIMIT, exact=True, filter=self._filter(where))
        with self._use(name) as shard:
            response = shard.facet(request)
        return {str(hit.value): int(hit.count) for hit in response.hits}

    def count(self, name: str, *, where: Where | None = None) -> int:
        request = self._qe.CountRequest(exact=True, filter=self._filter(where))
        with self._use(name) as shard:
            return int(shard.count(request))

    def unindexed(self, name: str) -> int:
        # The engine counts indexed vectors of both kinds together, and every sparse vector
        # is indexed as it is written: what is left over is the dense vectors in an HNSW
        # graph. (Points without a sparse vector, all stopwords, have none to count.)
        has_sparse = self._qe.Filter(must=[self._qe.HasVectorCondition(SPARSE)])
        with self._use(name) as shard:
            info = shard.info()
            sparse = int(shard.count(self._qe.CountRequest(exact=True, filter=has_sparse)))
        return max(0, int(info.points_count) - (int(info.indexed_vectors_count) - sparse))

    def build_index(self, name: str) -> None:
        # qdrant-edge has no background optimizer: segments are indexed (and merged) only
        # here. Its optimize holds the GIL throughout (measured: no other thread of the
        # process ran during an 87 s build of 111k points), so a server never calls this.
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
