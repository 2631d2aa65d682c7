"""Build the RAG-enriched chat request, in the shape Open WebUI sends upstream."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from html import escape
from typing import Any

from rag_pipeline.chunking.tokens import get_encoding
from rag_pipeline.errors import ConfigError
from rag_pipeline.types import ChatPayload, Hit

# Open WebUI 0.12.4's default RAG template, word for word (recorded in
# shared/openwebui_recorded/upstream.json), so models tuned on its prompts behave the same.
RAG_TEMPLATE = (
    "### Task:\n"
    "Respond to the user query using the provided context, incorporating inline citations "
    "in the format [id] **only when the <source> tag includes an explicit id attribute** "
    '(e.g., <source id="1">).\n\n'
    "### Guidelines:\n"
    "- If you don't know the answer, clearly state that.\n"
    "- If uncertain, ask the user for clarification.\n"
    "- Respond in the same language as the user's query.\n"
    "- If the context is unreadable or of poor quality, inform the user and provide the best "
    "possible answer.\n"
    "- If the answer isn't present in the context but you possess the knowledge, explain this "
    "to the user and provide the answer using your own understanding.\n"
    "- **Only include inline citations using [id] (e.g., [1], [2]) when the <source> tag "
    "includes an id attribute.**\n"
    "- Do not cite if the <source> tag does not contain an id attribute.\n"
    "- Do not use XML tags in your response.\n"
    "- Ensure citations are concise and directly related to the information provided.\n\n"
    "### Example of Citation:\n"
    "If the user asks about a specific topic and the information is found in a source with a "
    "provided id attribute, the response should include the citation like in the following "
    "example:\n"
    '* "According to the study, the proposed method increases efficiency by 20% [1]."\n\n'
    "### Output:\n"
    "Provide a clear and direct response to the user's query, including inline citations in "
    "the format [id] only when the <source> tag with id attribute is present in the context."
    "\n\n<context>\n{context}\n</context>\n\n{query}"
)


class PromptBuilder:
    """Fill retrieved chunks into the RAG template within a token budget."""

    def __init__(self, template: str = RAG_TEMPLATE, context_tokens: int = 3000) -> None:
        if "{context}" not in template or "{query}" not in template:
            raise ConfigError("a RAG template needs the placeholders {context} and {query}")
        if context_tokens < 1:
            raise ConfigError(f"context_tokens must be >= 1, got {context_tokens}")
        self.template = template
        self.context_tokens = context_tokens

    def select(self, hits: Sequence[Hit]) -> list[Hit]:
        """Keep the best hits whose text fits the token budget, in rank order, once each."""
        encoding = get_encoding()
        chosen: list[Hit] = []
        texts: set[str] = set()
        used = 0
        for hit in hits:
            if hit.text in texts:
                # The same text from two files or collections says nothing new twice.
                continue
            cost = len(encoding.encode(hit.text, disallowed_special=())) + 20
            if used + cost > self.context_tokens:
                # A smaller hit further down may still fit; keep looking.
                continue
            chosen.append(hit)
            texts.add(hit.text)
            used += cost
        return chosen

    def context(self, hits: Sequence[Hit]) -> tuple[str, list[dict[str, Any]]]:
        """Return the context block and the sources list, one number per chunk."""
        blocks = []
        sources = []
        for number, hit in enumerate(hits, start=1):
            name = hit.metadata.get("title") or hit.source
            blocks.append(
                f'<source id="{number}" name="{escape(str(name), quote=True)}">{hit.text}</source>'
            )
            sources.append(
                {
                    "id": number,
                    "chunk_id": hit.id,
                    "file": hit.source,
                    "name": name,
                    "page": hit.metadata.get("page"),
                    "chunk_index": hit.metadata.get("chunk_index"),
                    "heading_path": hit.metadata.get("heading_path"),
                    "knowledge_id": hit.metadata.get("knowledge_id"),
                    "score": hit.score,
                    "similarity": hit.similarity,
                }
            )
        return "\n".join(blocks), sources

    def build(
        self,
        model: str,
        messages: Sequence[dict[str, Any]],
        hits: Sequence[Hit],
    ) -> ChatPayload:
        """Return the chat request with context placed before the last user message.

        The hits that fit the budget are chosen here, once, and returned as ``chosen``.
        """
        messages = copy.deepcopy(list(messages))
        last_user = next(
            (i for i in range(len(messages) - 1, -1, -1) if messages[i].get("role") == "user"),
            None,
        )
        if last_user is None:
            raise ConfigError("the chat has no user message to answer")
        chosen = self.select(hits)
        if not chosen:
            # Nothing relevant: send the chat as it is, as Open WebUI does, rather than a
            # template that tells the model to answer from an empty context.
            return ChatPayload(model=model, messages=messages, sources=[])
        context, sources = self.context(chosen)
        chosen_hits = tuple(chosen)
        query = messages[last_user].get("content", "")
        if isinstance(query, list):
            # OpenAI content parts: keep images, fill the text part.
            text = " ".join(p.get("text", "") for p in query if p.get("type") == "text")
            parts = [p for p in query if p.get("type") != "text"]
            filled = self.template.format(context=context, query=text)
            messages[last_user]["content"] = [{"type": "text", "text": filled}, *parts]
        else:
            messages[last_user]["content"] = self.template.format(context=context, query=query)
        return ChatPayload(model=model, messages=messages, sources=sources, chosen=chosen_hits)
