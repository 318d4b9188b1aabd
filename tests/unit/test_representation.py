"""Tests for backend.diagnostics.representation: RankMe, DSE/DSMI, alignment/uniformity,
covariance spikes, against the closed forms and reference cases in diagnostics.json."""

import json
import math

import numpy as np
import pytest

from backend.diagnostics.representation import (
    alignment,
    covariance_spikes,
    diffusion_spectral_entropy,
    diffusion_spectral_mutual_information,
    rankme,
    representation_diagnostics,
    uniformity,
    uniformity_sphere,
)
from backend.errors import InvalidInputError, InvalidParameterError


def _clusters(rng, n_per=100, k=4, dim=10, spread=100.0):
    centers = rng.standard_normal((k, dim)) * spread
    labels = np.repeat(np.arange(k), n_per)
    return centers[labels] + rng.standard_normal((k * n_per, dim)), labels


# ------------------------------------------------------------------------------------------ RankMe


def test_rankme_identities():
    rng = np.random.default_rng(0)
    # one direction: exp of the entropy of (1+eps, eps, ..., eps), reference 1.00016
    identical = np.tile(rng.standard_normal(100), (1000, 1))
    assert rankme(identical) == pytest.approx(1.00016, abs=2e-6)
    # flat spectrum: 100 orthonormal columns, reference 100.004 (eps=1e-7) and 100.0 (eps=0)
    orthonormal, _ = np.linalg.qr(rng.standard_normal((1000, 100)))
    assert rankme(orthonormal) == pytest.approx(100.004, abs=1e-3)
    assert rankme(orthonormal, eps=0.0) == pytest.approx(100.0, abs=1e-9)
    low_rank = rng.standard_normal((1000, 10)) @ rng.standard_normal((10, 100))
    assert rankme(low_rank) == pytest.approx(9.82, abs=0.15)  # reference 9.82038
    gauss = rng.standard_normal((1000, 100))
    assert rankme(gauss * 1000.0) == pytest.approx(rankme(gauss), rel=1e-12)  # scale invariant


@pytest.mark.parametrize(
    ("n_rows", "expected", "tol"),
    [(1000, 98.7126, 0.3), (200, 92.5975, 0.8), (100, 80.3249, 1.5)],
)
def test_rankme_gaussian_reference(n_rows, expected, tol):
    # reference: one Gaussian draw per size (diagnostics.json rankme.gauss_*x100)
    values = [rankme(np.random.default_rng(s).standard_normal((n_rows, 100))) for s in range(3)]
    assert np.mean(values) == pytest.approx(expected, abs=tol)


def test_rankme_centering_and_zero_matrix():
    rng = np.random.default_rng(1)
    shifted = rng.standard_normal((500, 20)) + 10.0  # a large common mean is one strong direction
    assert rankme(shifted) < 6.0 < rankme(shifted, center=True)
    assert rankme(shifted, center=True) == pytest.approx(
        rankme(shifted - shifted.mean(0)), rel=1e-10
    )
    with pytest.raises(InvalidInputError, match="all zero, so RankMe is undefined"):
        rankme(np.zeros((50, 5)))


# ------------------------------------------------------------------------------------ DSE and DSMI


def test_dse_limits():
    x = np.random.default_rng(2).uniform(size=(300, 10))
    # sigma -> 0: K = I, DSE = log2 N (reference 8.22882)
    assert diffusion_spectral_entropy(x, sigma=1e-3) == pytest.approx(math.log2(300), abs=1e-9)
    # sigma -> inf: one eigenvalue carries everything (reference 5.3e-7)
    assert 0.0 <= diffusion_spectral_entropy(x, sigma=1e4) < 1e-5


def test_dse_counts_separated_clusters_at_long_times():
    x, _ = _clusters(np.random.default_rng(3))
    values = [diffusion_spectral_entropy(x, sigma=2.0, t=t) for t in (1, 10, 100)]
    # reference [7.80747, 2.00518, 2.0] for its own 4-cluster draw
    assert values[0] == pytest.approx(7.8, abs=0.1)
    assert values[1] == pytest.approx(2.0, abs=0.01)
    assert values[2] == pytest.approx(2.0, abs=1e-9)


def test_dse_median_sigma_is_scale_invariant():
    x = np.random.default_rng(4).standard_normal((200, 16))
    assert diffusion_spectral_entropy(x) == pytest.approx(
        diffusion_spectral_entropy(x * 50.0), rel=1e-9
    )
    with pytest.raises(InvalidParameterError, match="sigma must be a positive number"):
        diffusion_spectral_entropy(x, sigma=0.0)
    with pytest.raises(InvalidParameterError, match="t must be a positive number"):
        diffusion_spectral_entropy(x, t=-1)


def test_dsmi_true_labels_versus_permuted():
    rng = np.random.default_rng(5)
    x, labels = _clusters(rng)
    true = diffusion_spectral_mutual_information(x, labels, sigma=2.0)
    permuted = diffusion_spectral_mutual_information(x, rng.permutation(labels), sigma=2.0)
    # reference: 0.47325 (true labels) and 0.0094 (permuted) for its own draw
    assert true == pytest.approx(0.47, abs=0.05)
    assert abs(permuted) < 0.03
    with pytest.raises(
        InvalidInputError, match="labels must have one entry per row: 400 expected, got 3"
    ):
        diffusion_spectral_mutual_information(x, [0, 1, 2])
    with pytest.raises(InvalidInputError, match="single class"):
        diffusion_spectral_mutual_information(x, np.zeros(400))


# ------------------------------------------------------------------------ alignment and uniformity


def test_uniformity_closed_form_and_monte_carlo():
    assert uniformity_sphere(384) == pytest.approx(-3.97917, abs=5e-6)
    assert uniformity_sphere(384) == pytest.approx(-4 + 8 / 384, abs=5e-4)
    assert uniformity_sphere(3) == pytest.approx(-2.07978, abs=5e-6)
    rng = np.random.default_rng(6)
    assert uniformity(rng.standard_normal((2000, 384))) == pytest.approx(-3.97917, abs=2e-3)
    assert uniformity(rng.standard_normal((3000, 3))) == pytest.approx(-2.07978, abs=0.01)
    collapsed = np.tile([1.0, 2.0, 3.0], (50, 1))
    assert uniformity(collapsed) == pytest.approx(0.0, abs=1e-12)


def test_alignment_identities():
    rng = np.random.default_rng(7)
    a = rng.standard_normal((5000, 384))
    assert alignment(a, a) == 0.0
    assert alignment(a, -a) == pytest.approx(4.0, abs=1e-12)
    assert alignment(a, rng.standard_normal((5000, 384))) == pytest.approx(
        2.0, abs=0.01
    )  # reference 2.00155
    with pytest.raises(InvalidInputError, match="same shape"):
        alignment(a, a[:10])
    with pytest.raises(InvalidInputError, match="1 all-zero rows"):
        alignment(np.vstack([a[:3], np.zeros(384)]), a[:4])


# -------------------------------------------------------------------- covariance spikes and driver


def test_covariance_spikes_noise_and_planted_spike():
    rng = np.random.default_rng(8)
    spikes, edge, evals = covariance_spikes(rng.standard_normal((4000, 100)))
    assert spikes == 0
    assert edge == pytest.approx((1 + 1 / math.sqrt(40)) ** 2, rel=0.05)
    assert np.all(np.diff(evals) <= 0)
    planted = rng.standard_normal((2000, 500))
    planted[:, 0] *= math.sqrt(5.0)
    spikes, edge, evals = covariance_spikes(planted)
    assert spikes == 1
    assert evals[0] == pytest.approx(5.3125, abs=0.4)  # BBP limit for ell=5, gamma=0.25


def test_driver_report_and_serialisation():
    rng = np.random.default_rng(9)
    x, labels = _clusters(rng, n_per=150, k=4, dim=32, spread=5.0)
    pairs = np.stack([np.arange(0, 600, 2), np.arange(1, 600, 2)], axis=1)
    seen = []
    report = representation_diagnostics(
        x, labels=labels, pairs=pairs, max_n=400, progress=lambda f, m: seen.append(f)
    )
    assert report.n_rows == 600 and report.n_features == 32 and report.dse_n == 400
    assert report.rankme == pytest.approx(rankme(x))
    assert report.rankme_centered == pytest.approx(rankme(x, center=True))
    assert 0 < report.dse <= math.log2(400)
    assert report.dsmi > 0.3 and report.n_classes == 4
    # consecutive rows mostly share a cluster: pairs are closer than random directions
    assert report.alignment < 1.0 and report.n_pairs == 300
    assert -4.0 <= report.uniformity <= 0.0 and report.uniformity_n == 400
    assert report.mp_num_spikes >= 3  # three between-cluster directions
    assert report.covariance_eigenvalues.shape == (32,)
    assert seen == sorted(seen) and seen[-1] == 1.0
    payload = json.loads(json.dumps(report.to_dict()))
    assert payload["params"]["sigma"] == "median pairwise distance"
    assert len(payload["covariance_eigenvalues"]) == 32


def test_numeric_labels_are_binned_into_quantiles():
    x = np.random.default_rng(12).standard_normal((300, 4))
    report = representation_diagnostics(x, labels=list(x[:, 0]), max_n=100)
    assert report.n_classes == 10
    # labels that follow the geometry carry information, unlike shuffled ones
    shuffled = representation_diagnostics(x, labels=np.random.default_rng(0).permutation(x[:, 0]))
    informed = representation_diagnostics(x, labels=x[:, 0])
    assert informed.dsmi > shuffled.dsmi + 0.1


@pytest.mark.parametrize("shape", [(55, 18_534), (256, 384)])
def test_fewer_rows_than_dimensions_computes_every_defined_measure(shape):
    """Issue 17 item 18: 55 x 18,534 and 256 x 384 get every measure but the MP spikes."""
    n, d = shape
    rng = np.random.default_rng(10)
    x = rng.standard_normal((n, d)) + np.repeat(rng.standard_normal((2, d)) * 3, n // 2 + 1,
                                                 axis=0)[:n]
    labels = np.repeat([0, 1], n // 2 + 1)[:n]
    pairs = np.stack([np.arange(0, n - 1, 2), np.arange(1, n, 2)], axis=1)
    report = representation_diagnostics(x, labels=labels, pairs=pairs, max_n=200)
    assert report.rankme == pytest.approx(rankme(x)) and 1 < report.rankme <= n
    assert report.rankme_centered == pytest.approx(rankme(x, center=True))
    assert report.dse > 0 and report.dsmi > 0.1 and report.n_classes == 2
    assert report.alignment is not None and report.uniformity is not None
    assert report.mp_num_spikes is None and report.mp_bulk_max is None
    assert list(report.skipped) == ["mp_num_spikes"]
    assert f"with {n:,} rows and {d:,} dimensions" in report.skipped["mp_num_spikes"]
    assert f"RankMe is capped at {n:,}" in report.note and "Skipped: mp_num_spikes" in report.note
    # the N eigenvalues that can be non-zero, equal to the D x D covariance's largest ones
    ev = report.covariance_eigenvalues
    assert ev.shape == (n,) and np.all(np.diff(ev) <= 1e-9 * ev[0])
    xc = x - x.mean(axis=0)
    if d <= 1000:
        full = np.linalg.eigvalsh(xc.T @ xc / n)[::-1]
        np.testing.assert_allclose(ev, full[:n], rtol=1e-8, atol=1e-9 * full[0])
    assert ev[:-1].sum() == pytest.approx(float((xc * xc).sum()) / n, rel=1e-9)
    assert ev[-1] == pytest.approx(0.0, abs=1e-9 * ev[0])  # centring removes one rank
    payload = json.loads(json.dumps(report.to_dict()))
    assert payload["skipped"] == report.skipped and payload["mp_num_spikes"] is None
    # the square case keeps the spike count and says nothing
    full_rank = representation_diagnostics(x[:, :50])
    assert full_rank.skipped == {} and full_rank.note is None
    assert isinstance(full_rank.mp_num_spikes, int)


def test_covariance_spikes_alone_refuses_fewer_rows_than_dimensions():
    x = np.random.default_rng(10).standard_normal((50, 384))
    with pytest.raises(InvalidInputError, match="50 rows but 384 dimensions"):
        covariance_spikes(x)


def test_representation_job_accepts_fewer_rows_than_dimensions(backend):
    """The job validator no longer refuses 55 x 18,534-like data; the note reaches the page."""
    import pandas as pd

    from backend.jobs import JobSpec

    x = np.random.default_rng(3).standard_normal((40, 600)).astype(np.float32)
    info = backend.store.add_dataset(pd.DataFrame({"g": ["a", "b"] * 20}), x, name="wide",
                                     source="test")
    job = backend.submit(JobSpec("representation", info.id, {"label_column": "g"}))
    status = backend.wait(job, 60)
    assert status.state == "done", status.error
    r = backend.artifact_json(status.artifact_id, "representation.json")
    assert r["mp_num_spikes"] is None and "mp_num_spikes" in r["skipped"]
    assert "RankMe is capped at 40" in r["note"] and r["rankme"] > 1
    spec = backend.artifact_table(status.artifact_id, "covariance_spectrum.parquet")
    assert len(spec) == 40


def test_bad_embeddings_are_refused():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((100, 8))
    broken = x.copy()
    broken[4, 2] = np.nan
    with pytest.raises(
        InvalidInputError, match="1 NaN or infinite values in 1 rows \\(first: row 4\\)"
    ):
        representation_diagnostics(broken)
    with pytest.raises(InvalidInputError, match="must be 2-D"):
        representation_diagnostics(x[:, 0])
    with pytest.raises(InvalidInputError, match="All rows of the embedding are identical"):
        representation_diagnostics(np.tile(x[0], (100, 1)))
    with pytest.raises(InvalidInputError, match="pairs refer to rows 0..100"):
        representation_diagnostics(x, pairs=[[0, 100]])
    with pytest.raises(InvalidParameterError, match="max_n must be an int >= 3"):
        representation_diagnostics(x, max_n=2)
