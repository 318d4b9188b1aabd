"""Synthetic manifolds with known geodesic distances, for checking projections.

The two data sets of Huguet et al. (NeurIPS 2023) as the reference document
(``shared/data/reference/heat_geodesic.md``) defines them: a Swiss roll with its unrolled
chart, and PHATE's diffusion-limited-aggregation (DLA) tree with shortest-path distances
on its noiseless backbone.
"""

from __future__ import annotations

import numpy as np

from backend.errors import InvalidParameterError

__all__ = ["swiss_roll", "dla_tree", "dla_tree_backbone"]


def swiss_roll(
    n_samples: int, noise: float = 0.1, *, width: float = 5.0, random_state: int = 42
) -> tuple[np.ndarray, np.ndarray]:
    """Swiss roll ``x = (t cos t, h, t sin t) + N(0, noise^2 I)`` and its unrolled chart.

    Parameters
    ----------
    n_samples : int
        Number of points, >= 1.
    noise : float, default=0.1
        Standard deviation of the isotropic Gaussian noise, >= 0.
    width : float, default=5.0
        Height range: ``h ~ U[0, width]``.
    random_state : int, default=42
        Seed of ``numpy.random.RandomState``; draws ``t``, then ``h``, then the noise.

    Returns
    -------
    X : ndarray of shape (n_samples, 3), float64
    chart : ndarray of shape (n_samples, 2), float64
        ``(s(t), h)`` with ``s(t) = (t sqrt(1 + t^2) + asinh t) / 2`` the arc length of the
        spiral ``r = t``; Euclidean distances in the chart are the ground-truth geodesics.

    Raises
    ------
    InvalidParameterError
        ``n_samples < 1`` or a negative ``noise``.
    """
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise InvalidParameterError(f"n_samples must be an integer >= 1; got {n_samples!r}.")
    if not noise >= 0:
        raise InvalidParameterError(f"noise must be >= 0; got {noise!r}.")
    rng = np.random.RandomState(random_state)
    t = 1.5 * np.pi * (1.0 + 2.0 * rng.rand(n_samples))
    h = width * rng.rand(n_samples)
    X = np.column_stack([t * np.cos(t), h, t * np.sin(t)]) + noise * rng.randn(n_samples, 3)
    s = 0.5 * (t * np.sqrt(1.0 + t * t) + np.arcsinh(t))
    return X, np.column_stack([s, h])


def dla_tree_backbone(
    n_dim: int = 10,
    n_branch: int = 5,
    branch_length: int = 500,
    *,
    rand_multiplier: float = 2.0,
    random_state: int = 42,
) -> np.ndarray:
    """Noiseless DLA tree: ``n_branch`` random walks, each grafted on a random earlier point.

    Draws from ``numpy.random.RandomState(random_state)`` in the order of
    ``phate.tree.gen_dla(n_dim, n_branch, branch_length, rand_multiplier, seed, sigma=0)``
    (PHATE 1.0.10), so the points are identical to it.

    Parameters
    ----------
    n_dim, n_branch, branch_length : int
        Dimension, number of branches, points per branch.
    rand_multiplier : float, default=2.0
        Steps are ``U[-1, rand_multiplier - 1]`` per coordinate.
    random_state : int, default=42

    Returns
    -------
    ndarray of shape (n_branch * branch_length, n_dim), float64

    References
    ----------
    K. R. Moon et al., Nat. Biotechnol. 37 (2019); KrishnaswamyLab/PHATE
    ``Python/phate/tree.py`` (``gen_dla``).
    """
    rng = np.random.RandomState(random_state)
    M = np.cumsum(-1.0 + rand_multiplier * rng.rand(branch_length, n_dim), axis=0)
    for _ in range(n_branch - 1):
        root = rng.randint(branch_length)
        branch = np.cumsum(-1.0 + rand_multiplier * rng.rand(branch_length, n_dim), axis=0)
        M = np.concatenate([M, branch + M[root, :]])
    # gen_dla draws its noise even with sigma=0; the draw is kept out of the result
    return M


def dla_tree(
    noise_std: float = 5.0, *, n_neighbors_truth: int = 10, random_state: int = 42
) -> tuple[np.ndarray, np.ndarray]:
    """The reference's DLA tree (10-D, 5 branches of 500): noisy points and true geodesics.

    Parameters
    ----------
    noise_std : float, default=5.0
        Gaussian noise added to the backbone, drawn from ``RandomState(random_state + 1)``.
    n_neighbors_truth : int, default=10
        The truth is the shortest-path distance on the symmetric kNN graph (edge weight =
        Euclidean length) of the noiseless backbone.
    random_state : int, default=42

    Returns
    -------
    X : ndarray of shape (2500, 10), float64
    distances : ndarray of shape (2500, 2500), float64
        Ground-truth geodesic distances.
    """
    from scipy.sparse.csgraph import shortest_path
    from sklearn.neighbors import kneighbors_graph

    clean = dla_tree_backbone(random_state=random_state)
    X = clean + noise_std * np.random.RandomState(random_state + 1).randn(*clean.shape)
    g = kneighbors_graph(clean, n_neighbors_truth, mode="distance")
    return X, shortest_path(g.maximum(g.T), method="D", directed=False)
