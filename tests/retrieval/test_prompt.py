from __future__ import annotations

import json

import pytest

from rag_pipeline.errors import ConfigError
from rag_pipeline.retrieval import RAG_TEMPLATE, PromptBuilder
from rag_pipeline.types import Hit

from ..conftest import REPO


def hit(n: int, text: str, source: str = "a.md", page: int | None = None) -> Hit:
    meta = {"chunk_index": n, "title": source.split(".")[0]}
    if page:
        meta["page"] = page
    return Hit(id=f"id{n}", score=1.0 - n / 10, text=text, source=source, metadata=meta)


def test_template_header_matches_open_webui_recording() -> None:
    recorded = REPO.parent / "shared" / "openwebui_recorded" / "upstream.json"
    if not recorded.exists():
        pytest.skip("shared/openwebui_recorded is not present")
    body = json.loads(recorded.read_text())["chat_file"][1]["body"]
    content = body["messages"][-1]["content"]
    header = content[: content.index("<context>")]
    assert RAG_TEMPLATE.startswith(header + "<context>\n{context}\n</context>\n\n")
    question = content.rsplit("</context>\n\n", 1)[1]
    assert RAG_TEMPLATE.endswith("{query}")
    assert question == "What does Ziggy eat?"


def test_each_chunk_gets_its_own_number() -> None:
    hits = [hit(0, "first", "a.md"), hit(1, "second", "a.md"), hit(2, "third", "b.pdf", page=3)]
    payload = PromptBuilder().build("llama3.1", [{"role": "user", "content": "q?"}], hits)
    content = payload.messages[-1]["content"]
    assert '<source id="1" name="a">first</source>' in content
    assert '<source id="2" name="a">second</source>' in content
    assert '<source id="3" name="b">third</source>' in content
    assert content.endswith("</context>\n\nq?")
    assert [(s["id"], s["file"], s["page"], s["chunk_index"]) for s in payload.sources] == [
        (1, "a.md", None, 0),
        (2, "a.md", None, 1),
        (3, "b.pdf", 3, 2),
    ]
    assert payload.to_dict()["model"] == "llama3.1"


def test_context_goes_into_the_last_user_message_only() -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "earlier question"},
        {"role": "assistant", "content": "earlier answer"},
        {"role": "user", "content": "now this"},
    ]
    payload = PromptBuilder().build("m", messages, [hit(0, "ctx")])
    assert payload.messages[:3] == messages[:3]
    assert payload.messages[3]["content"].endswith("now this")
    assert "<context>" in payload.messages[3]["content"]
    assert messages[3]["content"] == "now this"  # the caller's list is untouched


def test_token_budget_drops_what_does_not_fit() -> None:
    big = "word " * 400
    hits = [hit(0, "small one"), hit(1, big), hit(2, "small two")]
    payload = PromptBuilder(context_tokens=100).build("m", [{"role": "user", "content": "q"}], hits)
    content = payload.messages[-1]["content"]
    assert "small one" in content and "small two" in content and big not in content
    assert [s["chunk_id"] for s in payload.sources] == ["id0", "id2"]


def test_the_same_text_is_given_once_and_the_chosen_hits_are_returned() -> None:
    hits = [hit(0, "Ziggy eats apples."), hit(1, "Ziggy eats apples.", "b.md"), hit(2, "Teal.")]
    payload = PromptBuilder().build("m", [{"role": "user", "content": "q"}], hits)
    assert [h.id for h in payload.chosen] == ["id0", "id2"]
    assert payload.messages[-1]["content"].count("Ziggy eats apples.") == 1
    assert [s["chunk_id"] for s in payload.sources] == ["id0", "id2"]


def test_names_are_escaped_and_errors_are_clear() -> None:
    payload = PromptBuilder().build(
        "m", [{"role": "user", "content": "q"}], [hit(0, "x", source='we"ird<.md')]
    )
    assert 'name="we&quot;ird&lt;"' in payload.messages[-1]["content"]
    with pytest.raises(ConfigError, match="no user message"):
        PromptBuilder().build("m", [{"role": "system", "content": "s"}], [])
    with pytest.raises(ConfigError, match="placeholders"):
        PromptBuilder(template="no placeholders")


def test_no_relevant_chunks_leaves_the_chat_as_it_was() -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    payload = PromptBuilder().build("m", messages, [])
    assert payload.messages == messages
    assert payload.sources == []
