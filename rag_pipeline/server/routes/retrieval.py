"""``/api/v1/retrieval``: query a file or knowledge collection without a chat model."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from rag_pipeline.server.auth import CurrentUser
from rag_pipeline.server.db import User
from rag_pipeline.server.search import collection_for_name, query_result, search
from rag_pipeline.store.base import SearchMode

router = APIRouter(prefix="/api/v1/retrieval", tags=["retrieval"])


class QueryDocForm(BaseModel):
    """Body of ``POST /query/doc``."""

    collection_name: str
    query: str
    k: int | None = Field(None, ge=1, le=1000)
    hybrid: bool | None = None


class QueryCollectionForm(BaseModel):
    """Body of ``POST /query/collection``."""

    collection_names: list[str] = Field(min_length=1)
    query: str
    k: int | None = Field(None, ge=1, le=1000)
    hybrid: bool | None = None


def _mode(hybrid: bool | None) -> SearchMode | None:
    if hybrid is None:
        return None
    return "hybrid" if hybrid else "dense"


def _run(
    request: Request,
    user: User,
    names: list[str],
    query: str,
    k: int | None,
    mode: SearchMode | None,
    *,
    ids: bool,
) -> dict[str, Any]:
    state = request.app.state
    with state.db.session() as session:
        collections = [collection_for_name(session, user, n) for n in names]
    hits = search(state.pipeline, collections, query, k or state.settings.top_k, mode)
    return query_result(hits, state.pipeline.embedder.model_name, ids=ids)


@router.post("/query/doc")
def query_doc(request: Request, user: CurrentUser, form: QueryDocForm) -> dict[str, Any]:
    """The best chunks of one collection for a query."""
    return _run(
        request, user, [form.collection_name], form.query, form.k, _mode(form.hybrid), ids=True
    )


@router.post("/query/collection")
def query_collection(
    request: Request, user: CurrentUser, form: QueryCollectionForm
) -> dict[str, Any]:
    """The best chunks over several collections for a query, merged."""
    return _run(
        request, user, form.collection_names, form.query, form.k, _mode(form.hybrid), ids=False
    )
