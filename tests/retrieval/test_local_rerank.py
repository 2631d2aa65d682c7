from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag_pipeline.errors import ConfigError
from rag_pipeline.retrieval.local_rerank import LocalReranker
from rag_pipeline.retrieval.rerank import Reranker

QUERY = "how long until my refund arrives"
DOCUMENTS = [
    "refund money back within seven business days",
    "tents must dry before storage",
    "the store opens at nine",
    "quarterly revenue grew in europe and asia " * 12,  # longer than the window
    "refund",
    "unknown words here",  # out of the vocabulary: [UNK]s
]
WORDS = sorted({word for text in [QUERY, *DOCUMENTS[:-1]] for word in text.split()})
# BERT's window: the tokenizer's, under the position table.
BERT_WINDOW = 48
# RoBERTa's positions start after the padding index: 42 positions hold 42 - (1 + 1) tokens.
ROBERTA_POSITIONS = 42


def _tokenizer(specials: list[str], pair: str, single: str) -> Any:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = {token: i for i, token in enumerate([*specials, *WORDS])}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token=specials[3]))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single=single,
        pair=pair,
        special_tokens=[(t, vocab[t]) for t in specials if t in pair],
    )
    tokenizer.decoder = decoders.WordPiece()
    return tokenizer


def _save_bert(folder: Path, *, num_labels: int = 1, classifier: bool = True) -> Path:
    import torch
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertModel,
        PreTrainedTokenizerFast,
    )

    specials = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]
    tokenizer = _tokenizer(specials, "[CLS] $A [SEP] $B:1 [SEP]:1", "[CLS] $A [SEP]")
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        unk_token="[UNK]",
        mask_token="[MASK]",
        model_max_length=BERT_WINDOW,
    ).save_pretrained(folder)
    torch.manual_seed(2)
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
        num_labels=num_labels,
        # Wider initial weights than BERT's 0.02 spread the scores (0.27..0.51 here), so that
        # a wrong input shows in them; wider still and int8 drifts far from float32.
        initializer_range=0.2,
    )
    model = BertForSequenceClassification(config) if classifier else BertModel(config)
    model.save_pretrained(folder)
    return folder


def _save_roberta(folder: Path) -> Path:
    import torch
    from transformers import (
        PreTrainedTokenizerFast,
        RobertaConfig,
        RobertaForSequenceClassification,
    )

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tokenizer = _tokenizer(specials, "<s> $A </s> </s> $B </s>", "<s> $A </s>")
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        pad_token="<pad>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        mask_token="<mask>",
        # As roberta-base's: the position table's size, not the tokens it holds.
        model_max_length=ROBERTA_POSITIONS,
    ).save_pretrained(folder)
    torch.manual_seed(3)
    config = RobertaConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=ROBERTA_POSITIONS,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        num_labels=2,
        # A seed and width whose probabilities spread over 0.39..0.70, not saturated.
        initializer_range=0.2,
    )
    RobertaForSequenceClassification(config).save_pretrained(folder)
    return folder


def _torch_probabilities(
    folder: Path, query: str, documents: list[str], truncation: str = "only_second"
) -> np.ndarray:
    """What transformers answers for the pairs: sigmoid of one logit, or softmax's last column."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    window = min(tokenizer.model_max_length, model.config.max_position_embeddings)
    if model.config.model_type == "roberta":
        window -= model.config.pad_token_id + 1
    batch = tokenizer(
        [query] * len(documents),
        documents,
        padding=True,
        truncation=truncation,
        max_length=window,
        return_token_type_ids=model.config.type_vocab_size > 1,
        return_tensors="pt",
    )
    with torch.no_grad():
        logits = model(**batch).logits
    if logits.shape[1] == 1:
        return torch.sigmoid(logits[:, 0]).numpy()
    return torch.softmax(logits, dim=1)[:, -1].numpy()


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save_bert(tmp_path_factory.mktemp("models") / "tiny-bert-reranker")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rerank-cache")


@pytest.fixture(scope="module")
def reranker(bert_dir: Path, cache: Path) -> LocalReranker:
    return LocalReranker(str(bert_dir), cache_dir=cache)


@pytest.fixture(scope="module")
def fp32_scores(reranker: LocalReranker) -> np.ndarray:
    return reranker.score(QUERY, DOCUMENTS)


def test_scores_are_the_torch_models_probabilities_in_order(
    reranker: LocalReranker, bert_dir: Path, fp32_scores: np.ndarray
) -> None:
    assert isinstance(reranker, Reranker)
    assert reranker.model_name == str(bert_dir)
    assert reranker.max_length == BERT_WINDOW
    assert fp32_scores.shape == (len(DOCUMENTS),)
    assert fp32_scores.dtype == np.float32
    expected = _torch_probabilities(bert_dir, QUERY, DOCUMENTS)
    assert np.allclose(fp32_scores, expected, atol=1e-4), (fp32_scores, expected)
    # Scores this far apart make a wrong order, pairing or input visible above.
    assert np.ptp(expected) > 0.1
    reversed_scores = reranker.score(QUERY, DOCUMENTS[::-1])
    assert np.allclose(reversed_scores[::-1], fp32_scores, atol=1e-5)


def test_batching_does_not_change_scores(bert_dir: Path, cache: Path) -> None:
    documents = [*DOCUMENTS, *(d[: len(d) // 2] for d in DOCUMENTS)]
    singles = LocalReranker(str(bert_dir), cache_dir=cache, batch_size=1).score(QUERY, documents)
    for batch_size in (3, 8):
        batched = LocalReranker(str(bert_dir), cache_dir=cache, batch_size=batch_size)
        assert np.allclose(batched.score(QUERY, documents), singles, atol=1e-5), batch_size


def test_second_instance_reuses_the_export(
    reranker: LocalReranker, bert_dir: Path, cache: Path, fp32_scores: np.ndarray
) -> None:
    before = reranker.onnx_path.stat()
    again = LocalReranker(str(bert_dir), cache_dir=cache)
    assert not again.loaded
    again.preload()
    assert again.loaded
    after = again.onnx_path.stat()
    assert again.onnx_path == reranker.onnx_path
    assert again.onnx_path.name == "cross-encoder.onnx"
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert np.allclose(again.score(QUERY, DOCUMENTS), fp32_scores, atol=1e-6)


def test_corrupt_cached_export_is_exported_again(
    tmp_path: Path, reranker: LocalReranker, bert_dir: Path, fp32_scores: np.ndarray
) -> None:
    good = reranker.onnx_path
    shutil.copytree(good.parent, tmp_path / good.parent.name)
    broken = tmp_path / good.parent.name / good.name
    broken.write_bytes(b"not an onnx graph")
    again = LocalReranker(str(bert_dir), cache_dir=tmp_path)
    assert again.onnx_path == broken
    scores = again.score(QUERY, DOCUMENTS)
    assert broken.stat().st_size > 10_000
    assert np.allclose(scores, fp32_scores, atol=1e-5)


def test_int8_is_named_apart_and_close(
    reranker: LocalReranker, bert_dir: Path, cache: Path, fp32_scores: np.ndarray
) -> None:
    int8 = LocalReranker(str(bert_dir), cache_dir=cache, precision="int8")
    assert int8.model_name == f"{bert_dir}@int8"
    scores = int8.score(QUERY, DOCUMENTS)
    assert int8.onnx_path.parent == reranker.onnx_path.parent
    assert int8.onnx_path.name == "cross-encoder-int8.onnx"
    assert int8.onnx_path.read_bytes() != reranker.onnx_path.read_bytes()
    assert scores.dtype == np.float32
    assert np.abs(scores - fp32_scores).max() < 0.05


def test_two_label_model_without_type_ids_scores_the_last_softmax_column(
    tmp_path: Path,
) -> None:
    folder = _save_roberta(tmp_path / "tiny-roberta-reranker")
    reranker = LocalReranker(str(folder), cache_dir=tmp_path / "cache")
    # A window past 40 tokens would index past the position table (and fail to run).
    assert reranker.max_length == ROBERTA_POSITIONS - 2
    scores = reranker.score(QUERY, DOCUMENTS)
    expected = _torch_probabilities(folder, QUERY, DOCUMENTS)
    assert np.allclose(scores, expected, atol=1e-4), (scores, expected)
    assert np.ptp(expected) > 0.1


def test_long_queries_and_documents_are_cut_to_the_window(
    reranker: LocalReranker, bert_dir: Path
) -> None:
    long_document = "tents must dry before storage " * 200
    scores = reranker.score(QUERY, [long_document, "refund"])
    expected = _torch_probabilities(bert_dir, QUERY, [long_document, "refund"])
    assert np.allclose(scores, expected, atol=1e-4)
    # A query that fills the window by itself: both sides are cut, as transformers'
    # longest_first does, instead of failing.
    long_query = QUERY + " money back" * 40
    scores = reranker.score(long_query, ["refund", long_document])
    expected = _torch_probabilities(
        bert_dir, long_query, ["refund", long_document], truncation="longest_first"
    )
    assert np.isfinite(scores).all()
    assert np.allclose(scores, expected, atol=1e-4)


def test_folders_that_are_no_cross_encoder_are_refused(tmp_path: Path) -> None:
    encoder = _save_bert(tmp_path / "plain-bert", classifier=False)
    with pytest.raises(ConfigError, match="not a cross-encoder") as refused:
        LocalReranker(str(encoder), cache_dir=tmp_path / "cache")
    assert str(encoder) in str(refused.value)
    config = json.loads((encoder / "config.json").read_text())
    config["architectures"] = ["BertForSequenceClassification"]
    config["id2label"] = {str(i): f"LABEL_{i}" for i in range(3)}
    (encoder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="3 labels"):
        LocalReranker(str(encoder), cache_dir=tmp_path / "cache")
    with pytest.raises(ConfigError, match="neither a folder"):
        LocalReranker(str(tmp_path / "missing"), cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_bad_arguments(bert_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="precision"):
        LocalReranker(str(bert_dir), cache_dir=tmp_path, precision="fp16")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="batch_size"):
        LocalReranker(str(bert_dir), cache_dir=tmp_path, batch_size=0)
    with pytest.raises(ConfigError, match="max_length"):
        LocalReranker(str(bert_dir), cache_dir=tmp_path, max_length=BERT_WINDOW + 1)


def test_empty_documents_load_nothing(bert_dir: Path, tmp_path: Path) -> None:
    reranker = LocalReranker(str(bert_dir), cache_dir=tmp_path / "cache")
    scores = reranker.score(QUERY, [])
    assert scores.shape == (0,)
    assert scores.dtype == np.float32
    assert not reranker.loaded
    assert not (tmp_path / "cache").exists()
