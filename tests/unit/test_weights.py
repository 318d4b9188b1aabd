"""Tests for backend.diagnostics.weights: closed forms, WeightWatcher 0.7.7 reference
values on all-MiniLM-L6-v2, FARMS reference values, and bad input."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from backend.diagnostics.weights import (
    EVALS_THRESH,
    analyze_weights,
    farms_eigenvalues,
    fit_marchenko_pastur,
    fit_power_law,
    layer_eigenvalues,
    mp_bulk_edges,
    spiked_top_eigenvalue,
)
from backend.errors import InvalidInputError, InvalidParameterError, JobCancelled
from backend.models import bundled_minilm, open_weights, random_init_like

REFERENCE = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "reference" / "diagnostics.json"
)


@pytest.fixture(scope="module")
def reference():
    if not REFERENCE.is_file():
        pytest.skip(f"{REFERENCE} is missing (the shared/ folder beside the repo)")
    return json.loads(REFERENCE.read_text())


@pytest.fixture(scope="module")
def minilm():
    """One analysis of the whole bundled model, plain fit and MP fit (FARMS is checked
    on the reference layers only, to keep the suite short)."""
    return analyze_weights(bundled_minilm(), farms=False, mp_fit=True)


def _ww_rows(reference, key):
    return {row["longname"].removeprefix("0.model."): row for row in reference[key]}


def _exhaustive_fit(values):
    """WeightWatcher's WWFit loop, transcribed literally (O(n²), numpy)."""
    data = np.sort(values[values > EVALS_THRESH])
    n_all = len(data)
    logs = np.log(data)
    alphas, distances = np.zeros(n_all - 1), np.ones(n_all - 1)
    for i, xmin in enumerate(data[:-1]):
        n = float(n_all - i)
        alphas[i] = 1 + n / (np.sum(logs[i:]) - n * logs[i])
        if alphas[i] > 1:
            distances[i] = np.max(
                np.abs(1 - (data[i:] / xmin) ** (1 - alphas[i]) - np.arange(n) / n)
            )
    best = int(np.argmin(distances))
    return alphas[best], data[best], distances[best]


# ------------------------------------------------------------------------------------ closed forms


def test_mp_bulk_edges_closed_form():
    assert mp_bulk_edges(4.0) == pytest.approx((0.25, 2.25), abs=1e-15)
    assert mp_bulk_edges(4.0, sigma=2.0) == pytest.approx((1.0, 9.0), abs=1e-14)
    assert mp_bulk_edges(1.0) == pytest.approx((0.0, 4.0))
    with pytest.raises(InvalidParameterError, match="Q must be a number >= 1"):
        mp_bulk_edges(0.5)


def test_gaussian_spectrum_fills_the_mp_bulk():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 500))  # gamma = 0.25
    evals = layer_eigenvalues(x) / 2000
    low, high = mp_bulk_edges(4.0)
    assert evals.min() == pytest.approx(low, abs=0.03)
    assert evals.max() == pytest.approx(high, abs=0.08)
    assert evals.mean() == pytest.approx(1.0, abs=0.01)


def test_spiked_covariance_bbp():
    assert spiked_top_eigenvalue(5.0, 0.25) == pytest.approx(5.3125)
    assert spiked_top_eigenvalue(1.3, 0.25) == pytest.approx(2.25)  # below 1 + sqrt(gamma)
    rng = np.random.default_rng(1)
    for ell, expected, tol in ((5.0, 5.3125, 0.4), (1.3, 2.25, 0.12)):
        x = rng.standard_normal((2000, 500))
        x[:, 0] *= math.sqrt(ell)
        top = layer_eigenvalues(x)[-1] / 2000
        assert top == pytest.approx(expected, abs=tol)
    with pytest.raises(InvalidParameterError, match="gamma must be in"):
        spiked_top_eigenvalue(5.0, 2.0)


# ----------------------------------------------------------------------------------- power-law fit


def test_power_law_fit_matches_weightwatcher_on_pareto():
    # Reference: weightwatcher 0.7.7 WW_powerlaw.WWFit on this exact sample.
    sample = np.random.default_rng(0).pareto(1.5, 5000) + 1.0
    fit = fit_power_law(sample)
    assert fit.alpha == pytest.approx(2.467806603801463, abs=1e-10)
    assert fit.xmin == pytest.approx(1.2056724955643168, rel=1e-12)
    assert fit.D == pytest.approx(0.009288100600232552, abs=1e-12)
    assert fit.num_pl_spikes == 3766
    assert fit.sigma == pytest.approx((fit.alpha - 1) / math.sqrt(3766))
    # the true exponent 2.5 is within 2 standard errors
    assert abs(fit.alpha - 2.5) < 2 * fit.sigma


def test_power_law_fit_matches_weightwatcher_on_student_t_matrix():
    # Reference: WWFit on np.linalg.svd(W)**2 for this W (weightwatcher 0.7.7).
    w = np.random.default_rng(1).standard_t(2, size=(600, 300))
    fit = fit_power_law(layer_eigenvalues(w))
    assert fit.alpha == pytest.approx(2.384444935045413, abs=1e-9)
    assert fit.xmin == pytest.approx(6073.455715941887, rel=1e-9)
    assert fit.num_pl_spikes == 97


@pytest.mark.parametrize("seed", range(6))
def test_bounded_scan_finds_the_exhaustive_minimum(seed):
    # Above 1024 eigenvalues the scan prunes candidates; it must pick the same xmin.
    rng = np.random.default_rng(seed)
    n = 1100 + 300 * seed
    kind = seed % 3
    if kind == 0:
        values = rng.pareto(1.0 + 0.5 * seed, n) + 1.0
    elif kind == 1:
        values = rng.lognormal(0.0, 1.5, n)
    else:
        values = np.concatenate([rng.chisquare(4, n - 40), rng.pareto(1.2, 40) * 30 + 10])
    alpha, xmin, distance = _exhaustive_fit(values)
    fit = fit_power_law(values)
    assert fit.xmin == xmin
    assert fit.alpha == pytest.approx(alpha, rel=1e-10)
    assert fit.D == pytest.approx(distance, abs=1e-12)


def test_power_law_fit_edge_cases():
    fit = fit_power_law(np.array([1e-7, 2e-6, 3.0]))  # one value above the floor
    assert math.isnan(fit.alpha) and fit.n_fitted == 1
    with pytest.raises(InvalidInputError, match="NaN or infinite"):
        fit_power_law(np.array([1.0, np.nan, 2.0]))
    with pytest.raises(InvalidInputError, match="must be >= 0"):
        fit_power_law(np.array([1.0, -2.0, 3.0]))


def test_heavy_tailed_entries_give_small_alpha_and_noise_large_alpha():
    rng = np.random.default_rng(2)
    # Pareto entries with tail index mu = 1: theory alpha = 1 + mu/2 = 1.5
    # (reference run: 1.4976 on 1000 x 1000)
    heavy = (rng.pareto(1.0, (1000, 1000)) + 1.0) * rng.choice([-1.0, 1.0], (1000, 1000))
    assert fit_power_law(layer_eigenvalues(heavy)).alpha == pytest.approx(1.5, abs=0.1)
    # Gaussian noise: alpha is large and unstable (reference: 5.3-13.6 over 8 seeds)
    assert fit_power_law(layer_eigenvalues(rng.standard_normal((256, 256)))).alpha > 4.5


# ----------------------------------------------------------------------------- slicing, FARMS, KDE


def test_conv_kernels_are_sliced_per_position_and_pooled():
    rng = np.random.default_rng(3)
    kernel = rng.standard_normal((64, 32, 3, 3))
    expected = np.sort(
        np.concatenate(
            [
                np.linalg.svd(kernel[:, :, i, j], compute_uv=False) ** 2
                for i in range(3)
                for j in range(3)
            ]
        )
    )
    pooled = layer_eigenvalues(kernel, conv2d_norm=False)
    assert pooled.shape == (32 * 9,)
    np.testing.assert_allclose(pooled, expected, rtol=1e-10)
    np.testing.assert_allclose(
        layer_eigenvalues(kernel), expected / 2, rtol=1e-10
    )  # sqrt(1/2) scaling
    keras = np.transpose(kernel, (2, 3, 1, 0))  # (kh, kw, in, out)
    np.testing.assert_allclose(layer_eigenvalues(keras, conv2d_norm=False), expected, rtol=1e-10)
    conv1d = kernel[:, :, 0, :]  # (out, in, k): Conv1d is not scaled
    expected_1d = np.sort(
        np.concatenate([np.linalg.svd(conv1d[:, :, k], compute_uv=False) ** 2 for k in range(3)])
    )
    np.testing.assert_allclose(layer_eigenvalues(conv1d), expected_1d, rtol=1e-10)


def test_farms_windows_cover_the_matrix():
    rng = np.random.default_rng(4)
    w = rng.standard_normal((300, 100))
    evals = farms_eigenvalues(w, window=128, windows_per_dim=8)
    # window shrinks to 100 x 100; 8 row starts from 0 to 200, one column start
    assert evals.shape == (8 * 100,)
    first = np.linalg.svd(w[:100], compute_uv=False) ** 2
    last = np.linalg.svd(w[200:], compute_uv=False) ** 2
    for block in (first, last):
        assert np.all(np.isin(np.round(block, 8), np.round(evals, 8)))
    square = rng.standard_normal((30, 30))  # smaller than the window: one window = the matrix
    np.testing.assert_allclose(farms_eigenvalues(square), layer_eigenvalues(square), rtol=1e-10)
    # a 40 x 30 matrix keeps the aspect ratio fixed: 30 x 30 windows at 8 distinct row starts
    assert farms_eigenvalues(rng.standard_normal((40, 30))).shape == (8 * 30,)
    with pytest.raises(InvalidParameterError, match="farms window must be an int >= 2"):
        farms_eigenvalues(w, window=1)


def test_chunked_gram_equals_the_float64_product():
    from backend.diagnostics import weights as module

    rng = np.random.default_rng(11)
    tall = torch.from_numpy(rng.standard_normal((3, 700, 40)).astype(np.float32))
    wide = tall.transpose(1, 2)  # (3, 40, 700): the Gram is on the 40 side as well
    expected = np.einsum("bij,bik->bjk", tall.double().numpy(), tall.double().numpy())
    old_chunk = module._CAST_CHUNK
    try:
        module._CAST_CHUNK = 3 * 40 * 64  # 64 rows at a time: 11 chunks, the last short
        for stack in (tall, wide):
            grams = module._grams(stack)
            assert grams.dtype == torch.float64 and grams.shape == (3, 40, 40)
            np.testing.assert_allclose(grams.numpy(), expected, rtol=1e-12, atol=1e-10)
        np.testing.assert_allclose(
            module._grams(tall, 0.5).numpy(), expected / 2, rtol=1e-12, atol=1e-10
        )
    finally:
        module._CAST_CHUNK = old_chunk


def test_eigenvalue_batches_split_in_order():
    from backend.diagnostics.weights import _PendingGrams, _split_items

    items = [(("full", i), torch.full((count, 2, 2), float(i))) for i, count in
             enumerate([1, 5, 1, 1, 3])]
    runs = _split_items(items, 3)  # 11 matrices: runs of 4, 4, 3
    assert [sum(g.shape[0] for _, g in run) for run in runs] == [4, 4, 3]
    flat = [(key, float(v)) for run in runs for key, g in run for v in g[:, 0, 0]]
    assert flat == [(key, float(g[0, 0, 0])) for key, g in items for _ in range(g.shape[0])]
    assert _split_items(items, 1) == [items]

    rng = np.random.default_rng(12)
    grams = {}
    for i, count in enumerate([1, 64, 1, 3]):
        x = torch.from_numpy(rng.standard_normal((count, 30, 20)))
        grams[i] = x.transpose(1, 2) @ x
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        pending = _PendingGrams("cpu", pool, 2)
        for i, g in grams.items():
            pending.add(("full", i), g)
        pending.flush()
        for i, g in grams.items():
            np.testing.assert_allclose(
                pending.result(("full", i)).numpy(),
                np.linalg.eigvalsh(g.numpy()).clip(0).reshape(-1),
                rtol=1e-10,
                atol=1e-10,
            )


def test_worker_threads_give_identical_results():
    rng = np.random.default_rng(13)
    weights = {
        "embed.weight": rng.standard_normal((900, 64)).astype(np.float32),
        "conv.weight": rng.standard_normal((64, 32, 3, 3)).astype(np.float32),
        **{f"l{i}.weight": rng.standard_normal((96, 64 + i)) for i in range(5)},
        "zero.weight": np.zeros((96, 64)),
    }
    serial = analyze_weights(weights, n_jobs=None)
    parallel = analyze_weights(weights, n_jobs=3)
    assert serial.params["n_jobs"] == 1 and parallel.params["n_jobs"] == 3
    assert list(serial.layers.name) == ["embed.weight", "conv.weight"] + [
        f"l{i}.weight" for i in range(5)
    ]
    numeric = serial.layers.select_dtypes("number").columns
    np.testing.assert_array_equal(
        serial.layers[numeric].to_numpy(), parallel.layers[numeric].to_numpy()
    )
    assert list(parallel.skipped.name) == ["zero.weight"]
    for name, spectrum in serial.spectra.items():
        np.testing.assert_array_equal(spectrum.evals, parallel.spectra[name].evals)
        np.testing.assert_array_equal(spectrum.farms_evals, parallel.spectra[name].farms_evals)
    # a NaN in a layer computed on a worker is reported as from the serial path
    weights["l3.weight"] = np.full((96, 67), np.nan)
    with pytest.raises(InvalidInputError, match=r"l3.weight \(96, 67\) holds 6432 NaN"):
        analyze_weights(weights, n_jobs=2)
    with pytest.raises(InvalidParameterError, match="n_jobs must be -1, None or an int >= 1"):
        analyze_weights(weights, n_jobs=0)


def test_mp_fit_kde_equals_scikit_learn():
    from sklearn.neighbors import KernelDensity

    from backend.diagnostics.weights import _linear_kde

    points = np.random.default_rng(5).gamma(2.0, 1.0, 400)
    grid = np.linspace(0, points.max() + 0.5, 1000)
    expected = np.exp(
        KernelDensity(kernel="linear", bandwidth=0.1)
        .fit(points[:, None])
        .score_samples(grid[:, None])
    )
    np.testing.assert_allclose(_linear_kde(points, grid, 0.1), expected, atol=1e-12)


def test_mp_fit_on_noise_finds_no_spikes_and_the_bulk_edge():
    x = np.random.default_rng(6).standard_normal((2000, 500))
    fit = fit_marchenko_pastur(layer_eigenvalues(x), n_rows=2000, n_cols=500)
    assert fit.num_spikes == 0
    assert fit.Q == 4.0
    # in covariance units the bulk edge is (1 + 1/2)² = 2.25
    assert fit.bulk_max / 2000 == pytest.approx(2.25, rel=0.05)
    with pytest.raises(InvalidParameterError, match="need n_rows >= n_cols"):
        fit_marchenko_pastur(np.ones(5), n_rows=3, n_cols=5)


# ------------------------------------------------------------------- MiniLM vs WeightWatcher 0.7.7


def test_minilm_layer_set(minilm):
    assert len(minilm.layers) == 39
    skipped = dict(zip(minilm.skipped["name"], minilm.skipped["reason"], strict=True))
    assert skipped["embeddings.token_type_embeddings.weight"] == "2 eigenvalues < min_evals=50"
    assert skipped["embeddings.position_ids"].startswith("not floating point")
    row = minilm.layers.set_index("name").loc["embeddings.word_embeddings.weight"]
    assert (row.kind, row.N, row.M, row.num_evals) == ("embedding", 30522, 384, 384)


def test_minilm_plain_alpha_matches_weightwatcher(minilm, reference):
    ww = _ww_rows(reference, "minilm.ww.details_default")
    layers = minilm.layers.set_index("name")
    assert len(ww) == len(layers)
    for name, row in layers.iterrows():
        expected = ww[name.removesuffix(".weight")]
        assert row.num_evals >= 50
        # requirement: within 0.05; the reference is rounded to 6 significant digits
        assert row.alpha_plain == pytest.approx(expected["alpha"], abs=1e-4), name
        assert row.xmin_plain == pytest.approx(expected["xmin"], rel=1e-5), name
        assert row.D_plain == pytest.approx(expected["D"], rel=1e-4), name
        assert row.num_pl_spikes_plain == expected["num_pl_spikes"], name
        assert row.alpha_weighted_plain == pytest.approx(expected["alpha_weighted"], abs=1e-4), name
        assert row.log_norm == pytest.approx(expected["log_norm"], abs=1e-5), name
        assert row.log_spectral_norm == pytest.approx(expected["log_spectral_norm"], abs=1e-5), name
        assert row.stable_rank == pytest.approx(expected["stable_rank"], rel=1e-5), name
        assert row.warning == expected["warning"], name
    summary = reference["minilm.ww.summary_default"]
    assert layers.alpha_plain.mean() == pytest.approx(summary["alpha"], abs=1e-5)
    assert layers.log_norm.mean() == pytest.approx(summary["log_norm"], abs=1e-5)
    assert layers.stable_rank.mean() == pytest.approx(summary["stable_rank"], rel=1e-5)


def test_minilm_mp_fit_matches_weightwatcher(minilm, reference):
    layers = minilm.layers.set_index("name")
    for name, expected in _ww_rows(reference, "minilm.ww.mpfit_first_rows").items():
        row = layers.loc[name + ".weight"]
        assert row.num_spikes == expected["num_spikes"], name
        assert row.sigma_mp == pytest.approx(expected["sigma_mp"], rel=1e-5), name
        assert row.mp_softrank == pytest.approx(expected["mp_softrank"], rel=1e-5), name
        assert row.bulk_max == pytest.approx(expected["bulk_max"], rel=1e-5), name
    assert layers.mp_softrank.mean() == pytest.approx(
        reference["minilm.ww.summary_mpfit"]["mp_softrank"], abs=1e-6
    )


def test_minilm_farms_matches_reference(reference):
    weights = bundled_minilm()
    names = [name + ".weight" for name in reference["minilm.farms_vs_full"]]
    result = analyze_weights({name: weights.get(name) for name in names}, mp_fit=False)
    layers = result.layers.set_index("name")
    for name, expected in reference["minilm.farms_vs_full"].items():
        row = layers.loc[name + ".weight"]
        assert row.farms_windows == expected["windows"] == 64
        assert row.farms_window == "128x128"
        assert row.alpha_farms == pytest.approx(
            expected["farms_alpha(128x128,<=8x8 windows)"], abs=1e-5
        ), name
        assert row.alpha_plain == pytest.approx(expected["ww_alpha_full"], abs=1e-5), name
    assert (layers.alpha == layers.alpha_farms).all()
    assert (layers.alpha_method == "farms").all()
    spectrum = result.spectra["encoder.layer.0.attention.self.query.weight"]
    assert spectrum.farms_evals.shape == (64 * 128,)
    x, _ = spectrum.fit_line("farms")
    assert x[0] == pytest.approx(spectrum.farms.xmin)
    assert set(result.spectra_frame().spectrum) == {"full", "farms"}


def test_minilm_result_serialises(minilm):
    payload = json.loads(json.dumps(minilm.to_dict()))
    assert len(payload["layers"]) == 39
    assert payload["params"]["farms"] is False
    assert payload["summary"]["alpha_plain"] == pytest.approx(4.11709, abs=1e-5)
    assert payload["summary"]["alpha"] == payload["summary"]["alpha_plain"]
    frame = minilm.spectra_frame()
    assert set(frame.spectrum) == {"full"}
    word = frame[frame.name == "embeddings.word_embeddings.weight"]
    assert len(word) == 384
    spectrum = minilm.spectra["encoder.layer.0.attention.self.query.weight"]
    assert spectrum.mp is not None and spectrum.farms_evals is None
    x, y = spectrum.fit_line("plain")
    assert x[0] == pytest.approx(spectrum.plain.xmin) and np.all(np.diff(y) < 0)


def test_summary_counts_bands_for_both_fits():
    """Issue 17 item 23: the counters beside a FARMS mean count FARMS alphas."""
    import pandas as pd

    from backend.diagnostics.weights import WeightAnalysis

    layers = pd.DataFrame({"name": list("abcde"),
                           "alpha_plain": [1.5, 3.0, 4.0, 7.0, np.nan],
                           "alpha_farms": [2.5, 6.5, 7.0, 9.0, 5.0]})
    s = WeightAnalysis(layers, pd.DataFrame({"name": [], "shape": [], "reason": []}), {}, {},
                       "cpu").summary()
    assert (s["n_over_trained_plain"], s["n_under_trained_plain"], s["n_alpha_above_8_plain"],
            s["n_alpha_plain"]) == (1, 1, 0, 4)
    assert (s["n_over_trained_farms"], s["n_under_trained_farms"], s["n_alpha_above_8_farms"],
            s["n_alpha_farms"]) == (0, 3, 1, 5)
    assert (s["n_over_trained"], s["n_under_trained"]) == (1, 1)  # plain, as before


def test_random_init_baseline_has_larger_alphas(minilm):
    baseline = analyze_weights(random_init_like(bundled_minilm()), farms=False, mp_fit=True)
    trained = minilm.layers.set_index("name")
    random = baseline.layers.set_index("name")
    assert random.index.equals(trained.index)
    assert random.alpha_plain.median() > 6.0 > trained.alpha_plain.median()
    # a random layer is all bulk: MP soft rank near 1, trained layers far below
    assert random.mp_softrank.median() > 0.8 > trained.mp_softrank.median()
    assert (baseline.layers.alpha_method == "plain").all()


# ------------------------------------------------------------------- bad input and driver contract


def test_nan_or_inf_in_a_tensor_is_refused(tmp_path):
    weight = torch.randn(128, 64)
    weight[3, 5] = float("nan")
    weight[7, 1] = float("inf")
    path = tmp_path / "broken.safetensors"
    save_file({"layer.weight": weight, "layer.bias": torch.zeros(128)}, str(path))
    with pytest.raises(
        InvalidInputError,
        match=r"layer.weight \(128, 64\) holds 1 NaN and 1 infinite values out of 8192",
    ):
        analyze_weights(open_weights(path), mp_fit=False)


def test_only_one_dimensional_tensors_are_refused(tmp_path):
    path = tmp_path / "norms.pt"
    torch.save(
        {"norm.weight": torch.ones(64), "norm.bias": torch.zeros(64), "head.bias": torch.zeros(8)},
        path,
    )
    with pytest.raises(
        InvalidInputError, match="None of the 3 tensors is a weight matrix: all are 1-D"
    ):
        analyze_weights(open_weights(path))


def test_tied_tensors_count_once_and_1d_tensors_are_listed(tmp_path):
    """Issue 17 item 22: a tied embedding/output head is one matrix in the averages; 1-D
    tensors are listed as skipped with the reason."""
    torch.manual_seed(0)
    emb = torch.randn(300, 64) * torch.linspace(0.1, 3.0, 64)
    other = torch.randn(128, 64)
    path = tmp_path / "tied.pt"
    state = {"embed.weight": emb, "mid.weight": other, "mid.bias": torch.zeros(128),
             "head.weight": emb}  # tied: the same storage
    torch.save(state, path)
    res = analyze_weights(open_weights(path), farms=False, mp_fit=False)
    assert list(res.layers.name) == ["embed.weight", "mid.weight"]
    skipped = res.skipped.set_index("name")["reason"].to_dict()
    assert skipped["head.weight"] == "shares storage with embed.weight (tied weights): counted once"
    assert skipped["mid.bias"].startswith("1-D (a bias or a norm scale)")
    alone = analyze_weights({"embed.weight": emb, "mid.weight": other}, farms=False, mp_fit=False)
    assert res.summary()["alpha_plain"] == pytest.approx(alone.summary()["alpha_plain"])
    assert res.summary()["n_layers"] == 2 and res.summary()["n_skipped"] == 2
    # equal values in separate storage are two matrices (e.g. an untied copy)
    untied = analyze_weights({"a.weight": emb, "b.weight": emb.clone()}, farms=False,
                             mp_fit=False)
    assert len(untied.layers) == 2


def test_empty_or_unusable_weights_are_refused():
    with pytest.raises(InvalidInputError, match="holds no tensors"):
        analyze_weights({})
    with pytest.raises(InvalidInputError, match="is a list, not a tensor"):
        analyze_weights({"a.weight": [[1.0, 2.0]]})
    with pytest.raises(
        InvalidInputError, match=r"could be analysed .*8 eigenvalues < min_evals=50"
    ):
        analyze_weights({"small.weight": torch.randn(16, 8)})
    small = analyze_weights({"small.weight": torch.randn(16, 8)}, min_evals=8, farms=False)
    assert len(small.layers) == 1
    mixed = analyze_weights({"zero.weight": torch.zeros(96, 64), "w.weight": torch.randn(96, 64)})
    assert list(mixed.layers.name) == ["w.weight"]
    assert mixed.skipped.set_index("name").loc["zero.weight", "reason"] == "all weights are zero"


def test_parameters_are_checked():
    weights = {"a.weight": torch.randn(64, 64)}
    with pytest.raises(InvalidParameterError, match="min_evals must be an int >= 2"):
        analyze_weights(weights, min_evals=1)
    with pytest.raises(
        InvalidParameterError, match="max_evals must be None or an int >= min_evals"
    ):
        analyze_weights(weights, max_evals=10)
    with pytest.raises(InvalidParameterError, match="farms windows_per_dim must be an int in"):
        analyze_weights(weights, farms_windows_per_dim=0)
    with pytest.raises(InvalidParameterError, match="farms must be True or False"):
        analyze_weights(weights, farms="yes")
    with pytest.raises(InvalidParameterError, match="device must be None"):
        analyze_weights(weights, device="tpu")


def test_progress_is_reported_and_can_cancel():
    rng = np.random.default_rng(7)
    weights = {f"l{i}.weight": rng.standard_normal((96, 64)) for i in range(3)}
    seen = []
    result = analyze_weights(weights, progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and 0.0 <= fractions[0]
    assert any("l1.weight" in m for _, m in seen)
    assert list(result.layers.name) == ["l0.weight", "l1.weight", "l2.weight"]

    def cancel(fraction, message):
        if fraction > 0.5:
            raise JobCancelled("cancelled by the user")

    threads = torch.get_num_threads()
    with pytest.raises(JobCancelled):
        analyze_weights(weights, progress=cancel, device="cpu")
    assert torch.get_num_threads() == threads  # the CPU thread limit is undone
