"""Every CUDA path, end to end, with its agreement to the CPU result (issue 14, item 6).

Paths: kNN graph (exact torch blocks), PCA, UMAP (our torch layout; cuML too when
importable), heat geodesic, weight spectra (all-MiniLM-L6-v2), text embedding
(all-MiniLM-L6-v2). For each: the time on ``--device`` and the agreement with the CPU
result on the same input (the CPU reference runs on a sample where the full size would
take too long on the CPU; the table says so).

Run on a GPU machine (target: under 8 minutes on an H200):

    python bench/gpu.py                       # 100k-1M rows on CUDA
    python bench/gpu.py --device cpu --small  # the same code paths on the CPU, small sizes

Without CUDA, ``--device cuda`` stops with a clear message.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

ROWS: list[tuple[str, str, str, str]] = []


def row(path: str, size: str, seconds: float, agreement: str) -> None:
    ROWS.append((path, size, f"{seconds:.2f}", agreement))
    print(f"| {path} | {size} | {seconds:.2f} | {agreement} |", flush=True)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--small", action="store_true", help="small sizes (CPU smoke run)")
    a = ap.parse_args()

    from backend.device import resolve_device
    from bench.projection_scale import clustered

    dev = resolve_device(a.device).device  # raises a clear error without CUDA
    big = 2_000 if a.small else 1_000_000
    mid = 2_000 if a.small else 100_000
    ref_n = 2_000 if a.small else 20_000  # CPU references on samples this size
    print(f"# bench/gpu.py device={dev} small={a.small} load {os.getloadavg()}")
    print("| path | size | seconds | agreement with the CPU |")
    print("|---|---|---|---|")

    # -- kNN graph: exact torch blocks on the device vs exact on the CPU (a sample) -------
    from backend.project.knn import knn_query, knn_search

    for d in (16, 384):
        X = clustered(big if d == 16 else mid, d)
        (idx, dist, rep), sec = timed(lambda: knn_search(X, 15, method="exact", device=dev,
                                                          recall_sample=0))
        rows = np.random.default_rng(0).choice(len(X), size=min(1000, len(X)), replace=False)
        ci, cd, _ = knn_query(X, X[rows], 16, device="cpu")
        ref = cd[:, 1:]  # the row itself first (distance 0)
        err = float(np.abs(dist[rows] - ref).max())
        row("kNN exact", f"{len(X):,} x {d}", sec,
            f"max |distance - CPU| on 1,000 rows = {err:.2e}")

    # -- PCA -------------------------------------------------------------------------------
    from backend.project.pca import PCA

    X = clustered(big, 64)
    (Yd, sec) = timed(lambda: PCA(2, device=dev).fit_transform(X))
    Yc = PCA(2, device="cpu").fit_transform(X[:ref_n])
    Yd_s = PCA(2, device=dev).fit_transform(X[:ref_n])
    row("PCA", f"{len(X):,} x 64", sec,
        f"max |coord - CPU| on {ref_n:,} rows = {np.abs(Yd_s - Yc).max():.2e}")

    # -- UMAP --------------------------------------------------------------------------------
    from sklearn.manifold import trustworthiness

    from backend.project.large import project_umap
    from backend.project.umap_ import umap_fit

    for d in (16, 384):
        n = big if d == 16 else mid
        X = clustered(n, d, seed=1)

        def run():
            out = project_umap(X, device=dev)
            sync(dev)
            return out

        (Y, rep), sec = timed(run)
        s = np.random.default_rng(0).choice(n, size=min(5000, n), replace=False)
        t_dev = trustworthiness(X[s], Y[s], n_neighbors=10)
        Xr = X[np.sort(s[:ref_n])]
        kn = knn_search(Xr, 15, device="cpu", recall_sample=0)[:2]
        t_cpu = trustworthiness(Xr, umap_fit(Xr, kn, device="cpu")[0], n_neighbors=10)
        t_d2 = trustworthiness(Xr, umap_fit(Xr, kn, device=dev)[0], n_neighbors=10)
        row(f"UMAP full ({rep['mode']})", f"{n:,} x {d}", sec,
            f"trust@10 {t_dev:.4f} (5,000 rows); same {len(Xr):,} rows: device {t_d2:.4f} "
            f"vs CPU {t_cpu:.4f}")
    try:
        import cuml  # noqa: F401

        X = clustered(big, 16, seed=1)
        (Y, _), sec = timed(lambda: umap_fit(X, (np.zeros((big, 1), int), np.zeros((big, 1))),
                                             engine="cuml", device=dev))
        row("UMAP cuML", f"{big:,} x 16", sec, "see trust above")
    except ImportError:
        print("| UMAP cuML | - | - | cuML not importable (optional; README GPU section) |")

    # -- heat geodesic -----------------------------------------------------------------------
    from backend.datasets.manifolds import swiss_roll
    from backend.project.heat_geodesic import HeatGeodesic

    Xs, _ = swiss_roll(mid, 0.1)
    (hg, sec) = timed(lambda: HeatGeodesic(random_state=0, device=dev).fit(Xs))
    Xr, _ = swiss_roll(ref_n, 0.1)
    a_ = HeatGeodesic(random_state=0, device=dev).fit(Xr).distances_
    b_ = HeatGeodesic(random_state=0, device="cpu").fit(Xr).distances_
    agree = (np.corrcoef(np.ravel(a_), np.ravel(b_))[0, 1]
             if a_ is not None and b_ is not None else float("nan"))
    row("heat geodesic", f"{mid:,} swiss roll", sec,
        f"corr of geodesic distances, device vs CPU ({ref_n:,} pts) = {agree:.6f}")

    # -- weights ------------------------------------------------------------------------------
    from backend.diagnostics.weights import analyze_weights
    from backend.models import bundled_minilm

    (wd, sec) = timed(lambda: analyze_weights(bundled_minilm(), mp_fit=False, device=dev))
    wc = analyze_weights(bundled_minilm(), mp_fit=False, device="cpu")
    diff = np.nanmax(np.abs(wd.layers["alpha"].to_numpy() - wc.layers["alpha"].to_numpy()))
    row("weights (FARMS)", "all-MiniLM-L6-v2", sec, f"max |alpha - CPU| = {diff:.2e}")

    # -- text embedding -------------------------------------------------------------------------
    from backend.embed.text import TextEmbedder

    words = "the quick brown fox jumps over a lazy dog while maps of embeddings load".split()
    rng = np.random.default_rng(0)
    n_txt = 2_000 if a.small else 100_000
    texts = [" ".join(rng.choice(words, size=12)) for _ in range(n_txt)]
    (Ed, sec) = timed(lambda: TextEmbedder(256 if dev != "cpu" else 32, device=dev).encode(texts))
    Ec = TextEmbedder(32, device="cpu").encode(texts[:500])
    cos = float((Ed[:500] * Ec).sum(1).min())
    row("text embedding", f"{n_txt:,} texts", sec, f"min cosine to CPU (500 texts) = {cos:.6f}")
    print(f"done; load {os.getloadavg()}")


if __name__ == "__main__":
    main()
