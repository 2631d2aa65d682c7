"""The client libraries people already use, called as their users call them, against
`rag serve` over loopback: openai, ollama, LangChain and LlamaIndex (#23).

Embeddings come from the server's own model (compared with it); chats go to the fake
upstream LLM (a test double for a model server that cannot run here).
"""

from __future__ import annotations

import langchain_ollama
import langchain_openai
import numpy as np
import ollama
import openai
import pytest
from llama_index.embeddings import ollama as ollama_embedding
from llama_index.embeddings import openai_like

from .conftest import World

TEXTS = ["Zebras graze on the savanna at dawn.", "회색 코끼리는 물을 좋아한다."]


def _ours(world: World, texts: list[str]) -> np.ndarray:
    return np.asarray(world.server.app.state.pipeline.embedder.embed_documents(texts))


def _model(world: World) -> str:
    return str(world.server.app.state.pipeline.embedder.model_name)


def test_openai_sdk_embeddings_and_models(world: World) -> None:
    client = openai.OpenAI(base_url=f"{world.url}/v1", api_key=world.bob.key)
    name = _model(world)
    # The SDK asks for base64 unless told otherwise, and decodes it itself.
    default = client.embeddings.create(model=name, input=TEXTS)
    floats = client.embeddings.create(model=name, input=TEXTS, encoding_format="float")
    expected = _ours(world, TEXTS)
    for answer in (default, floats):
        got = np.array([d.embedding for d in answer.data])
        assert np.allclose(got, expected, atol=1e-5)
    many = client.embeddings.create(model=name, input=[f"note {n}" for n in range(100)])
    assert [d.index for d in many.data] == list(range(100))
    assert [m.id for m in client.models.list()] == [name, "rag-signals"]
    assert client.models.retrieve(name).id == name
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="text-embedding-3-small", input="x")


def test_openai_sdk_chat_with_files_streaming_and_not(world: World) -> None:
    client = openai.OpenAI(base_url=f"{world.url}/api", api_key=world.admin.key)
    files = {"files": [{"type": "collection", "id": world.knowledge_id}]}
    messages = [{"role": "user", "content": "What does Ziggy the zebra eat?"}]
    answer = client.chat.completions.create(model="fake-echo", messages=messages, extra_body=files)
    # The fake model echoes what it was sent: the knowledge base's chunk is in the context.
    assert "Ziggy" in answer.choices[0].message.content
    assert answer.model_extra and answer.model_extra.get("sources")
    stream = client.chat.completions.create(
        model="fake-echo", messages=messages, extra_body=files, stream=True
    )
    # As in Open WebUI, the first event carries `sources` and no `choices`.
    chunks = list(stream)
    assert not chunks[0].choices and chunks[0].model_extra.get("sources")
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert "Ziggy" in text


def test_ollama_package_embed_list_chat_generate(world: World) -> None:
    client = ollama.Client(
        host=f"{world.url}/ollama", headers={"Authorization": f"Bearer {world.bob.key}"}
    )
    listed = [m.model for m in client.list().models]
    assert "llama3.1" in listed or "llama3.1:latest" in listed
    embedded = client.embed(model="llama3.2:3b", input=TEXTS)
    assert len(embedded.embeddings) == 2
    messages = [{"role": "user", "content": "hello"}]
    answer = client.chat(model="llama3.1", messages=messages)
    assert answer.message.content
    streamed = "".join(
        part.message.content or "" for part in client.chat("llama3.1", messages, stream=True)
    )
    assert streamed
    assert client.generate(model="llama3.1", prompt="hello").response == "echo: hello"
    with pytest.raises(ollama.ResponseError) as refused:
        client.chat(model="no-such-model:7b", messages=messages)
    assert refused.value.status_code == 400


def test_langchain_embeddings_with_their_defaults(world: World) -> None:
    name = _model(world)
    # Its default sends cl100k_base token ids, as OpenAI accepts them.
    embeddings = langchain_openai.OpenAIEmbeddings(
        model=name, base_url=f"{world.url}/v1", api_key=world.bob.key
    )
    got = np.array(embeddings.embed_documents(TEXTS))
    assert np.allclose(got, _ours(world, TEXTS), atol=1e-5)
    assert np.allclose(embeddings.embed_query(TEXTS[0]), got[0], atol=1e-5)

    headers = {"Authorization": f"Bearer {world.bob.key}"}
    ollama_embeddings = langchain_ollama.OllamaEmbeddings(
        model="llama3.2:3b", base_url=f"{world.url}/ollama", client_kwargs={"headers": headers}
    )
    assert len(ollama_embeddings.embed_documents(TEXTS)) == 2


def test_llamaindex_openai_like_and_ollama_embeddings(world: World) -> None:
    name = _model(world)
    embedding = openai_like.OpenAILikeEmbedding(
        model_name=name, api_base=f"{world.url}/v1", api_key=world.bob.key
    )
    got = np.array(embedding.get_text_embedding_batch(TEXTS))
    assert np.allclose(got, _ours(world, TEXTS), atol=1e-5)

    headers = {"Authorization": f"Bearer {world.bob.key}"}
    ollama_model = ollama_embedding.OllamaEmbedding(
        model_name="llama3.2:3b", base_url=f"{world.url}/ollama", client_kwargs={"headers": headers}
    )
    assert len(ollama_model.get_text_embedding(TEXTS[0])) > 0
