"""A reranking server behind HTTP: the Cohere/Jina shape (Infinity, vLLM, Jina, our own
``/v1/rerank``) or Hugging Face TEI's ``/rerank``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import httpx
import numpy as np

from rag_pipeline._http import JsonEndpoint
from rag_pipeline.errors import ConfigError, RerankError

# "cohere": {"model","query","documents","top_n"} -> {"results":[{"index","relevance_score"}]}
# "tei":    {"query","texts"} -> [{"index","score"}]
RerankAPI = Literal["cohere", "tei"]
RERANK_APIS: tuple[RerankAPI, ...] = ("cohere", "tei")


class HTTPReranker:
    """Scores documents with a reranking server; timeouts and retries as the HTTP embedders.

    Documents go in requests of at most ``batch_size`` (TEI refuses more than its
    ``--max-client-batch-size``, 32 by default). Every document must get exactly one score
    back: an answer missing one, or scoring one twice, is an error, not a guess.
    """

    def __init__(
        self,
        url: str,
        model: str = "",
        *,
        api: RerankAPI = "cohere",
        api_key: str | None = None,
        batch_size: int = 32,
        timeout: float = 30.0,
        max_retries: int = 2,
        backoff: float = 0.5,
        retry_deadline: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``url`` is the full endpoint (``http://host:7997/rerank``, ``…/v1/rerank``)."""
        if api not in RERANK_APIS:
            raise ConfigError(f"reranker API must be one of {', '.join(RERANK_APIS)}, got {api!r}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self._model = model
        self.api = api
        self._batch_size = batch_size
        self._endpoint = JsonEndpoint(
            url,
            what="reranking endpoint",
            error=RerankError,
            api_key=api_key,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            retry_deadline=retry_deadline,
            transport=transport,
        )

    @property
    def url(self) -> str:
        """The URL documents are posted to."""
        return self._endpoint.url

    @property
    def model_name(self) -> str:
        return self._model or self.url

    def score(self, query: str, documents: Sequence[str]) -> np.ndarray:
        scores = np.empty(len(documents), dtype=np.float32)
        # One request at a time: a second stage sees tens of candidates, one or two requests.
        for start in range(0, len(documents), self._batch_size):
            batch = list(documents[start : start + self._batch_size])
            scores[start : start + len(batch)] = self._scores(query, batch)
        return scores

    def _body(self, query: str, documents: list[str]) -> dict[str, Any]:
        if self.api == "tei":
            return {"query": query, "texts": documents, "truncate": True}
        body: dict[str, Any] = {
            "query": query,
            "documents": documents,
            "top_n": len(documents),
            "return_documents": False,
        }
        if self._model:
            body["model"] = self._model
        return body

    def _scores(self, query: str, documents: list[str]) -> np.ndarray:
        data = self._endpoint.post(self._body(query, documents))
        fail = self._endpoint.fail
        score_key = "score" if self.api == "tei" else "relevance_score"
        try:
            items = data if self.api == "tei" else data["results"]
            pairs = [(int(item["index"]), float(item[score_key])) for item in items]
        except (KeyError, TypeError, ValueError) as exc:
            shape = (
                "a list of {'index','score'}"
                if self.api == "tei"
                else "'results' of {'index','relevance_score'}"
            )
            raise fail(f"answered JSON without {shape}: {str(data)[:200]!r}") from exc
        scores = np.full(len(documents), np.nan, dtype=np.float32)
        for index, value in pairs:
            if not 0 <= index < len(documents) or not np.isnan(scores[index]):
                raise fail(f"answered index {index} for {len(documents)} documents (or twice)")
            scores[index] = value
        if np.isnan(scores).any():
            missing = int(np.isnan(scores).sum())
            raise fail(f"scored {len(documents) - missing} of {len(documents)} documents")
        return scores

    def close(self) -> None:
        """Close the connection pool."""
        self._endpoint.close()
