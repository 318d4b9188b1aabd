"""Projection faithfulness: trustworthiness, continuity, kNN recall, row-Spearman."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from scipy.stats import spearmanr
from sklearn.manifold import trustworthiness as sk_trustworthiness

from backend.diagnostics.projection import (
    continuity,
    knn_recall,
    projection_faithfulness,
    row_spearman,
    trustworthiness,
)
from backend.errors import InvalidInputError, InvalidParameterError
from backend.project.knn import knn_graph


@pytest.fixture(scope="module")
def noisy_projection():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 10))
    Y = X[:, :2] + 0.3 * rng.normal(size=(500, 2))
    return X, Y


def test_identity_map_scores_one():
    X = np.random.default_rng(1).normal(size=(300, 2))
    r = projection_faithfulness(X, X.copy(), n_neighbors=10)
    assert r.trustworthiness == pytest.approx(1.0, abs=1e-12)
    assert r.continuity == pytest.approx(1.0, abs=1e-12)
    assert r.knn_recall == 1.0
    assert r.row_spearman_original == pytest.approx(1.0, abs=1e-12)
    assert r.row_spearman is None and not r.sampled and r.n_rows == 300


def test_matches_scikit_learn_trustworthiness(noisy_projection):
    X, Y = noisy_projection
    r = projection_faithfulness(X, Y, n_neighbors=7)
    assert r.trustworthiness == pytest.approx(sk_trustworthiness(X, Y, n_neighbors=7), abs=1e-12)
    assert r.continuity == pytest.approx(sk_trustworthiness(Y, X, n_neighbors=7), abs=1e-12)
    assert trustworthiness(X, Y, 7) == r.trustworthiness
    assert continuity(X, Y, 7) == r.continuity
    # per-point values average to the dataset values
    assert np.mean(r.per_point["trustworthiness"]) == pytest.approx(r.trustworthiness, abs=1e-12)
    assert np.mean(r.per_point["continuity"]) == pytest.approx(r.continuity, abs=1e-12)


def test_knn_recall_by_hand():
    # gaps 1, 2, 3, 4, 5 on a line; the map moves the last point between points 1 and 2
    X = np.array([0.0, 1.0, 3.0, 6.0, 10.0, 15.0])[:, None]
    Y = np.array([0.0, 1.0, 3.0, 6.0, 10.0, 2.5])[:, None]
    # k=1: X nn 1,0,1,2,3,4 ; Y nn 1,0,5,2,3,2
    assert knn_recall(X, Y, 1, per_point=True).tolist() == [1, 1, 0, 1, 1, 0]
    # k=2: X {1,2},{0,2},{0,1},{2,4},{3,5},{3,4} ; Y {1,5},{0,5},{1,5},{2,5},{2,3},{1,2}
    assert knn_recall(X, Y, 2, per_point=True).tolist() == [0.5, 0.5, 0.5, 0.5, 0.5, 0.0]
    assert knn_recall(X, Y, 2) == pytest.approx(2.5 / 6)


def test_row_spearman_matches_scipy_with_ties(noisy_projection):
    X, Y = noisy_projection
    Yq = np.round(Y, 1)  # duplicate map positions: ties
    gt = cdist(X[:, :3], X[:, :3])
    dy = cdist(Yq, Yq)
    expected = np.array([spearmanr(dy[i], gt[i])[0] for i in range(len(X))])
    per = row_spearman(Yq, ground_truth_distances=gt, per_point=True)
    assert np.allclose(per, expected, atol=1e-12)
    r = projection_faithfulness(X, Yq, ground_truth_coordinates=X[:, :3])
    assert r.row_spearman == pytest.approx(expected.mean(), abs=1e-12)
    assert row_spearman(Yq, ground_truth_distances=lambda rows: gt[rows]) == pytest.approx(
        expected.mean(), abs=1e-12)
    dx = cdist(X, X)
    orig = np.mean([spearmanr(dy[i], dx[i])[0] for i in range(len(X))])
    assert r.row_spearman_original == pytest.approx(orig, abs=1e-12)


def test_sampled_rows_estimate_and_state_the_sample():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3000, 5))
    Y = X[:, :2] + 0.5 * rng.normal(size=(3000, 2))
    full = projection_faithfulness(X, Y, n_rows=3000)
    part = projection_faithfulness(X, Y, n_rows=400, random_state=0)
    assert part.sampled and part.n_rows == 400 and not full.sampled
    assert np.isnan(part.per_point["trustworthiness"]).sum() == 2600
    assert np.isnan(part.per_point["knn_recall"]).sum() == 0  # recall covers every point
    assert abs(part.trustworthiness - full.trustworthiness) < 0.01
    assert abs(part.continuity - full.continuity) < 0.01
    assert abs(part.row_spearman_original - full.row_spearman_original) < 0.02
    assert part.knn_recall == full.knn_recall
    summary = json.loads(json.dumps(part.to_dict()))
    assert summary["n_rows"] == 400 and "per_point" not in summary
    frame = part.per_point_frame()
    assert list(frame.columns) == ["_row", "trustworthiness", "continuity", "row_spearman",
                                   "row_spearman_original", "knn_recall"]


def test_large_n_runs_without_a_square_matrix():
    """n = 30,000: an n x n float64 matrix would need 7.2 GB; rows are chunked."""
    rng = np.random.default_rng(3)
    X = rng.uniform(size=(30_000, 2))
    r = projection_faithfulness(X, X * 2.0, n_rows=100, ground_truth_coordinates=X)
    assert r.trustworthiness == pytest.approx(1.0, abs=1e-12)
    assert r.row_spearman == pytest.approx(1.0, abs=1e-12) and r.knn_recall == 1.0


def test_precomputed_knn_graph_and_cosine(noisy_projection):
    X, Y = noisy_projection
    idx, dist = knn_graph(X, 10)
    assert knn_recall(None, Y, 10, knn=(idx, dist)) == pytest.approx(knn_recall(X, Y, 10))
    r_cos = projection_faithfulness(X, Y, metric="cosine")
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    r_euc = projection_faithfulness(Xn, Y)
    assert r_cos.trustworthiness == pytest.approx(r_euc.trustworthiness, abs=1e-12)


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"n_neighbors": 250}, InvalidParameterError, r"n_neighbors must be an integer in \[1, "
                                                   r"n_samples / 2\) = \[1, 250\); got 250"),
    ({"metric": "manhattan"}, InvalidParameterError, "metric must be one of"),
    ({"ground_truth_distances": np.zeros((500, 500)),
      "ground_truth_coordinates": np.zeros((500, 2))}, InvalidParameterError, "not both"),
    ({"ground_truth_distances": np.zeros((10, 10))}, InvalidInputError, r"shape \(500, 500\)"),
])
def test_parameter_errors(noisy_projection, kwargs, exc, match):
    X, Y = noisy_projection
    with pytest.raises(exc, match=match):
        projection_faithfulness(X, Y, **kwargs)


def test_input_errors():
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(InvalidInputError, match=r"shapes \(20, 3\) and \(19, 2\)"):
        projection_faithfulness(X, X[:19, :2])
    Y = X[:, :2].copy()
    Y[4, 0] = np.nan
    with pytest.raises(InvalidInputError, match=r"Y has 1 row\(s\) with NaN .*\[4\]"):
        projection_faithfulness(X, Y, n_neighbors=3)
    with pytest.raises(InvalidInputError, match=">= 4 points"):
        projection_faithfulness(X[:3], X[:3, :2], n_neighbors=1)
    with pytest.raises(InvalidParameterError, match="needs ground_truth"):
        row_spearman(X[:, :2])


def test_rank_sample_above_max_rows(noisy_projection):
    """Above max_rows the rank scores are those of a seeded sample (stated), and kNN recall
    still covers every row, from the shared graph."""
    X, Y = noisy_projection
    n = len(X)
    r = projection_faithfulness(X, Y, max_rows=200, n_rows=100, random_state=3,
                                knn=knn_graph(X, 10))
    rows = np.sort(np.random.default_rng(3).choice(n, 200, replace=False))
    ref = projection_faithfulness(X[rows], Y[rows], n_rows=100, random_state=3)
    assert r.rank_sample == 200 and r.sampled and r.n_samples == n
    assert r.trustworthiness == pytest.approx(ref.trustworthiness, abs=1e-12)
    assert r.continuity == pytest.approx(ref.continuity, abs=1e-12)
    assert r.knn_recall == pytest.approx(knn_recall(X, Y, 10))
    assert np.isfinite(r.per_point["knn_recall"]).all()
    assert np.isfinite(r.per_point["trustworthiness"]).sum() == 100
