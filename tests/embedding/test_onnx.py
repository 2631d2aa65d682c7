from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from rag_pipeline.embedding import LocalEmbedder
from rag_pipeline.embedding.local import resolve_local_model
from rag_pipeline.embedding.onnx import MAX_PADDING, OnnxEmbedder, plan_batches
from rag_pipeline.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
CJK = [
    "東京は日本の首都で、世界最大級の都市圏を持つ。",
    "서울은 대한민국의 수도이며 가장 큰 도시이다.",
]
MIXED = [
    "short",
    "A somewhat longer sentence about refunds and the days they take to arrive.",
    "",
    "tents " * 300,
    "Mid-length text about storing camping gear dry.",
    "x",
    "Quarterly revenue grew by twelve percent, driven by subscriptions in Europe and Asia.",
]


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="session")
def fp32_embedder(onnx_cache: Path) -> OnnxEmbedder:
    return OnnxEmbedder(cache_dir=onnx_cache)


@pytest.fixture(scope="session")
def int8_embedder(onnx_cache: Path) -> OnnxEmbedder:
    return OnnxEmbedder(cache_dir=onnx_cache, precision="int8")


@pytest.fixture(scope="session")
def scifact_texts(shared_data: Path) -> list[str]:
    texts = []
    with (shared_data / "scifact" / "corpus.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            words = record["text"].split()[:300]
            texts.append(record["title"] + "\n\n" + " ".join(words))
            if len(texts) == 80:
                break
    return texts


@pytest.fixture(scope="session")
def sample_texts(scifact_texts: list[str]) -> list[str]:
    return [*scifact_texts, *CJK]


@pytest.fixture(scope="session")
def fp32_vectors(fp32_embedder: OnnxEmbedder, sample_texts: list[str]) -> np.ndarray:
    return fp32_embedder.embed_documents(sample_texts)


def _row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_fp32_matches_torch_for_every_text(
    fp32_embedder: OnnxEmbedder,
    local_embedder: LocalEmbedder,
    sample_texts: list[str],
    fp32_vectors: np.ndarray,
) -> None:
    texts = sample_texts
    got = fp32_vectors
    expected = local_embedder.embed_documents(texts)
    assert got.shape == expected.shape == (len(texts), 384)
    assert got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cosines = _row_cosines(got, expected)
    assert cosines.min() >= 0.9999, f"worst text {texts[int(cosines.argmin())][:60]!r}"
    query = "how long until I get my money back?"
    assert (
        _row_cosines(
            fp32_embedder.embed_query(query)[None], local_embedder.embed_query(query)[None]
        )[0]
        >= 0.9999
    )


def test_fp32_keeps_the_torch_identity(fp32_embedder: OnnxEmbedder) -> None:
    assert fp32_embedder.model_name == LocalEmbedder().model_name == "all-MiniLM-L6-v2"
    assert fp32_embedder.dimension == 384
    assert fp32_embedder.max_seq_length == 256


def test_int8_is_close_and_ranks_sensibly(
    fp32_embedder: OnnxEmbedder,
    int8_embedder: OnnxEmbedder,
    sample_texts: list[str],
    fp32_vectors: np.ndarray,
) -> None:
    assert int8_embedder.model_name == "all-MiniLM-L6-v2@int8"
    assert int8_embedder.onnx_path.parent == fp32_embedder.onnx_path.parent
    int8 = int8_embedder.embed_documents(sample_texts)
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    assert _row_cosines(int8, fp32_vectors).mean() >= 0.98
    docs = int8_embedder.embed_documents(
        ["Refunds are issued within 7 business days.", "Tents must dry before storage."]
    )
    scores = docs @ int8_embedder.embed_query("how long until I get my money back?")
    assert scores[0] > scores[1]


def test_empty_inputs(fp32_embedder: OnnxEmbedder) -> None:
    assert fp32_embedder.embed_documents([]).shape == (0, 384)
    query = fp32_embedder.embed_query("")
    assert query.shape == (384,)
    assert np.isclose(np.linalg.norm(query), 1.0, atol=1e-5)


def test_order_is_kept_across_uneven_batches(onnx_cache: Path) -> None:
    singles = OnnxEmbedder(cache_dir=onnx_cache, batch_size=1).embed_documents(MIXED)
    for batch_size in (3, 4, 64):
        batched = OnnxEmbedder(cache_dir=onnx_cache, batch_size=batch_size).embed_documents(MIXED)
        assert _row_cosines(batched, singles).min() >= 0.99999
        assert ((batched @ singles.T).argmax(axis=1) == np.arange(len(MIXED))).all()


def test_token_budgets_keep_every_vector(onnx_cache: Path) -> None:
    singles = OnnxEmbedder(cache_dir=onnx_cache, batch_size=1).embed_documents(MIXED)
    for budget in (0, 1, 64, 512):
        planned = OnnxEmbedder(cache_dir=onnx_cache, batch_size=64, batch_tokens=budget)
        vectors = planned.embed_documents(MIXED)
        assert _row_cosines(vectors, singles).min() >= 0.99999, budget


@pytest.mark.parametrize("seed", range(5))
def test_plan_batches_covers_each_row_once_within_limits(seed: int) -> None:
    lengths = np.random.default_rng(seed).integers(1, 300, size=97)
    for max_rows, max_tokens in ((8, None), (8, 512), (64, 512), (1, 512), (64, 100)):
        batches = plan_batches(lengths, max_rows, max_tokens, MAX_PADDING)
        rows = np.concatenate(batches)
        assert sorted(rows.tolist()) == list(range(len(lengths)))
        # Longest first, so each batch pads to its first row.
        assert (np.diff(lengths[rows]) <= 0).all()
        for batch in batches:
            assert 1 <= len(batch) <= max_rows
            width = lengths[batch[0]]
            if len(batch) > 1:
                assert max_tokens is None or len(batch) * width <= max_tokens
                assert lengths[batch].sum() >= (1 - MAX_PADDING) * len(batch) * width


def test_plan_batches_separates_long_rows_from_short_ones() -> None:
    # Old plan: one batch of 4 padded to 250 (62% padding); with a budget the short rows
    # go together.
    assert [b.tolist() for b in plan_batches([40, 250, 38, 41], 8)] == [[1, 3, 0, 2]]
    assert [b.tolist() for b in plan_batches([40, 250, 38, 41], 8, None, 0.2)] == [[1], [3, 0, 2]]
    # The budget alone: 4 rows of 120 fit 512 padded tokens, a fifth does not.
    assert [len(b) for b in plan_batches([120] * 5, 8, 512)] == [4, 1]
    # A row longer than the budget still runs, alone.
    assert [b.tolist() for b in plan_batches([900, 10], 8, 512, 0.2)] == [[0], [1]]


def test_prefixes_are_applied(onnx_cache: Path, fp32_embedder: OnnxEmbedder) -> None:
    prefixed = OnnxEmbedder(cache_dir=onnx_cache, query_prefix="search_query: ")
    plain = fp32_embedder.embed_query("tents")
    assert not np.allclose(prefixed.embed_query("tents"), plain)
    assert np.allclose(prefixed.embed_documents(["tents"])[0], plain, atol=1e-5)


def test_second_embedder_reuses_the_cached_export(
    onnx_cache: Path, fp32_embedder: OnnxEmbedder
) -> None:
    fp32_embedder.embed_query("warm the cache")
    before = fp32_embedder.onnx_path.stat()
    again = OnnxEmbedder(cache_dir=onnx_cache)
    again.embed_query("reuse")
    after = again.onnx_path.stat()
    assert again.onnx_path == fp32_embedder.onnx_path
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_cache_key_follows_the_model_files(tmp_path: Path, onnx_cache: Path) -> None:
    source = Path(resolve_local_model("all-MiniLM-L6-v2"))
    copy = tmp_path / "all-MiniLM-L6-v2"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("model.safetensors"))
    # Hashing reads through the link, so the weights need not be copied.
    (copy / "model.safetensors").symlink_to(source / "model.safetensors")
    packaged = OnnxEmbedder(cache_dir=onnx_cache).onnx_path.parent.name
    key = OnnxEmbedder(str(copy), cache_dir=onnx_cache).onnx_path.parent.name
    assert key == packaged
    (copy / "README.md").write_text("edited docs do not change the model\n")
    assert OnnxEmbedder(str(copy), cache_dir=onnx_cache).onnx_path.parent.name == packaged
    config = json.loads((copy / "config.json").read_text())
    config["layer_norm_eps"] = 1e-6
    (copy / "config.json").write_text(json.dumps(config))
    changed = OnnxEmbedder(str(copy), cache_dir=onnx_cache).onnx_path.parent.name
    assert changed != packaged
    assert changed.startswith("all-MiniLM-L6-v2-")


def test_corrupt_cached_model_is_exported_again(
    tmp_path: Path, onnx_cache: Path, fp32_embedder: OnnxEmbedder
) -> None:
    good = fp32_embedder.onnx_path
    fp32_embedder.embed_query("make sure the export exists")
    cache = tmp_path / "cache"
    shutil.copytree(good.parent, cache / good.parent.name)
    broken = cache / good.parent.name / good.name
    broken.write_bytes(b"not an onnx graph")
    embedder = OnnxEmbedder(cache_dir=cache)
    assert embedder.onnx_path == broken
    vector = embedder.embed_query("tents")
    assert broken.stat().st_size > 1_000_000
    assert np.allclose(vector, fp32_embedder.embed_query("tents"), atol=1e-5)


def test_run_path_does_not_import_torch(onnx_cache: Path, fp32_embedder: OnnxEmbedder) -> None:
    fp32_embedder.embed_query("fill the cache")
    script = (
        "import json, sys\n"
        "from rag_pipeline.embedding.onnx import OnnxEmbedder\n"
        f"embedder = OnnxEmbedder(cache_dir={str(onnx_cache)!r})\n"
        "vectors = embedder.embed_documents(['tents', 'refunds'])\n"
        "print(json.dumps({'shape': list(vectors.shape), 'torch': 'torch' in sys.modules,\n"
        "    'transformers': 'transformers' in sys.modules}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"shape": [2, 384], "torch": False, "transformers": False}


def test_bad_arguments_and_unsupported_pooling(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        OnnxEmbedder(cache_dir=tmp_path, precision="fp16")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        OnnxEmbedder(cache_dir=tmp_path, batch_size=0)
    with pytest.raises(ConfigError, match="batch_tokens"):
        OnnxEmbedder(cache_dir=tmp_path, batch_tokens=-1)
    model = tmp_path / "max-pooled"
    (model / "1_Pooling").mkdir(parents=True)
    (model / "config.json").write_text(json.dumps({"hidden_size": 8, "model_type": "bert"}))
    (model / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "x.Pooling"},
            ]
        )
    )
    (model / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode": "max"}))
    embedder = OnnxEmbedder(str(model), cache_dir=tmp_path / "cache")
    with pytest.raises(ConfigError, match="pooling mode max"):
        embedder.embed_query("x")
    assert not (tmp_path / "cache").exists()


def test_two_models_exported_at_once_in_one_process(tmp_path: Path) -> None:
    # A first `rag index` in auto mode: the default model preloads in one thread while the
    # first batches load the multilingual one; torch's exporter is process-global.
    from rag_pipeline.embedding.e5_onnx import E5OnnxEmbedder

    models = [OnnxEmbedder(cache_dir=tmp_path / "a"), E5OnnxEmbedder(cache_dir=tmp_path / "b")]
    gate = threading.Barrier(len(models))
    errors: list[BaseException] = []

    def load(model: OnnxEmbedder) -> None:
        gate.wait()
        try:
            model.preload()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(m,)) for m in models]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for model in models:
        assert model.embed_documents(["雨の日の港", "a rainy harbour"]).shape[0] == 2


def test_two_processes_exporting_into_one_cache_export_once(tmp_path: Path) -> None:
    # Two `rag` commands (or replicas) on one model cache: one exports, the other waits for
    # it and loads the same file.
    script = (
        "import sys\n"
        "from rag_pipeline.embedding.onnx import OnnxEmbedder\n"
        "e = OnnxEmbedder(cache_dir=sys.argv[1])\n"
        "e.embed_query('x')\n"
        "s = e.onnx_path.stat()\n"
        "print(s.st_ino, s.st_mtime_ns)\n"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    answers = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [err[-2000:] for _, err in answers]
    # The same file, written once: neither replaced the other's export.
    assert answers[0][0] == answers[1][0]
