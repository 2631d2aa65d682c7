"""What happens on a query or a chat with files: references checked, mapped, searched once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from rag_pipeline.errors import ConfigError, NotFoundError
from rag_pipeline.pipeline import Pipeline
from rag_pipeline.server.db import Database, FileRecord, Knowledge
from rag_pipeline.server.db import User as UserRow
from rag_pipeline.server.ownership import owned_file, owned_knowledge
from rag_pipeline.server.scopes import FILE_COLLECTION_PREFIX, file_scope, knowledge_scope
from rag_pipeline.types import Hit, SearchMode, SearchScope


class RetrievalService:
    """Search the files and knowledge bases a user may read, for queries and chats."""

    def __init__(self, database: Database, pipeline: Pipeline, top_k: int) -> None:
        self.db = database
        self.pipeline = pipeline
        self.top_k = top_k

    @property
    def model_name(self) -> str:
        """The embedding model's name, as answers report it."""
        return self.pipeline.embedder.model_name

    @property
    def prompt_template(self) -> str:
        """The template a chat's context is placed in."""
        return self.pipeline.prompt_builder.template

    def scope_for_name(self, session: Session, user: UserRow, name: str) -> SearchScope:
        """The scope of a collection a client names (``file-{id}`` or a knowledge id).

        One answer for "not there" and "not yours" (404 "Collection not found"): which ids
        exist must not be learnable from another user's account.
        """
        file_id = name.removeprefix(FILE_COLLECTION_PREFIX)
        try:
            if file_id != name and session.get(FileRecord, file_id) is not None:
                owned_file(session, user, file_id)
                return file_scope(file_id)
            if session.get(Knowledge, name) is not None:
                owned_knowledge(session, user, name)
                return knowledge_scope(name)
        except NotFoundError:
            pass
        raise NotFoundError("Collection not found")

    def scope_for_ref(self, session: Session, user: UserRow, ref: dict[str, Any]) -> SearchScope:
        """The scope a chat ``files`` entry (``{"type": "file"|"collection", "id"}``) names."""
        kind, ref_id = ref.get("type"), str(ref.get("id") or "")
        if kind == "file":
            owned_file(session, user, ref_id)
            return file_scope(ref_id)
        if kind == "collection":
            owned_knowledge(session, user, ref_id)
            return knowledge_scope(ref_id)
        raise ConfigError(f"Unsupported file type {kind!r}: use 'file' or 'collection'")

    def query(
        self,
        user: UserRow,
        names: Sequence[str],
        query: str,
        k: int | None = None,
        mode: SearchMode | None = None,
    ) -> list[Hit]:
        """The best ``k`` hits over the named collections, merged."""
        with self.db.session() as session:
            scopes = [self.scope_for_name(session, user, name) for name in names]
        present = [scopes[i] for i in self._present(scopes)]
        if not present or not query.strip():
            return []
        return self.pipeline.retriever(mode).search(query, present, top_k=k or self.top_k)

    def enrich(
        self, user: UserRow, model: str, messages: list[dict[str, Any]], refs: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], list[Hit]]]]:
        """Fill a chat's context from its file references; return the messages and, per
        reference, the hits placed in the context."""
        with self.db.session() as session:
            scopes = [self.scope_for_ref(session, user, ref) for ref in refs]
        groups = self._search_each(scopes, last_user_text(messages), self.top_k, None)
        hits = [hit for group in groups for hit in group]
        payload = self.pipeline.prompt_builder.build(model, messages, hits)
        chosen = {id(hit) for hit in payload.chosen}
        per_ref = [
            (ref, [hit for hit in group if id(hit) in chosen])
            for ref, group in zip(refs, groups, strict=True)
        ]
        return payload.messages, [(ref, kept) for ref, kept in per_ref if kept]

    def _present(self, scopes: list[SearchScope]) -> list[int]:
        # A collection that does not exist yet (no file processed so far) has no hits.
        store = self.pipeline.store
        return [i for i, scope in enumerate(scopes) if store.has_collection(scope.collection)]

    def _search_each(
        self, scopes: list[SearchScope], query: str, k: int, mode: SearchMode | None
    ) -> list[list[Hit]]:
        present = self._present(scopes)
        groups: list[list[Hit]] = [[] for _ in scopes]
        if not present or not query.strip():
            return groups
        found = self.pipeline.retriever(mode).search_each(
            query, [scopes[i] for i in present], top_k=k
        )
        for i, hits in zip(present, found, strict=True):
            groups[i] = hits
        return groups


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """The text of the last user message (text parts of a content list joined)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content", "")
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
            return str(content)
    raise ConfigError("the chat has no user message to answer")
