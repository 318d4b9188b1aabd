"""Location encoders: encoding throughput, SatCLIP convention check, land-ocean accuracy.

Run from the repository root:

    .venv/bin/python bench/location.py [--threads 1] [--seeds 3] [--satclip-src DIR]

1. Throughput (points/s, CPU) of the spherical-harmonic basis at L = 10 and 40:
   ours (stable normalised-Legendre recurrence, torch, float64) against
   scipy.special.sph_harm_y building the same real basis, and against SatCLIP's
   "closed-form" implementation when its source is available.
2. SatCLIP convention: our SatCLIP-convention features against SatCLIP's own
   closed-form code (L = 40) and against the analytic functions its sympy
   generator defines (L = 10), max |difference|.
3. Land-ocean task (Rußwurm et al. 2024): points uniform on the sphere labelled
   by global-land-mask, a SIREN (64 hidden, 2 layers, w0 = 30) on each
   positional encoding, same training (Adam 1e-3, batch 1024, early stopping);
   test accuracy overall and above |latitude| 60 degrees, mean ± sd over seeds,
   and training time.

``--satclip-src`` is a folder holding ``satclip/positional_encoding/`` from
microsoft/satclip (outside this repository); without it those rows read n/a.
global-land-mask (test/bench only) costs about 1 GB of memory at import.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.datasets.geo import sample_sphere_uniform  # noqa: E402
from backend.embed.location import (  # noqa: E402
    DFS_ENCODERS,
    LocationEncoder,
    _satclip_sh_scale,
    _sh_kernel,
)

ENCODERS = ("sh", "wrap", "grid", "theory", "spherec", "spherecplus", "cartesian3d", "direct")


def _best_rate(n: int, repeat: int, fn, *args) -> float:
    """Points per second of ``fn(*args)`` over ``n`` points, best of ``repeat`` runs."""
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t0)
    return n / best


def _scipy_real_basis(lat: np.ndarray, lon: np.ndarray, degree: int) -> np.ndarray:
    from scipy.special import sph_harm_y

    theta, phi = np.deg2rad(90.0 - lat), np.mod(np.deg2rad(lon), 2 * np.pi)
    out = np.empty((lat.size, degree * degree))
    for ell in range(degree):
        for m in range(ell + 1):
            y = sph_harm_y(ell, m, theta, phi)
            if m == 0:
                out[:, ell * ell + ell] = y.real
            else:
                sign = math.sqrt(2) * (-1) ** m
                out[:, ell * ell + ell + m] = sign * y.real
                out[:, ell * ell + ell - m] = sign * y.imag
    return out


def _load_satclip_closed_form(src: Path | None):
    if src is None:
        return None
    path = src / "satclip" / "positional_encoding" / "spherical_harmonics_closed_form.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("satclip_closed_form", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SH


def _satclip_basis(sh, lat: np.ndarray, lon: np.ndarray, degree: int) -> torch.Tensor:
    """SatCLIP's SphericalHarmonics.forward loop around its SH(m, l, phi, theta)."""
    phi = torch.deg2rad(torch.as_tensor(lon, dtype=torch.float64) + 180)
    theta = torch.deg2rad(torch.as_tensor(lat, dtype=torch.float64) + 90)
    columns = []
    for ell in range(degree):
        for m in range(-ell, ell + 1):
            y = sh(m, ell, phi, theta)
            columns.append(y * torch.ones_like(phi) if isinstance(y, float) else y)
    return torch.stack(columns, dim=-1)


def _satclip_generator_analytic(src: Path | None, lat, lon, degree: int) -> np.ndarray | None:
    """Evaluate ``calc_ylm`` of SatCLIP's sympy generator (the function only, not its script part)."""
    if src is None:
        return None
    path = src / "satclip" / "positional_encoding" / "spherical_harmonics_generate_ylms.py"
    if not path.is_file():
        return None
    import sympy

    tree = ast.parse(path.read_text())
    keep = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    keep += [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "calc_ylm"]
    keep += [node for node in tree.body if isinstance(node, ast.Assign)
             and any(getattr(t, "id", "") in ("theta", "phi") for t in node.targets)]  # fmt: skip
    namespace: dict = {}
    # the reference's own function definition, run here to evaluate its convention
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(path), "exec"), namespace)  # noqa: S102
    theta_s, phi_s = namespace["theta"], namespace["phi"]
    theta, phi = np.deg2rad(lat + 90.0), np.deg2rad(lon + 180.0)
    columns = []
    for ell in range(degree):
        for m in range(-ell, ell + 1):
            f = sympy.lambdify((theta_s, phi_s), namespace["calc_ylm"](ell, m).evalf(), "numpy")
            columns.append(np.broadcast_to(f(theta, phi), theta.shape).astype(np.float64))
    return np.stack(columns, axis=1)


def throughput(satclip_src: Path | None) -> None:
    sh_closed = _load_satclip_closed_form(satclip_src)
    print("\n## 1. Spherical-harmonic encoding throughput (CPU, float64, points/s)")
    print(f"torch threads: {torch.get_num_threads()}")
    print("| L | features | ours | scipy sph_harm_y | ours / scipy | SatCLIP closed-form | ours / SatCLIP |")
    print("|---|---|---|---|---|---|---|")
    points = sample_sphere_uniform(100_000, random_state=0)
    lat_all, lon_all = points["latitude"].to_numpy(copy=True), points["longitude"].to_numpy(copy=True)
    for degree, n, n_ref in ((10, 100_000, 20_000), (40, 20_000, 2_000)):
        lat, lon = lat_all[:n], lon_all[:n]
        lat_t, lon_t = torch.deg2rad(torch.as_tensor(lat)), torch.deg2rad(torch.as_tensor(lon))
        ours = _best_rate(n, 3, _sh_kernel, lat_t, lon_t, degree)
        scipy_rate = _best_rate(n_ref, 1, _scipy_real_basis, lat[:n_ref], lon[:n_ref], degree)
        if sh_closed is not None:
            satclip = _best_rate(n_ref, 1, _satclip_basis, sh_closed, lat[:n_ref], lon[:n_ref], degree)
            satclip_cells = f"{satclip:,.0f} | {ours / satclip:.1f}x"
        else:
            satclip_cells = "n/a | n/a"
        print(
            f"| {degree} | {degree * degree} | {ours:,.0f} | {scipy_rate:,.0f} | {ours / scipy_rate:.1f}x | {satclip_cells} |"
        )


def convention(satclip_src: Path | None) -> None:
    print("\n## 2. SatCLIP harmonic convention: our features x per-column factor vs SatCLIP's code")
    print("| SatCLIP calculation | L | points | max abs difference | max abs value |")
    print("|---|---|---|---|---|")
    points = sample_sphere_uniform(500, random_state=7)
    lat = np.concatenate([points["latitude"].to_numpy(), [90.0, -90.0, 89.9999]])
    lon = np.concatenate([points["longitude"].to_numpy(), [0.0, 120.0, -45.0]])
    lat_t, lon_t = torch.deg2rad(torch.as_tensor(lat)), torch.deg2rad(torch.as_tensor(lon))
    sh_closed = _load_satclip_closed_form(satclip_src)
    if sh_closed is not None:
        degree = 40
        ours = (_sh_kernel(lat_t, lon_t, degree) * _satclip_sh_scale(degree, "closed-form")).numpy()
        theirs = _satclip_basis(sh_closed, lat, lon, degree).numpy()
        print(
            f"| closed-form | {degree} | {lat.size} | {np.abs(ours - theirs).max():.2e} | {np.abs(theirs).max():.2f} |"
        )
    else:
        print("| closed-form | 40 | - | n/a (no --satclip-src) | |")
    degree = 10
    theirs = _satclip_generator_analytic(satclip_src, lat, lon, degree)
    if theirs is not None:
        ours = (_sh_kernel(lat_t, lon_t, degree) * _satclip_sh_scale(degree, "analytic")).numpy()
        print(
            f"| analytic (sympy generator) | {degree} | {lat.size} | {np.abs(ours - theirs).max():.2e} | {np.abs(theirs).max():.2f} |"
        )
    else:
        print("| analytic | 10 | - | n/a (no --satclip-src) | |")


def land_ocean(seeds: int, n_train: int, n_test: int) -> None:
    from global_land_mask import globe

    test = sample_sphere_uniform(n_test, random_state=1)
    test_lat, test_lon = test["latitude"].to_numpy(), test["longitude"].to_numpy()
    test_land = globe.is_land(test_lat, test_lon)
    polar = np.abs(test_lat) > 60
    print(f"\n## 3. Land-ocean: {n_train} training points, {n_test} test points ({polar.sum()} above |lat| 60), "
          f"{seeds} seeds, land share {test_land.mean():.3f}")  # fmt: skip
    print(
        "| encoder | features | accuracy | accuracy |lat|>60 | fit time (s) | epochs (best/run) | Δ acc vs SH | Δ polar vs SH |"
    )
    print("|---|---|---|---|---|---|---|---|")
    rows = {}
    for encoder in ENCODERS:
        acc, pol, times, epochs = [], [], [], []
        for seed in range(seeds):
            train = sample_sphere_uniform(n_train, random_state=100 + seed)
            lat, lon = train["latitude"].to_numpy(), train["longitude"].to_numpy()
            model = LocationEncoder(encoder, degree=10, hidden=64, max_epochs=200, random_state=seed)
            model.fit(lat, lon, globe.is_land(lat, lon))
            predicted = model.predict(test_lat, test_lon)
            acc.append(np.mean(predicted == test_land))
            pol.append(np.mean(predicted[polar] == test_land[polar]))
            times.append(model.fit_time_s_)
            epochs.append(f"{model.best_epoch_}/{model.n_iter_}")
        rows[encoder] = (np.mean(acc), np.mean(pol))
        d_acc = rows[encoder][0] - rows["sh"][0]
        d_pol = rows[encoder][1] - rows["sh"][1]
        print(f"| {encoder} | {model.n_features_in_} | {np.mean(acc):.4f} ± {np.std(acc):.4f} | "
              f"{np.mean(pol):.4f} ± {np.std(pol):.4f} | {np.mean(times):.1f} | {', '.join(epochs)} | "
              f"{d_acc:+.4f} | {d_pol:+.4f} |")  # fmt: skip
    best_acc = max(DFS_ENCODERS, key=lambda e: rows[e][0])
    best_pol = max(DFS_ENCODERS, key=lambda e: rows[e][1])
    print(f"\nSH+SIREN vs best DFS: accuracy {rows['sh'][0]:.4f} vs {rows[best_acc][0]:.4f} ({best_acc}); "
          f"above |lat| 60: {rows['sh'][1]:.4f} vs {rows[best_pol][1]:.4f} ({best_pol}).")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-test", type=int, default=20_000)
    parser.add_argument("--satclip-src", type=Path, default=None,
                        help="folder with satclip/positional_encoding/ from microsoft/satclip")  # fmt: skip
    parser.add_argument("--skip-land-ocean", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    throughput(args.satclip_src)
    convention(args.satclip_src)
    if not args.skip_land_ocean:
        land_ocean(args.seeds, args.n_train, args.n_test)


if __name__ == "__main__":
    main()
