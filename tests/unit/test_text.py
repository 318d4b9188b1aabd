"""Tests of backend.embed.text: the bundled all-MiniLM-L6-v2 sentence embedder.

The reference vectors in data/minilm_reference.npz were computed by
sentence-transformers from the same bundled model; bench/minilm_reference.py
regenerates them.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backend.embed import text as text_module
from backend.embed.text import TextEmbedder, TextEmbeddingReport
from backend.errors import InvalidInputError, InvalidParameterError

REFERENCE = Path(__file__).resolve().parent / "data" / "minilm_reference.npz"


@pytest.fixture(scope="module")
def embedder() -> TextEmbedder:
    return TextEmbedder(batch_size=8, device="cpu")


def test_matches_sentence_transformers_reference(embedder):
    ref = np.load(REFERENCE, allow_pickle=False)
    sentences = [str(s) for s in ref["sentences"]]
    X, report = embedder.encode_with_report(sentences)
    cosine = np.sum(X * ref["embeddings"], axis=1) / np.linalg.norm(ref["embeddings"], axis=1)
    assert cosine.min() > 0.999
    np.testing.assert_allclose(X, ref["embeddings"], atol=1e-4)
    assert embedder.max_tokens == int(ref["max_seq_length"]) == 256
    # the one sentence repeated 40 times is longer than 256 tokens
    assert report.n_truncated == 1
    assert report.truncated_rows == [sentences.index(max(sentences, key=len))]


def test_output_shape_dtype_and_unit_norm(embedder):
    X = embedder.encode(["one sentence", "another, longer sentence about something else"])
    assert X.shape == (2, 384) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)


def test_paraphrases_rank_above_unrelated_pairs(embedder):
    pairs = [
        ("A man is playing a guitar.", "Someone is strumming an acoustic guitar."),
        ("How do I reset my password?", "I forgot my password, how can I change it?"),
        ("The stock market fell sharply today.", "Share prices dropped steeply this afternoon."),
        ("My laptop will not turn on.", "The computer doesn't start when I press the power button."),
        ("She is cooking pasta for dinner.", "A woman prepares spaghetti for the evening meal."),
    ]
    left = embedder.encode([a for a, _ in pairs])
    right = embedder.encode([b for _, b in pairs])
    sim = left @ right.T
    paraphrase = np.diag(sim)
    unrelated = sim[~np.eye(len(pairs), dtype=bool)]
    assert paraphrase.min() > unrelated.max()
    # each sentence's nearest neighbour among the right-hand sentences is its paraphrase
    assert (sim.argmax(axis=1) == np.arange(len(pairs))).all()


def test_report_counts_empty_missing_and_non_text_cells(embedder):
    cells = pd.Series(
        ["a real sentence", "", "   ", None, float("nan"), pd.NA, 42, b"bytes", "another sentence", np.nan],
        dtype=object,
    )
    X, report = embedder.encode_with_report(cells)
    assert report.n_texts == 10 and report.n_embedded == 2
    assert report.empty_rows == [1, 2]
    assert report.missing_rows == [3, 4, 5, 9]
    assert report.non_text_rows == [6, 7]
    assert (report.n_empty, report.n_missing, report.n_non_text) == (2, 4, 2)
    norms = np.linalg.norm(X, axis=1)
    np.testing.assert_allclose(norms[[0, 8]], 1.0, atol=1e-5)
    assert (norms[[1, 2, 3, 4, 5, 6, 7, 9]] == 0).all()
    # embedded cells equal their stand-alone embeddings
    np.testing.assert_allclose(X[[0, 8]], embedder.encode(["a real sentence", "another sentence"]), atol=1e-5)


def test_truncation_keeps_the_first_256_tokens(embedder):
    # "word" is one token: 254 words + [CLS] + [SEP] fill the 256-token limit exactly
    exact_fit = "word " * 254
    too_long = "word " * 300
    X, report = embedder.encode_with_report([exact_fit, too_long, "short"])
    assert report.n_truncated == 1 and report.truncated_rows == [1]
    np.testing.assert_allclose(X[0], X[1], atol=1e-6)


def test_batch_size_does_not_change_embeddings(embedder):
    texts = ["short", "a somewhat longer sentence with more tokens in it", "mid length text", "x y"]
    X1 = TextEmbedder(batch_size=1, device="cpu").encode(texts)
    X4 = embedder.encode(texts)
    np.testing.assert_allclose(X1, X4, atol=1e-5)


def test_progress_reports_batches_and_cancels(embedder):
    calls = []
    embedder.encode([f"sentence number {i}" for i in range(20)], progress=lambda f, m: calls.append((f, m)))
    assert [f for f, _ in calls] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert calls[-1][1] == "embedded 20 of 20 texts"

    class Stop(Exception):
        pass

    def cancel(fraction, message):
        raise Stop

    with pytest.raises(Stop):
        embedder.encode(["a", "b"], progress=cancel)


def test_model_loads_without_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    text_module._load_cached.cache_clear()
    X = TextEmbedder(device="cpu").encode(["offline"])
    assert X.shape == (1, 384)


def test_model_is_cached_per_process():
    first = text_module._load("cpu")
    assert text_module._load("cpu") is first


def test_report_round_trips_through_json(embedder):
    _, report = embedder.encode_with_report(["a", "", None])
    data = json.loads(json.dumps(report.to_dict()))
    assert TextEmbeddingReport.from_dict(data) == report
    assert data["model"] == "sentence-transformers/all-MiniLM-L6-v2"


def test_empty_input_gives_empty_matrix(embedder):
    X, report = embedder.encode_with_report([])
    assert X.shape == (0, 384) and report.n_texts == 0


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True, "8"])
def test_invalid_batch_size(batch_size):
    with pytest.raises(InvalidParameterError, match=r"batch_size must be an integer >= 1; got"):
        TextEmbedder(batch_size=batch_size)


def test_single_string_is_rejected(embedder):
    with pytest.raises(InvalidInputError, match=r"not a single string; wrap it in a list"):
        embedder.encode("just one text")


def test_two_dimensional_array_is_rejected(embedder):
    with pytest.raises(InvalidInputError, match=r"one-dimensional; got an array of shape \(2, 2\)"):
        embedder.encode(np.array([["a", "b"], ["c", "d"]]))


def test_unknown_device_is_rejected():
    with pytest.raises(InvalidParameterError, match="device must be"):
        TextEmbedder(device="tpu")
