"""Compile fast-hdbscan's and pynndescent's numba kernels once, at install time.

fast-hdbscan caches its compiled kernels on disk (numba ``cache=True``, in the package's
``__pycache__``), but a fresh environment has none: the first clustering then spends about a
minute compiling on a 2-core machine. ``make`` runs this module right after installing the
requirements, so the app's first clustering and the test suite start from compiled kernels.
pynndescent (which umap-learn imports) compiles its ``cache=True`` kernels at import time:
about 20 s on 2 cores the first time, 3 s once cached, so it is imported here too (umap-learn's
own kernels are not cached and compile per process whatever is done here). It reads and
writes nothing of the workspace and downloads nothing.

Run: ``python -m backend.warmup`` (about a minute and a half on 2 cores; seconds once cached).
"""

from __future__ import annotations

import time

import numpy as np


def main() -> None:
    """Cluster small seeded data once per input kind the app passes (2-D map coordinates,
    float32 vectors, float64 vectors)."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 8)).astype(np.float32)

    from backend.clusters.clustering import cluster_levels

    for data in (X[:, :2], X, X.astype(np.float64)):  # map coordinates and vectors
        cluster_levels(data, method="hdbscan")
    print(f"fast-hdbscan's numba kernels compiled and cached in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    import umap  # noqa: F401  (compiles and caches pynndescent's kernels)

    print(f"pynndescent's numba kernels compiled and cached in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
