"""``/v1/embeddings`` and ``/v1/models``: an OpenAI-compatible embedding engine for Open WebUI.

Open WebUI with ``RAG_EMBEDDING_ENGINE=openai`` and ``RAG_OPENAI_API_BASE_URL`` set to this
server's ``/v1`` posts ``{"input": [str, ...], "model": ...}`` (``RAG_EMBEDDING_BATCH_SIZE``
texts at a time, with ``Authorization: Bearer <key>``) and reads ``data[i].embedding`` back
in order. The vectors come from the server's own model, whose batcher merges these calls
with the chunks of uploads being processed.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from rag_pipeline.chunking.tokens import count_tokens
from rag_pipeline.server.auth import CurrentUser
from rag_pipeline.server.services import Config, Embeddings, Reranking
from rag_pipeline.server.settings import ServerSettings

router = APIRouter(prefix="/v1", tags=["openai"])

# OpenAI's own limit on the inputs of one request.
MAX_INPUTS = 2048


def serves(model_name: str, requested: str) -> bool:
    """Whether ``requested`` names our model: its name or the last part of its path, with
    or without ``:latest`` (as Ollama clients spell it) or an owner in front (Open WebUI's
    default ``sentence-transformers/all-MiniLM-L6-v2`` for our ``all-MiniLM-L6-v2``);
    case does not matter."""
    wanted = requested.lower().removesuffix(":latest")
    ours = model_name.lower()
    return wanted == ours or wanted.rsplit("/", 1)[-1] == ours.rsplit("/", 1)[-1]


def served_names(model_name: str) -> list[str]:
    """The spellings of our model worth telling a client that asked for another."""
    return list(dict.fromkeys([model_name, model_name.rsplit("/", 1)[-1]]))


def limit_texts(texts: Sequence[str], field: str, settings: ServerSettings) -> list[str]:
    """The texts as the model will read them: each cut to ``embed_max_input_chars`` (the
    model cuts at its window anyway, as Ollama's ``truncate`` does by default, so nothing
    it would see is lost); 400 when the request holds more than ``embed_max_request_chars``
    in all, or a text that is not valid Unicode."""
    total = sum(len(text) for text in texts)
    if total > settings.embed_max_request_chars:
        raise HTTPException(
            400,
            f"'{field}' holds {total} characters; at most {settings.embed_max_request_chars} "
            "are embedded per request (RAG_EMBED_MAX_REQUEST_CHARS): send fewer or shorter "
            "texts per request",
        )
    check_text(texts, field)
    cut = settings.embed_max_input_chars
    return [text[:cut] for text in texts]


def check_text(texts: Sequence[str], field: str) -> None:
    """400 for a text that cannot be encoded as UTF-8 (a lone surrogate from a JSON escape):
    the model's tokenizer would fail on it with a server error."""
    for index, text in enumerate(texts):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise HTTPException(
                400, f"'{field}'[{index}] is not valid Unicode text (a lone surrogate)"
            ) from None


class EmbeddingsForm(BaseModel):
    """Body of ``POST /v1/embeddings`` (documentation only: the route checks it itself, to
    answer a bad body with OpenAI's 400 and a reason). Other fields are ignored."""

    model: str
    input: str | list[str] | list[int] | list[list[int]] = Field(
        description=f"a text, or up to {MAX_INPUTS} texts (token ids of cl100k_base are "
        "decoded to text)"
    )
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(None, description="must be the model's own size if given")
    user: str | None = None


def _is_token_ids(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(t, int) and not isinstance(t, bool) for t in value
    )


def _texts(body: dict[str, Any]) -> list[str]:
    """The texts of ``input``: a string, a list of strings, or token ids as OpenAI takes them
    (a list of ints, or a list of such lists: cl100k_base ids, what LangChain's
    OpenAIEmbeddings sends by default), decoded back to text for our own model."""
    value = body.get("input")
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise HTTPException(400, "'input' must be a string, a list of strings, or token ids")
    if not value:
        raise HTTPException(400, "'input' is an empty list: send at least one text")
    if _is_token_ids(value):
        value = [value]  # one input given as its tokens
    if len(value) > MAX_INPUTS:
        raise HTTPException(
            400, f"'input' has {len(value)} texts; at most {MAX_INPUTS} are accepted per request"
        )
    if all(isinstance(item, str) for item in value):
        return value
    if all(_is_token_ids(item) for item in value):
        return [_decode_tokens(ids, index) for index, ids in enumerate(value)]
    raise HTTPException(
        400, "'input' must be a string, a list of strings, or token ids (lists of integers)"
    )


def _decode_tokens(ids: list[int], index: int) -> str:
    from rag_pipeline.chunking.tokens import get_encoding

    encoding = get_encoding("cl100k_base")
    if not ids:
        raise HTTPException(400, f"'input'[{index}] is an empty list of token ids")
    if any(t < 0 or t >= encoding.n_vocab for t in ids):
        raise HTTPException(
            400, f"'input'[{index}] holds an id outside cl100k_base (0..{encoding.n_vocab - 1})"
        )
    try:
        return str(encoding.decode(ids))
    except Exception as exc:  # an id tiktoken cannot map (a gap in the vocabulary)
        raise HTTPException(400, f"'input'[{index}] is not decodable token ids: {exc}") from None


def _encode(vector: np.ndarray, encoding: str) -> list[float] | str:
    if encoding == "base64":
        # As OpenAI sends it: the little-endian float32 bytes.
        return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode()
    return vector.tolist()


async def json_object(request: Request) -> dict[str, Any]:
    """A request body that must be a JSON object; 400 with the reason otherwise."""
    try:
        body = await request.json()
    except RecursionError:  # json.loads recurses once per level: '[' * 2_000_000
        raise HTTPException(400, "The request body nests too deeply to be read") from None
    except ValueError:
        raise HTTPException(400, "The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise HTTPException(400, "The request body must be a JSON object")
    return body


@router.post(
    "/embeddings",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": EmbeddingsForm.model_json_schema()}},
        }
    },
)
async def embeddings(
    request: Request, user: CurrentUser, embedder: Embeddings, settings: Config
) -> JSONResponse:
    """Embed texts with the server's model, answered as OpenAI's embeddings API does."""
    body = await json_object(request)
    name = embedder.model_name
    requested = body.get("model")
    if not isinstance(requested, str) or not requested:
        raise HTTPException(400, "'model' must name the embedding model (a string)")
    if not serves(name, requested):
        offered = ", ".join(f"'{n}'" for n in served_names(name))
        raise HTTPException(
            400, f"Model '{requested}' is not served here; this server embeds with {offered}"
        )
    texts = limit_texts(_texts(body), "input", settings)
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise HTTPException(400, "'encoding_format' must be 'float' or 'base64'")
    dimensions = body.get("dimensions")
    if dimensions is not None:
        size = await run_in_threadpool(lambda: embedder.dimension)
        if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions != size:
            raise HTTPException(
                400,
                f"'dimensions' must be {size} (the size of {name}'s vectors) or left out; "
                f"got {dimensions!r}",
            )

    def embed() -> tuple[np.ndarray, int]:
        vectors = np.asarray(embedder.embed_documents(texts), dtype=np.float32)
        return vectors, sum(count_tokens(text) for text in texts)

    vectors, tokens = await run_in_threadpool(embed)
    return JSONResponse(
        {
            "object": "list",
            "data": [
                {"object": "embedding", "index": index, "embedding": _encode(vector, encoding)}
                for index, vector in enumerate(vectors)
            ],
            "model": name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


@router.get("/models")
async def models(user: CurrentUser, embedder: Embeddings, reranking: Reranking) -> dict[str, Any]:
    """The models this API serves (the embedding model, then the reranker), as OpenAI lists."""
    return {
        "object": "list",
        "data": [
            _model_object(embedder.model_name, "embedding"),
            _model_object(reranking.model_name, "rerank"),
        ],
    }


@router.get("/models/{model_id:path}")
async def model(
    model_id: str, user: CurrentUser, embedder: Embeddings, reranking: Reranking
) -> dict[str, Any]:
    """One model (``client.models.retrieve``): ours under any of its spellings, else 404."""
    for name, kind in ((embedder.model_name, "embedding"), (reranking.model_name, "rerank")):
        if serves(name, model_id):
            return _model_object(name, kind)
    raise HTTPException(404, f"The model '{model_id}' does not exist")


def _model_object(name: str, kind: str) -> dict[str, Any]:
    # "type" is not OpenAI's; clients ignore it, and it tells the reranker from the embedder.
    return {"id": name, "object": "model", "created": 0, "owned_by": "rag-pipeline", "type": kind}
