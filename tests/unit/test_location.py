"""Tests of backend.embed.location: harmonics, DFS encodings, SIREN, trainer, SatCLIP loader."""

from __future__ import annotations

import itertools
import math
import pickle

import numpy as np
import pytest
import torch
from scipy.special import lpmv, roots_legendre, sph_harm_y

from backend.datasets.geo import sample_sphere_uniform
from backend.embed.location import (
    DFS_ENCODERS,
    LocationEncoder,
    SirenNet,
    load_satclip_location_encoder,
    positional_encoding,
    spherical_harmonics,
)
from backend.errors import InvalidInputError, InvalidParameterError, JobCancelled

pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture
def single_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices; avoids thread contention on shared runners
    yield
    torch.set_num_threads(previous)


def _column(ell: int, m: int) -> int:
    return ell * ell + ell + m


# ---------------------------------------------------------------- harmonics


def test_basis_is_orthonormal_under_exact_quadrature():
    # Gauss-Legendre in sin(lat) x uniform longitudes integrates products of
    # degree < L harmonics exactly, so the Gram matrix must be the identity.
    degree = 20
    nodes, weights = roots_legendre(degree + 1)
    n_lon = 2 * degree + 2
    lon = -180.0 + 360.0 * np.arange(n_lon) / n_lon
    lat = np.rad2deg(np.arcsin(nodes))
    Y = spherical_harmonics(np.repeat(lat, n_lon), np.tile(lon, lat.size), degree).numpy()
    w = np.repeat(weights, n_lon) * (2 * np.pi / n_lon)
    gram = (Y * w[:, None]).T @ Y
    assert gram.shape == (degree**2, degree**2)
    np.testing.assert_allclose(gram, np.eye(degree**2), atol=1e-12)


def test_matches_scipy_sph_harm_y_up_to_documented_convention():
    rng = np.random.default_rng(3)
    lat = np.concatenate([rng.uniform(-90, 90, 300), [89.999, -89.999, 0.0]])
    lon = np.concatenate([rng.uniform(-180, 180, 300), [10.0, -170.0, 179.9]])
    degree = 12
    Y = spherical_harmonics(lat, lon, degree).numpy()
    assert Y.dtype == np.float64
    theta = np.deg2rad(90.0 - lat)
    phi = np.mod(np.deg2rad(lon), 2 * np.pi)
    for ell in range(degree):
        for m in range(-ell, ell + 1):
            complex_y = sph_harm_y(ell, abs(m), theta, phi)  # carries (-1)^m
            if m > 0:
                expected = math.sqrt(2) * (-1) ** m * complex_y.real
            elif m < 0:
                expected = math.sqrt(2) * (-1) ** m * complex_y.imag
            else:
                expected = complex_y.real
            np.testing.assert_allclose(Y[:, _column(ell, m)], expected, atol=1e-12, err_msg=f"l={ell} m={m}")


def test_no_nan_at_the_poles_for_degree_40_and_closed_forms_hold():
    degree = 40
    lat = np.array([90.0, -90.0, 90 - 1e-9, -90 + 1e-9, 89.5, -89.5, 0.0, 33.3])
    lon = np.array([0.0, 45.0, -120.0, 179.99, 7.0, -7.0, 180.0, -180.0])
    Y = spherical_harmonics(lat, lon, degree).numpy()
    assert np.isfinite(Y).all()
    for ell in range(degree):
        block = Y[:, ell * ell : (ell + 1) ** 2]
        # addition theorem: sum_m Y_lm(x)^2 = (2l+1)/(4 pi) at every point
        np.testing.assert_allclose((block**2).sum(axis=1), (2 * ell + 1) / (4 * np.pi), rtol=1e-10)
        # at the poles only m = 0 survives, with P_l(+-1) = (+-1)^l
        norm = math.sqrt((2 * ell + 1) / (4 * math.pi))
        assert Y[0, _column(ell, 0)] == pytest.approx(norm, rel=1e-12)
        assert Y[1, _column(ell, 0)] == pytest.approx((-1) ** ell * norm, rel=1e-12)
        others = np.delete(block[:2], ell, axis=1)
        assert np.all(np.abs(others) < 1e-12)


def test_harmonics_are_continuous_across_the_pole_but_dfs_is_not():
    # two points 0.002 degrees apart, on opposite meridians near the north pole
    lat, lon = np.array([89.999, 89.999]), np.array([0.0, 180.0])
    sh = positional_encoding(lat, lon, encoder="sh", degree=10).numpy()
    assert np.linalg.norm(sh[0] - sh[1]) < 1e-2
    for encoder in ("wrap", "grid", "spherecplus"):
        dfs = positional_encoding(lat, lon, encoder=encoder, degree=10).numpy()
        assert np.linalg.norm(dfs[0] - dfs[1]) > 1.0, encoder


def test_dfs_encodings_values_and_widths():
    lat, lon = np.array([30.0, -60.0]), np.array([45.0, -100.0])
    phi, lam = np.deg2rad(lat), np.deg2rad(lon)
    wrap = positional_encoding(lat, lon, encoder="wrap").numpy()
    np.testing.assert_allclose(wrap, np.stack([np.cos(lam), np.sin(lam), np.cos(phi), np.sin(phi)], 1))
    widths = {"grid": 4, "theory": 6, "spherec": 3, "spherecplus": 6}
    for encoder, per in widths.items():
        out = positional_encoding(lat, lon, encoder=encoder, degree=10, frequency_num=5).numpy()
        assert out.shape == (2, per * 5)
    grid = positional_encoding(lat, lon, encoder="grid", degree=10, frequency_num=5).numpy()
    # frequencies 1 .. degree-1 = 9, geometric: first sin block starts at 1, ends at 9
    np.testing.assert_allclose(grid[:, 0], np.sin(lam))
    np.testing.assert_allclose(grid[:, 4], np.sin(9 * lam))
    spherec = positional_encoding(lat, lon, encoder="spherec", degree=10, frequency_num=5).numpy()
    # at frequency 1 sphereC is the unit vector (z, x, y)
    np.testing.assert_allclose(spherec[:, [0, 5, 10]], np.stack(
        [np.sin(phi), np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam)], 1))  # fmt: skip
    assert positional_encoding(lat, lon, encoder="cartesian3d").shape == (2, 3)
    assert positional_encoding(lat, lon, encoder="direct").shape == (2, 2)


@pytest.mark.parametrize(
    ("latitude", "longitude", "pattern"),
    [
        ([91.0, 0.0], [0.0, 0.0], r"1 of 2 latitude values .*row 0: \(91, 0\)"),
        ([0.0, 0.0, 0.0], [190.0, -181.0, 5.0], r"2 of 3 longitude values .*validate_lat_lon"),
        ([np.nan], [0.0], r"1 of 1 latitude values are missing"),
        ([0.0, 1.0], [0.0], r"same length"),
        ([], [], r"empty"),
    ],
)
def test_bad_coordinates_are_refused_with_counts(latitude, longitude, pattern):
    with pytest.raises(InvalidInputError, match=pattern):
        spherical_harmonics(latitude, longitude, 3)


def test_bad_encoder_parameters():
    with pytest.raises(InvalidParameterError, match="encoder must be one of"):
        positional_encoding([0.0], [0.0], encoder="sphere2vec")
    with pytest.raises(InvalidParameterError, match="degree must be an integer >= 1; got 0"):
        spherical_harmonics([0.0], [0.0], 0)


# ---------------------------------------------------------------- SIREN


def test_siren_initialisation_bounds_and_forward():
    gen = torch.Generator().manual_seed(0)
    net = SirenNet(100, 32, 3, 2, generator=gen)
    first, second = net.layers
    assert first.weight.abs().max() <= 1 / 100 and first.weight.abs().max() > 0.9 / 100
    bound = math.sqrt(6 / 32) / 1.0
    assert second.weight.abs().max() <= bound and second.weight.abs().max() > 0.9 * bound
    x = torch.randn(5, 100)
    h = torch.sin(30.0 * (x @ first.weight.T + first.bias))
    h = torch.sin(1.0 * (h @ second.weight.T + second.bias))
    torch.testing.assert_close(net.embed(x), h)
    torch.testing.assert_close(net(x), h @ net.last_layer.weight.T + net.last_layer.bias)


# ---------------------------------------------------------------- trainer


@pytest.fixture(scope="module")
def hemisphere_points():
    points = sample_sphere_uniform(600, random_state=5)
    return points["latitude"].to_numpy(), points["longitude"].to_numpy()


def test_trainer_classification_transform_and_progress(hemisphere_points):
    lat, lon = hemisphere_points
    labels = np.where(lat > 0, "north", "south")
    calls = []
    model = LocationEncoder(degree=4, hidden=16, max_epochs=40, random_state=1)
    model.fit(lat, lon, labels, progress=lambda f, msg: calls.append((f, msg)))
    assert list(model.classes_) == ["north", "south"]
    assert np.mean(model.predict(lat, lon) == labels) > 0.97
    probabilities = model.predict_proba(lat, lon)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    embedding = model.transform(lat, lon)
    assert embedding.shape == (lat.size, 16) and embedding.dtype == np.float32
    assert np.abs(embedding).max() <= 1.0  # a sine layer
    fractions = [f for f, _ in calls]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert all(a <= b for a, b in itertools.pairwise(fractions))
    assert 1 <= model.best_epoch_ <= model.n_iter_ <= 40
    assert len(model.loss_curve_) == len(model.validation_loss_curve_) == model.n_iter_


def test_trainer_is_deterministic_and_round_trips_through_safetensors(hemisphere_points, tmp_path):
    lat, lon = hemisphere_points
    labels = (lat > 20).astype(int)
    first = LocationEncoder("spherecplus", degree=5, hidden=8, max_epochs=5, random_state=3).fit(
        lat, lon, labels
    )
    second = LocationEncoder("spherecplus", degree=5, hidden=8, max_epochs=5, random_state=3).fit(
        lat, lon, labels
    )
    np.testing.assert_array_equal(first.transform(lat, lon), second.transform(lat, lon))
    path = tmp_path / "encoder.safetensors"
    first.save(path)
    loaded = LocationEncoder.load(path)
    np.testing.assert_array_equal(loaded.transform(lat, lon), first.transform(lat, lon))
    np.testing.assert_array_equal(loaded.predict(lat, lon), first.predict(lat, lon))
    assert loaded.get_params() == {**first.get_params(), "device": None}


def test_transform_in_chunks_matches_row_by_row(hemisphere_points):
    lat, lon = hemisphere_points
    model = LocationEncoder(degree=40, hidden=4, max_epochs=1, early_stopping=False).fit(lat, lon, lat > 0)
    many = sample_sphere_uniform(3000, random_state=9)  # 1,600 features: chunks of 2,621 rows
    full = model.transform(many["latitude"], many["longitude"])
    parts = [
        model.transform(many["latitude"][i : i + 1000], many["longitude"][i : i + 1000])
        for i in (0, 1000, 2000)
    ]
    np.testing.assert_allclose(full, np.concatenate(parts), rtol=1e-6, atol=1e-6)


def test_trainer_regression_recovers_a_smooth_field(hemisphere_points):
    lat, lon = hemisphere_points
    target = 10.0 + 5.0 * np.sin(np.deg2rad(lat)) * np.cos(np.deg2rad(lon))
    model = LocationEncoder(degree=5, hidden=32, max_epochs=150, early_stopping=False, random_state=0)
    model.fit(lat, lon, target, task="regression")
    predicted = model.predict(lat, lon)
    r2 = 1 - np.sum((predicted - target) ** 2) / np.sum((target - target.mean()) ** 2)
    assert r2 > 0.98


def test_cancelling_from_progress_stops_training(hemisphere_points):
    lat, lon = hemisphere_points
    seen = []

    def progress(fraction, message):
        seen.append(fraction)
        if fraction > 0:
            raise JobCancelled("cancelled by user")

    with pytest.raises(JobCancelled):
        LocationEncoder(degree=3, hidden=4, max_epochs=50).fit(lat, lon, lat > 0, progress=progress)
    assert len(seen) == 2  # encoding done, first epoch done


def test_trainer_refuses_bad_targets_and_parameters(hemisphere_points):
    lat, lon = hemisphere_points
    with pytest.raises(InvalidInputError, match="at least 2 classes"):
        LocationEncoder(max_epochs=1).fit(lat, lon, np.zeros(lat.size))
    with pytest.raises(InvalidInputError, match="1 of 600 regression targets"):
        target = np.ones(lat.size)
        target[7] = np.nan
        LocationEncoder(max_epochs=1).fit(lat, lon, target, task="regression")
    with pytest.raises(InvalidInputError, match=r"2 of 600 labels are missing \(rows \[0, 5\]\)"):
        labels = np.where(lat > 0, "north", "south").astype(object)
        labels[[0, 5]] = None
        LocationEncoder(max_epochs=1).fit(lat, lon, labels)
    with pytest.raises(InvalidInputError, match="n_samples = 600"):
        LocationEncoder(max_epochs=1).fit(lat, lon, np.zeros(3))
    with pytest.raises(InvalidParameterError, match="task must be one of"):
        LocationEncoder(max_epochs=1).fit(lat, lon, lat > 0, task="ranking")
    with pytest.raises(InvalidParameterError, match="learning_rate must be a number in"):
        LocationEncoder(learning_rate=0).fit(lat, lon, lat > 0)
    with pytest.raises(InvalidParameterError, match="not fitted"):
        LocationEncoder().transform(lat, lon)


# ---------------------------------------------------------------- SatCLIP


def _satclip_analytic_basis(lat, lon, degree):
    """SatCLIP's sympy-generated harmonics, rebuilt from its generator's formula."""
    import sympy as sp

    theta_s, phi_s = sp.symbols("theta phi")
    theta = np.deg2rad(lat + 90.0)  # SatCLIP: from the south pole
    phi = np.deg2rad(lon + 180.0)
    columns = []
    for ell in range(degree):
        for m in range(-ell, ell + 1):
            a = abs(m)
            p = sp.assoc_legendre(ell, a, sp.cos(theta_s))  # with Condon-Shortley phase
            if m == 0:
                y = sp.sqrt((2 * ell + 1) / 4 * sp.pi) * p  # the generator's unbracketed constant
            else:
                norm = sp.sqrt(
                    sp.Rational(2 * ell + 1) / (4 * sp.pi) * sp.factorial(ell - a) / sp.factorial(ell + a)
                )
                trig = sp.cos(a * phi_s) if m > 0 else sp.sin(a * phi_s)
                y = (-1) ** m * sp.sqrt(2) * norm * p * trig
            f = sp.lambdify((theta_s, phi_s), y, "numpy")
            columns.append(np.broadcast_to(f(theta, phi), theta.shape).astype(np.float64))
    return np.stack(columns, axis=1)


def _satclip_closed_form_basis(lat, lon, degree):
    """SatCLIP's "closed-form" harmonics: orthonormal, Condon-Shortley phase, SatCLIP angles."""
    x = np.cos(np.deg2rad(lat + 90.0))
    phi = np.deg2rad(lon + 180.0)
    columns = []
    for ell in range(degree):
        for m in range(-ell, ell + 1):
            a = abs(m)
            norm = math.sqrt(
                (2 * ell + 1) / (4 * math.pi) * math.factorial(ell - a) / math.factorial(ell + a)
            )
            p = norm * lpmv(a, ell, x)  # scipy's lpmv carries the phase
            if m == 0:
                columns.append(p)
            else:
                columns.append(math.sqrt(2) * p * (np.cos(a * phi) if m > 0 else np.sin(a * phi)))
    return np.stack(columns, axis=1)


def _satclip_checkpoint(path, *, degree=5, capacity=16, layers=2, embed_dim=8, seed=0, **hp_overrides):
    """A file with the structure of a SatCLIP Lightning checkpoint, random weights."""
    g = torch.Generator().manual_seed(seed)
    dims = [degree * degree] + [capacity] * layers
    nnet = {}
    for k in range(layers):
        nnet[f"layers.{k}.weight"] = (torch.rand(dims[k + 1], dims[k], generator=g) - 0.5) * 0.2
        nnet[f"layers.{k}.bias"] = (torch.rand(dims[k + 1], generator=g) - 0.5) * 0.2
    nnet["last_layer.weight"] = torch.randn(embed_dim, capacity, generator=g, dtype=torch.float64)
    nnet["last_layer.bias"] = torch.randn(embed_dim, generator=g, dtype=torch.float64)
    state = {"model.visual.conv1.weight": torch.randn(4, 13, 3, 3), "model.logit_scale": torch.tensor(2.6)}
    for key, value in nnet.items():  # SatCLIP holds the SIREN twice: model.nnet and model.location.nnet
        state[f"model.nnet.{key}"] = value
        state[f"model.location.nnet.{key}"] = value
    hp = {
        "embed_dim": embed_dim, "image_resolution": 256, "vision_layers": "moco_resnet18",
        "vision_width": 768, "vision_patch_size": 32, "in_channels": 13,
        "le_type": "sphericalharmonics", "pe_type": "siren", "frequency_num": 16,
        "max_radius": 360, "min_radius": 1, "legendre_polys": degree,
        "harmonics_calculation": "analytic", "sh_embedding_dims": 32, "learning_rate": 1e-4,
        "weight_decay": 0.01, "num_hidden_layers": layers, "capacity": capacity,
        "eval_downstream": True, "air_temp_data_path": "/data/air_temp.csv",
    }  # fmt: skip
    hp.update(hp_overrides)
    checkpoint = {
        "epoch": 499, "global_step": 100000, "pytorch-lightning_version": "2.0.0",
        "state_dict": state, "hyper_parameters": hp, "optimizer_states": [], "lr_schedulers": [],
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"completed": 499}}}},
    }  # fmt: skip
    torch.save(checkpoint, path)
    return nnet


def _siren_reference(features, nnet, layers):
    h = torch.as_tensor(features, dtype=torch.float64)
    for k in range(layers):
        w0 = 30.0 if k == 0 else 1.0
        h = torch.sin(w0 * (h @ nnet[f"layers.{k}.weight"].double().T + nnet[f"layers.{k}.bias"].double()))
    return (h @ nnet["last_layer.weight"].T + nnet["last_layer.bias"]).numpy()


@pytest.mark.parametrize(
    ("calculation", "basis"),
    [("analytic", _satclip_analytic_basis), ("closed-form", _satclip_closed_form_basis)],
)
def test_satclip_loader_reproduces_satclip_harmonics_and_siren(tmp_path, calculation, basis):
    path = tmp_path / "satclip-test.ckpt"
    nnet = _satclip_checkpoint(path, degree=5, harmonics_calculation=calculation)
    encoder = load_satclip_location_encoder(path)
    assert (encoder.degree, encoder.embed_dim, encoder.harmonics_calculation) == (5, 8, calculation)
    assert encoder.to_dict()["hidden"] == 16 and encoder.to_dict()["n_layers"] == 2
    rng = np.random.default_rng(0)
    lat = np.concatenate([rng.uniform(-90, 90, 50), [90.0, -90.0]])
    lon = np.concatenate([rng.uniform(-180, 180, 50), [0.0, 180.0]])
    expected = _siren_reference(basis(lat, lon, 5), nnet, 2)
    got = encoder.transform(latitude=lat, longitude=lon)
    assert got.shape == (52, 8) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # SatCLIP's basis is not ours: with the orthonormal basis the outputs differ
    ours = _siren_reference(spherical_harmonics(lat, lon, 5).numpy(), nnet, 2)
    assert np.abs(ours - expected).max() > 0.1


class _NotATensor:
    pass


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda p: p.write_bytes(b"not a checkpoint at all"), "not a PyTorch checkpoint"),
        (lambda p: torch.save(torch.zeros(3), p), "no 'hyper_parameters' and 'state_dict'"),
        (lambda p: torch.save({"state_dict": {}, "hyper_parameters": {"le_type": "grid"}}, p), "lack"),
        (lambda p: _satclip_checkpoint(p, le_type="grid"), "le_type='grid'"),
        (lambda p: _satclip_checkpoint(p, pe_type="mlp"), "pe_type='mlp'"),
        (lambda p: _satclip_checkpoint(p, harmonics_calculation="discretized"), "discretized"),
        (lambda p: _mismatched_capacity(p), "do not match a SIREN"),
        (lambda p: torch.save({"hyper_parameters": _NotATensor(), "state_dict": {}}, p), "weights-only"),
    ],
)
def test_satclip_loader_refuses_other_files(tmp_path, make, pattern):
    path = tmp_path / "file.ckpt"
    make(path)
    with pytest.raises(InvalidInputError, match=pattern) as info:
        load_satclip_location_encoder(path)
    assert "Supply one of the SatCLIP checkpoint files" in str(info.value)


def _mismatched_capacity(path):
    _satclip_checkpoint(path, capacity=16)
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["hyper_parameters"]["capacity"] = 32  # tensors are 16 wide
    torch.save(checkpoint, path)


def test_satclip_loader_never_unpickles_code(tmp_path):
    class _Boom:
        def __reduce__(self):
            return (pytest.fail, ("unpickling ran code",))

    path = tmp_path / "evil.ckpt"
    with open(path, "wb") as handle:
        pickle.dump({"hyper_parameters": _Boom()}, handle, protocol=2)
    with pytest.raises(InvalidInputError):
        load_satclip_location_encoder(path)
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_satclip_location_encoder(tmp_path / "missing.ckpt")


# ---------------------------------------------------------------- land / ocean


@pytest.fixture(scope="module")
def land_ocean():
    globe = pytest.importorskip("global_land_mask.globe", reason="global-land-mask is a test-only dependency")
    test = sample_sphere_uniform(20000, random_state=1)
    test_lat, test_lon = test["latitude"].to_numpy(), test["longitude"].to_numpy()
    return globe, test_lat, test_lon, globe.is_land(test_lat, test_lon)


@pytest.mark.parametrize(
    "seed", [0, pytest.param(1, marks=pytest.mark.slow), pytest.param(2, marks=pytest.mark.slow)]
)
def test_land_ocean_sh_siren_beats_every_dfs_baseline(land_ocean, seed):
    """Rußwurm et al. 2024, land-ocean task: SH+SIREN vs DFS+SIREN, same network and training."""
    globe, test_lat, test_lon, test_land = land_ocean
    train = sample_sphere_uniform(10000, random_state=100 + seed)
    lat, lon = train["latitude"].to_numpy(), train["longitude"].to_numpy()
    land = globe.is_land(lat, lon)
    polar = np.abs(test_lat) > 60
    scores = {}
    for encoder in ("sh", *DFS_ENCODERS):
        model = LocationEncoder(encoder, degree=10, hidden=64, max_epochs=200, random_state=seed)
        predicted = model.fit(lat, lon, land).predict(test_lat, test_lon)
        scores[encoder] = (np.mean(predicted == test_land), np.mean(predicted[polar] == test_land[polar]))
    best_overall = max(scores[e][0] for e in DFS_ENCODERS)
    best_polar = max(scores[e][1] for e in DFS_ENCODERS)
    assert scores["sh"][0] > best_overall, scores
    assert scores["sh"][1] > best_polar, scores
    assert scores["sh"][0] > 0.955, scores  # measured 0.962-0.965 over 6 seeds
