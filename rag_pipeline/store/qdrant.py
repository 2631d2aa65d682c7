"""The qdrant-client backend: a Qdrant server or cluster by URL, or qdrant-client's local mode."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag_pipeline.errors import StoreError
from rag_pipeline.store.base import (
    COUNT_LIMIT,
    DENSE,
    FILTERED_FIELDS,
    HNSW_EF_CONSTRUCT,
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

_SCROLL_PAGE = 1024
_UPSERT_BATCH = 256


class QdrantStore:
    """Collections in a Qdrant reached through qdrant-client."""

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        path: str | None = None,
        timeout: int = 60,
        config: CollectionConfig | None = None,
    ) -> None:
        """``config``: how collections this store creates are laid out."""
        from qdrant_client import QdrantClient, models

        self._models = models
        self._config = config or CollectionConfig()
        try:
            if url == ":memory:":
                client = QdrantClient(location=":memory:")
            elif url:
                client = QdrantClient(url=url, api_key=api_key, timeout=timeout)
            else:
                client = QdrantClient(path=path)
        except Exception as exc:
            raise StoreError(f"cannot open Qdrant at {url or path}: {exc}") from exc
        self._client: Any = _Translated(client, url or path or ":memory:")

    def collection_info(self, name: str) -> CollectionInfo | None:
        validate_collection_name(name)
        if not self._client.collection_exists(name):
            return None
        info = self._client.get_collection(name)
        meta = info.config.metadata or {}
        if "model" not in meta:
            raise StoreError(f"collection {name!r} was not created by rag-pipeline (no model)")
        return CollectionInfo(
            name=name,
            model=str(meta["model"]),
            dimension=int(meta["dimension"]),
            points=self.count(name),
            extra={k: v for k, v in meta.items() if k not in ("model", "dimension")},
        )

    def has_collection(self, name: str) -> bool:
        return self.collection_model(name) is not None

    def collection_model(self, name: str) -> tuple[str, int] | None:
        validate_collection_name(name)
        if not self._client.collection_exists(name):
            return None
        meta = self._client.get_collection(name).config.metadata or {}
        if "model" not in meta:
            raise StoreError(f"collection {name!r} was not created by rag-pipeline (no model)")
        return str(meta["model"]), int(meta["dimension"])

    def ensure_collection(self, name: str, *, model: str, dimension: int) -> None:
        described = self.collection_model(name)
        if described is not None:
            check_model(name, described, model, dimension)
            return
        m = self._models
        cfg = self._config
        on_disk = cfg.on_disk or None
        self._client.create_collection(
            name,
            vectors_config={
                DENSE: m.VectorParams(size=dimension, distance=m.Distance.COSINE, on_disk=on_disk)
            },
            sparse_vectors_config={
                SPARSE: m.SparseVectorParams(
                    modifier=m.Modifier.IDF, index=m.SparseIndexParams(on_disk=on_disk)
                )
            },
            shard_number=cfg.shard_number,
            replication_factor=cfg.replication_factor,
            write_consistency_factor=cfg.write_consistency_factor,
            on_disk_payload=on_disk,
            hnsw_config=m.HnswConfigDiff(
                m=HNSW_M if cfg.hnsw_m is None else cfg.hnsw_m,
                ef_construct=cfg.hnsw_ef_construct or HNSW_EF_CONSTRUCT,
            )
            if cfg.custom_hnsw
            else None,
            # The int8 copy stays in RAM for the search; the originals (on disk when
            # on_disk is set) only rescore the best candidates.
            quantization_config=m.ScalarQuantization(
                scalar=m.ScalarQuantizationConfig(type=m.ScalarType.INT8, always_ram=True)
            )
            if cfg.quantization == "int8"
            else None,
            metadata={"model": model, "dimension": dimension},
        )
        # Indexes made before data arrives are built as points come, not rebuilt later.
        for key in FILTERED_FIELDS:
            self.ensure_payload_index(name, key)

    def _aliases(self) -> dict[str, str]:
        """Alias name -> collection, as the engine keeps them."""
        return {a.alias_name: a.collection_name for a in self._client.get_aliases().aliases}

    def list_collections(self) -> list[str]:
        # A collection reached through an alias is listed by its alias only.
        aliases = self._aliases()
        real = {c.name for c in self._client.get_collections().collections}
        return sorted((real - set(aliases.values())) | {a for a, c in aliases.items() if c in real})

    def delete_collection(self, name: str) -> bool:
        validate_collection_name(name)
        target = self._aliases().get(name)
        if target is not None:
            self._alias_ops(self._models.DeleteAliasOperation(delete_alias=self._delete(name)))
            name = target
        if not self._client.collection_exists(name):
            return False
        self._client.delete_collection(name)
        return True

    def _delete(self, alias: str) -> Any:
        return self._models.DeleteAlias(alias_name=alias)

    def _alias_ops(self, *operations: Any) -> None:
        self._client.update_collection_aliases(change_aliases_operations=list(operations))

    def switch_alias(self, alias: str, target: str) -> None:
        m = self._models
        validate_collection_name(alias)
        aliases = self._aliases()
        target = aliases.get(target, target)
        if not self._client.collection_exists(target):
            raise StoreError(f"collection {target!r} does not exist")
        create = m.CreateAliasOperation(
            create_alias=m.CreateAlias(collection_name=target, alias_name=alias)
        )
        old = aliases.get(alias)
        if old is not None:
            # One request: readers see the old collection or the new one, never neither.
            self._alias_ops(m.DeleteAliasOperation(delete_alias=self._delete(alias)), create)
        else:
            if self._client.collection_exists(alias):
                # Qdrant refuses an alias named like a collection, so a collection made
                # before aliases is dropped first: readers miss it for one request's time.
                self._client.delete_collection(alias)
            self._alias_ops(create)
        if old is not None and old != target:
            self._client.delete_collection(old)

    def upsert(self, name: str, points: Sequence[StoredPoint]) -> None:
        m = self._models
        structs = []
        for point in points:
            vector: dict[str, Any] = {DENSE: np.asarray(point.vector, dtype=np.float32).tolist()}
            if point.sparse is not None and point.sparse.indices:
                vector[SPARSE] = m.SparseVector(
                    indices=point.sparse.indices, values=point.sparse.values
                )
            structs.append(m.PointStruct(id=point.id, vector=vector, payload=point.payload))
        for start in range(0, len(structs), _UPSERT_BATCH):
            self._client.upsert(name, structs[start : start + _UPSERT_BATCH], wait=True)

    def delete_points(self, name: str, ids: Sequence[str]) -> None:
        if ids:
            self._client.delete(name, self._models.PointIdsList(points=list(ids)), wait=True)

    def delete_where(self, name: str, key: str, value: str, *, where: Where | None = None) -> None:
        flt = self._filter({**(where or {}), key: value})
        self._client.delete(name, self._models.FilterSelector(filter=flt), wait=True)

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
        self._client.set_payload(name, payload, points=flt, wait=True)

    def existing_ids(self, name: str, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        records = self._client.retrieve(name, list(ids), with_payload=False, with_vectors=False)
        return {str(r.id) for r in records}

    def _filter(self, where: Where | None) -> Any:
        if not where:
            return None
        m = self._models
        return m.Filter(
            must=[
                m.FieldCondition(
                    key=key,
                    match=m.MatchValue(value=value)
                    if isinstance(value, str)
                    else m.MatchAny(any=list(value)),
                )
                for key, value in where.items()
            ]
        )

    def ensure_payload_index(self, name: str, key: str, *, is_tenant: bool = False) -> None:
        m = self._models
        schema: Any = m.PayloadSchemaType.KEYWORD
        if is_tenant:
            schema = m.KeywordIndexParams(type=m.KeywordIndexType.KEYWORD, is_tenant=True)
        with warnings.catch_warnings():
            # qdrant-client's local mode has no payload indexes and says so each time.
            warnings.simplefilter("ignore")
            self._client.create_payload_index(name, key, field_schema=schema, wait=True)

    def scroll_payloads(
        self,
        name: str,
        fields: Sequence[str] | None = None,
        *,
        with_vectors: bool = False,
        where: Where | None = None,
    ) -> Iterator[tuple[str, dict[str, Any], Any]]:
        offset = None
        with_payload: Any = list(fields) if fields else fields is None
        while True:
            records, offset = self._client.scroll(
                name,
                scroll_filter=self._filter(where),
                limit=_SCROLL_PAGE,
                offset=offset,
                with_payload=with_payload,
                with_vectors=with_vectors,
            )
            for record in records:
                vectors = None
                if with_vectors:
                    vectors = {}
                    for key, value in (record.vector or {}).items():  # type: ignore[union-attr]
                        if hasattr(value, "indices"):
                            vectors[key] = SparseVector(list(value.indices), list(value.values))
                        else:
                            vectors[key] = np.asarray(value, dtype=np.float32)
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
        weights: tuple[int, int] = (1, 1),
        sparse_floor: float = 0.0,
    ) -> list[Hit]:
        check_weights(weights)
        m = self._models
        flt = self._filter(where)
        dense_query = np.asarray(dense, dtype=np.float32).tolist() if dense is not None else None
        sparse_query = None
        if sparse is not None and sparse.indices:
            sparse_query = m.SparseVector(indices=sparse.indices, values=sparse.values)
        if mode == "hybrid" and dense_query is not None and sparse_query is not None:
            response = self._client.query_points(
                name,
                # A half weighted n is n identical prefetches (see EdgeStore.search).
                prefetch=[m.Prefetch(query=dense_query, using=DENSE, limit=candidates, filter=flt)]
                * weights[0]
                + [
                    m.Prefetch(
                        query=sparse_query,
                        using=SPARSE,
                        limit=candidates,
                        filter=flt,
                        score_threshold=sparse_floor or None,
                    )
                ]
                * weights[1],
                query=(
                    m.RrfQuery(rrf=m.Rrf(k=RRF_K))
                    if fusion == "rrf"
                    else m.FusionQuery(fusion=m.Fusion.DBSF)
                ),
                limit=limit,
                with_payload=True,
                with_vectors=[DENSE],
            )
            similarities = cosines([_dense_of(p.vector) for p in response.points], dense)
            return [
                hit_from_payload(str(p.id), p.score, p.payload or {}, similarity)
                for p, similarity in zip(response.points, similarities, strict=True)
            ]
        use_sparse = mode == "sparse"
        query = sparse_query if use_sparse else dense_query
        if query is None:
            return []
        response = self._client.query_points(
            name,
            query=query,
            using=SPARSE if use_sparse else DENSE,
            query_filter=flt,
            limit=limit,
            with_payload=True,
        )
        # A dense search already scores by cosine similarity.
        return [
            hit_from_payload(str(p.id), p.score, p.payload or {}, None if use_sparse else p.score)
            for p in response.points
        ]

    def value_counts(self, name: str, key: str, *, where: Where | None = None) -> dict[str, int]:
        # A server counts by a field only where it is indexed (local mode needs none).
        self.ensure_payload_index(name, key)
        response = self._client.facet(
            name, key, facet_filter=self._filter(where), limit=COUNT_LIMIT, exact=True
        )
        return {str(hit.value): int(hit.count) for hit in response.hits}

    def count(self, name: str, *, where: Where | None = None) -> int:
        return int(self._client.count(name, count_filter=self._filter(where), exact=True).count)

    def sidecar(self, name: str, filename: str) -> Path | None:
        return None  # a server's collections have no folder here

    def flush(self, name: str) -> None:
        # A Qdrant server flushes on its own schedule; local mode persists every write.
        return None

    def unindexed(self, name: str) -> int:
        # A Qdrant server indexes segments past its indexing threshold in the background.
        return 0

    def build_index(self, name: str) -> None:
        return None

    def close(self) -> None:
        self._client.close()


class _Translated:
    """The qdrant-client with its errors turned into ``StoreError`` on every call: an
    engine's answer (``UnexpectedResponse``: a 4xx/5xx from the server), a transport
    failure (httpx, gRPC) or a refusal of the local mode, named with the call and where.

    Our own small proxy because qdrant-client has no single error type to catch at one
    place: the boundary is every method this store calls.
    """

    def __init__(self, client: Any, where: str) -> None:
        self._client = client
        self._where = where

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if not callable(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except StoreError:
                raise
            except Exception as exc:  # every engine error becomes ours, here, once
                raise StoreError(f"Qdrant {name} failed at {self._where}: {_reason(exc)}") from exc

        return call


def _reason(exc: Exception) -> str:
    """The first line of an engine error (UnexpectedResponse carries the server's body)."""
    from qdrant_client.http.exceptions import UnexpectedResponse

    if isinstance(exc, UnexpectedResponse):
        body = exc.content.decode("utf-8", errors="replace")[:300] if exc.content else ""
        return f"HTTP {exc.status_code} {exc.reason_phrase}: {body}".strip().rstrip(":")
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _dense_of(vector: Any) -> Any:
    return vector.get(DENSE) if isinstance(vector, dict) else None
