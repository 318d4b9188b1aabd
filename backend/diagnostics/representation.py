"""Representation health of an embedding matrix: rank, diffusion entropy, geometry.

* RankMe effective rank (Garrido et al. 2023), raw and centred;
* diffusion spectral entropy (DSE) and diffusion spectral mutual information (DSMI)
  against a label column (Liao, Liu et al. 2023), written from the paper's
  definitions;
* alignment and uniformity on the unit sphere (Wang & Isola 2020) when pairs of
  rows are given;
* the spike count of the covariance spectrum above the Marchenko-Pastur bulk (the
  random-matrix view of EigenShield), with the spectrum itself for plotting.

:func:`representation_diagnostics` runs them all and returns a
:class:`RepresentationReport`; each metric is also a function of its own. Everything is
computed in float64; on the CPU with one torch and one BLAS thread (restored afterwards),
which on a shared machine avoids thread oversubscription.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from backend.threads import cpu_threads
from backend.errors import InvalidInputError, InvalidParameterError

__all__ = [
    "RepresentationReport",
    "representation_diagnostics",
    "rankme",
    "diffusion_spectral_entropy",
    "diffusion_spectral_mutual_information",
    "alignment",
    "uniformity",
    "uniformity_sphere",
    "covariance_spikes",
]

_RANKME_EPS = 1e-7


@dataclass(frozen=True)
class RepresentationReport:
    """Result of :func:`representation_diagnostics`.

    Attributes
    ----------
    n_rows, n_features : int
        Shape of the embedding given.
    rankme, rankme_centered : float
        RankMe of the raw and the column-centred matrix (all rows), in [1, min(N, D)].
    dse : float
        Diffusion spectral entropy in bits, on ``dse_n`` subsampled rows.
    dse_sigma, dse_t : float
        Kernel width used (resolved from the data when not given) and diffusion time.
    dse_n : int
        Rows used for DSE and DSMI (DSE grows with N: compare only at equal N).
    dsmi : float or None
        DSMI in bits against ``labels``; ``None`` without labels.
    n_classes : int or None
        Label classes (after binning numeric labels).
    alignment, uniformity : float or None
        Wang & Isola metrics (alpha=2, t=2) on L2-normalised rows; alignment over the
        given pairs, uniformity over ``uniformity_n`` subsampled rows. ``None``
        without pairs.
    n_pairs, uniformity_n : int
    mp_num_spikes : int or None
        Covariance eigenvalues beyond the fitted MP bulk edge (plus Tracy-Widom margin);
        None when skipped (fewer rows than dimensions, see ``skipped``).
    mp_bulk_max : float or None
        The bulk edge, in covariance units; None when skipped.
    covariance_eigenvalues : numpy.ndarray of shape (min(n_rows, n_features),), float64
        Eigenvalues of the sample covariance, descending: all ``n_features`` of them, or,
        with fewer rows than dimensions, the ``n_rows`` that can be non-zero (from the
        ``n_rows x n_rows`` Gram matrix; the other ``n_features - n_rows`` are exactly 0).
    params : dict
        Effective parameters (normalize, max_n, random_state, sigma rule, t, ...).
    skipped : dict of str to str
        Measures not computed, each with the reason (empty when all were).
    note : str or None
        What to tell the user about the measures: which were skipped and why, and that
        RankMe is capped at ``n_rows`` when there are fewer rows than dimensions.
    """

    n_rows: int
    n_features: int
    rankme: float
    rankme_centered: float
    dse: float
    dse_sigma: float
    dse_t: float
    dse_n: int
    dsmi: float | None
    n_classes: int | None
    alignment: float | None
    uniformity: float | None
    n_pairs: int
    uniformity_n: int
    mp_num_spikes: int | None
    mp_bulk_max: float | None
    covariance_eigenvalues: np.ndarray
    params: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)
    note: str | None = None

    def to_dict(self) -> dict:
        """JSON-able dict (the eigenvalues as a list)."""
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["covariance_eigenvalues"] = self.covariance_eigenvalues.tolist()
        out["params"] = dict(self.params)
        out["skipped"] = dict(self.skipped)
        return out


# --------------------------------------------------------------------------- metrics


def rankme(
    embeddings, *, center: bool = False, eps: float = _RANKME_EPS, device: str | None = None
) -> float:
    """RankMe effective rank: exp of the entropy of the L1-normalised singular values.

    .. math::

        \\mathrm{RankMe}(Z) = \\exp\\Big(-\\sum_k p_k \\ln p_k\\Big), \\qquad
        p_k = \\frac{\\sigma_k(Z)}{\\sum_j \\sigma_j(Z)} + \\varepsilon

    over the ``min(N, D)`` singular values, in float64. Scale invariant; bounded by
    ``min(N, D)`` (plus about ``ε d ln(1/ε)`` for flat spectra: 100.004 for 100
    orthonormal columns with the default ε). Small ``N`` biases it down; compare
    values only at equal ``N``.

    Parameters
    ----------
    embeddings : array-like of shape (n_samples, n_features)
    center : bool, default=False
        Subtract the column means first (the paper does not).
    eps : float, default=1e-7
        Added to each ``p_k`` (the paper's value for float32).
    device : str or None, default=None

    Returns
    -------
    float

    Raises
    ------
    InvalidInputError
        If the matrix is not 2-D, has NaN/inf, or is all zero (RankMe is 0/0 there).

    References
    ----------
    Garrido, Balestriero, Najman & LeCun, "RankMe: Assessing the downstream
    performance of pretrained self-supervised representations by their rank",
    ICML 2023, eq. 1.
    """
    import torch

    from backend.device import resolve_device

    if not isinstance(eps, (int, float)) or eps < 0:
        raise InvalidParameterError(f"eps must be a number >= 0; got {eps!r}.")
    matrix = _as_matrix(embeddings, "embeddings", min_rows=1)
    dev = resolve_device(device).device
    with cpu_threads(dev):
        tensor = torch.as_tensor(matrix, device=dev)
        if center:
            tensor = _centre(tensor.to(torch.float64))
        return _rankme(tensor, eps)


def diffusion_spectral_entropy(
    embeddings,
    *,
    sigma: float | None = None,
    t: float = 1.0,
    device: str | None = None,
) -> float:
    """Diffusion spectral entropy (bits) of a point cloud.

    With the Gaussian kernel ``G_ij = exp(-‖x_i - x_j‖² / (2σ²))``, degrees
    ``d_i = Σ_j G_ij`` and the symmetric diffusion matrix ``K = D^-1/2 G D^-1/2``
    (same eigenvalues as the random walk ``D^-1 G``):

    .. math::

        p_i = \\frac{|\\lambda_i(K)|^t}{\\sum_j |\\lambda_j(K)|^t}, \\qquad
        \\mathrm{DSE} = -\\sum_i p_i \\log_2 p_i

    Range ``[0, log2 N]``: ``σ → 0`` gives ``K = I`` and ``log2 N``; ``σ → ∞`` gives
    one dominant eigenvalue and 0; ``t → ∞`` on ``k`` separated clusters gives
    ``log2 k``. Computed in float64 with a dense eigendecomposition (O(N³): subsample
    large N, and compare values only at equal N and σ).

    Parameters
    ----------
    embeddings : array-like of shape (n_samples, n_features)
    sigma : float or None, default=None
        Kernel width. ``None`` uses the median pairwise distance of the rows, which
        makes the value invariant to the scale of the data (a fixed σ, such as the
        reference's 10, is nearly a constant kernel for unit-norm embeddings).
    t : float, default=1.0
        Diffusion time (> 0).
    device : str or None, default=None

    Returns
    -------
    float

    Raises
    ------
    InvalidInputError
        If the matrix is not 2-D, has NaN/inf or fewer than 2 rows, or all rows are
        identical with ``sigma=None``.
    InvalidParameterError
        If ``sigma <= 0`` or ``t <= 0``.

    References
    ----------
    Liao, Liu, Xu, Lin, Krishnaswamy et al., "Assessing neural network representations
    during training using noise-resilient diffusion spectral entropy", ICML 2023
    TAGML workshop / arXiv:2312.04823, §2 (eqs. 1-3).
    """
    import torch

    from backend.device import resolve_device

    _check_sigma_t(sigma, t)
    matrix = _as_matrix(embeddings, "embeddings", min_rows=2)
    dev = resolve_device(device).device
    with cpu_threads(dev):
        sq = _squared_distances(torch.as_tensor(matrix, device=dev))
        resolved = _median_sigma(sq) if sigma is None else float(sigma)
        return _dse_from_sqdist(sq, resolved, float(t))


def diffusion_spectral_mutual_information(
    embeddings,
    labels,
    *,
    sigma: float | None = None,
    t: float = 1.0,
    n_repetitions: int = 5,
    n_bins: int = 10,
    random_state: int = 0,
    device: str | None = None,
) -> float:
    """Diffusion spectral mutual information (bits) between an embedding and labels.

    .. math::

        \\mathrm{DSMI}(A; B) = \\sum_c p(c)\\,
            \\big[\\mathrm{DSE}(A^*_c) - \\mathrm{DSE}(A \\mid B = c)\\big]

    where ``A | B=c`` are the rows of class ``c`` and ``A*_c`` a random subset of all
    rows of the same size, its DSE averaged over ``n_repetitions`` draws. One ``σ``
    (resolved on all rows) is used for every term. An estimator, not an identity:
    DSMI(A; A) is not DSE(A). Near 0 for labels independent of the geometry.

    Parameters
    ----------
    embeddings : array-like of shape (n_samples, n_features)
    labels : array-like of shape (n_samples,)
        Class of each row. Numeric labels with more than ``n_bins`` distinct values
        are cut into ``n_bins`` equal-count (quantile) bins.
    sigma, t : see :func:`diffusion_spectral_entropy`
    n_repetitions : int, default=5
    n_bins : int, default=10
    random_state : int, default=0
    device : str or None, default=None

    Returns
    -------
    float

    Raises
    ------
    InvalidInputError
        If ``labels`` does not have one entry per row, has missing values or a single
        class, or the embedding is invalid.
    InvalidParameterError
        If a parameter is out of range.

    References
    ----------
    Liao, Liu et al., arXiv:2312.04823, §2.3 (DSMI).
    """
    import torch

    from backend.device import resolve_device

    _check_sigma_t(sigma, t)
    _check_int(n_repetitions, "n_repetitions", 1)
    _check_int(n_bins, "n_bins", 2)
    _check_int(random_state, "random_state", 0)
    matrix = _as_matrix(embeddings, "embeddings", min_rows=2)
    codes, _ = _label_codes(labels, matrix.shape[0], n_bins)
    dev = resolve_device(device).device
    rng = np.random.default_rng(random_state)
    with cpu_threads(dev):
        sq = _squared_distances(torch.as_tensor(matrix, device=dev))
        resolved = _median_sigma(sq) if sigma is None else float(sigma)
        return _dsmi(sq, codes, resolved, float(t), n_repetitions, rng)


def alignment(x, y, *, alpha: float = 2.0) -> float:
    """Alignment of positive pairs on the unit sphere: ``E ‖f(x) - f(y)‖₂^alpha``.

    Rows are L2-normalised first. Range ``[0, 2^alpha]``: 0 for identical pairs, 4
    (alpha=2) for antipodal ones, 2 for independent directions in high dimension.

    Parameters
    ----------
    x, y : array-like of shape (n_pairs, n_features)
        Row ``i`` of ``x`` is paired with row ``i`` of ``y``.
    alpha : float, default=2.0

    Returns
    -------
    float

    Raises
    ------
    InvalidInputError
        If the shapes differ, a row is all zero, or values are not finite.

    References
    ----------
    Wang & Isola, "Understanding contrastive representation learning through alignment
    and uniformity on the hypersphere", ICML 2020, eq. 4; ssnl/align_uniform.
    """
    if not isinstance(alpha, (int, float)) or alpha <= 0:
        raise InvalidParameterError(f"alpha must be a positive number; got {alpha!r}.")
    a = _unit_rows(_as_matrix(x, "x", min_rows=1), "x")
    b = _unit_rows(_as_matrix(y, "y", min_rows=1), "y")
    if a.shape != b.shape:
        raise InvalidInputError(f"x and y must have the same shape; got {a.shape} and {b.shape}.")
    return float(np.mean(np.linalg.norm(a - b, axis=1) ** alpha))


def uniformity(x, *, t: float = 2.0, device: str | None = None) -> float:
    """Uniformity on the unit sphere: ``log E_{i<j} exp(-t ‖f(x_i) - f(x_j)‖²)``.

    Rows are L2-normalised; the mean is over all pairs ``i < j`` (no self-pairs),
    in log-sum-exp form. Range ``[-2t, 0]`` for ``t=2`` it is ``[-4, 0]``; 0 means all
    points coincide; the uniform distribution on ``S^{d-1}`` gives
    :func:`uniformity_sphere` (≈ ``-4 + 8/d``). O(N²D): subsample large N.

    Parameters
    ----------
    x : array-like of shape (n_samples, n_features)
    t : float, default=2.0
    device : str or None, default=None

    Returns
    -------
    float

    Raises
    ------
    InvalidInputError
        If there are fewer than 2 rows, a row is all zero, or values are not finite.

    References
    ----------
    Wang & Isola, ICML 2020, eq. 5; ssnl/align_uniform ``uniform_loss``.
    """
    import torch

    from backend.device import resolve_device

    if not isinstance(t, (int, float)) or t <= 0:
        raise InvalidParameterError(f"t must be a positive number; got {t!r}.")
    unit = _unit_rows(_as_matrix(x, "x", min_rows=2), "x")
    dev = resolve_device(device).device
    with cpu_threads(dev):
        return _uniformity(torch.as_tensor(unit, device=dev), float(t))


def uniformity_sphere(d: int, *, t: float = 2.0) -> float:
    """Uniformity of the uniform distribution on ``S^{d-1}`` (closed form).

    .. math::

        -2t + \\ln\\big[\\Gamma(d/2)\\,(2/\\kappa)^{d/2-1} I_{d/2-1}(\\kappa)\\big],
        \\qquad \\kappa = 2t

    -3.97917 for ``d=384``, -2.07978 for ``d=3`` (``t=2``).

    Raises
    ------
    InvalidParameterError
        If ``d < 2`` or ``t <= 0``.

    References
    ----------
    Wang & Isola, ICML 2020, §4 (the uniform distribution maximises uniformity);
    E[exp(κ uᵀv)] for independent uniform u, v is the normalised von Mises-Fisher
    constant, Mardia & Jupp, "Directional Statistics" (2000), eq. 9.3.4.
    """
    from scipy.special import gammaln, ive

    _check_int(d, "d", 2)
    if not isinstance(t, (int, float)) or t <= 0:
        raise InvalidParameterError(f"t must be a positive number; got {t!r}.")
    kappa = 2.0 * t
    nu = d / 2.0 - 1.0
    log_bessel = math.log(ive(nu, kappa)) + kappa
    return float(-2.0 * t + gammaln(d / 2.0) + nu * math.log(2.0 / kappa) + log_bessel)


def covariance_spikes(embeddings, *, device: str | None = None) -> tuple[int, float, np.ndarray]:
    """Spikes of the sample-covariance spectrum above the Marchenko-Pastur bulk.

    The covariance ``C = X_cᵀ X_c / N`` of the centred rows has ``D`` eigenvalues; the MP
    bulk is fitted as for weight matrices
    (:func:`backend.diagnostics.weights.fit_marchenko_pastur` with ``Q = N / D``), and
    eigenvalues beyond its edge plus a Tracy-Widom margin are spikes: directions that
    carry more variance than isotropic noise of the same total variance would.

    Parameters
    ----------
    embeddings : array-like of shape (n_samples, n_features), n_samples >= n_features

    Returns
    -------
    num_spikes : int
    bulk_max : float
        Bulk edge in covariance units.
    eigenvalues : numpy.ndarray of shape (n_features,)
        Descending.

    Raises
    ------
    InvalidInputError
        If there are fewer rows than dimensions, or the matrix is constant or invalid.

    References
    ----------
    Marchenko & Pastur (1967); Baik, Ben Arous & Péché (2005); Johnstone, Ann. Stat.
    29 (2001) (Tracy-Widom edge); EigenShield (Abdalla et al. 2025, arXiv:2502.14976).
    """
    import torch

    from backend.device import resolve_device

    matrix = _as_matrix(embeddings, "embeddings", min_rows=2)
    _check_rows_vs_dims(matrix.shape)
    dev = resolve_device(device).device
    with cpu_threads(dev):
        return _covariance_spikes(torch.as_tensor(matrix, device=dev))


def representation_diagnostics(
    embeddings,
    *,
    labels=None,
    pairs=None,
    normalize: bool = False,
    max_n: int = 2000,
    sigma: float | None = None,
    t: float = 1.0,
    n_repetitions: int = 5,
    random_state: int = 0,
    device: str | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> RepresentationReport:
    """All representation diagnostics of one embedding matrix.

    RankMe (raw and centred) and the covariance spectrum use every row. DSE, DSMI and
    uniformity use one random subset of ``min(max_n, N)`` rows drawn with
    ``random_state`` (DSE grows with N and costs O(N³)); alignment uses every pair.

    With fewer rows than dimensions (e.g. 55 x 18,534) every measure that is defined is
    computed: RankMe (capped at N, which the note says), DSE, DSMI, alignment and
    uniformity, and the covariance spectrum's N possibly non-zero eigenvalues (from the
    N x N Gram matrix, never the D x D covariance). The Marchenko-Pastur spike count is
    skipped (``mp_num_spikes``/``mp_bulk_max`` None), with the reason in ``skipped`` and
    ``note``: the MP bulk is fitted to a full-rank spectrum of D eigenvalues, and with
    N < D, D - N + 1 of them are exactly 0.

    Parameters
    ----------
    embeddings : array-like of shape (n_samples, n_features)
        At least 3 rows.
    labels : array-like of shape (n_samples,) or None, default=None
        A label column for DSMI (see :func:`diffusion_spectral_mutual_information`).
    pairs : array-like of shape (n_pairs, 2) of int or None, default=None
        Row indices of positive pairs (e.g. an image and its caption) for alignment;
        uniformity is then computed over all rows (the union of both sides).
    normalize : bool, default=False
        L2-normalise rows before RankMe, DSE, DSMI and the covariance (alignment and
        uniformity always normalise).
    max_n : int, default=2000
        Rows subsampled for DSE, DSMI and uniformity.
    sigma : float or None, default=None
        DSE kernel width; ``None`` = median pairwise distance of the subsample.
    t : float, default=1.0
        DSE diffusion time.
    n_repetitions : int, default=5
        DSMI random-subset repetitions.
    random_state : int, default=0
    device : str or None, default=None
    progress : callable (fraction, message) or None, default=None
        Called between metrics; an exception raised inside it propagates.

    Returns
    -------
    RepresentationReport

    Raises
    ------
    InvalidInputError
        If the matrix has NaN/inf, fewer than 3 rows, is constant, or
        ``labels``/``pairs`` do not match it.
    InvalidParameterError
        If a parameter is out of range.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> report = representation_diagnostics(rng.normal(size=(1000, 32)))
    >>> round(report.rankme)  # doctest: +SKIP
    31
    """
    import torch

    from backend.device import resolve_device

    _check_sigma_t(sigma, t)
    _check_int(max_n, "max_n", 3)
    _check_int(n_repetitions, "n_repetitions", 1)
    _check_int(random_state, "random_state", 0)
    if not isinstance(normalize, bool):
        raise InvalidParameterError(f"normalize must be True or False; got {normalize!r}.")
    if progress is not None and not callable(progress):
        raise InvalidParameterError(f"progress must be callable or None; got {progress!r}.")
    matrix = _as_matrix(embeddings, "embeddings", min_rows=3)
    n_rows, n_features = matrix.shape
    wide = n_rows < n_features
    skipped: dict[str, str] = {}
    if wide:
        skipped["mp_num_spikes"] = (
            f"the Marchenko-Pastur spike count needs at least as many rows as dimensions: "
            f"with {n_rows:,} rows and {n_features:,} dimensions the covariance has at most "
            f"{n_rows - 1:,} non-zero eigenvalues, so there is no bulk to fit")
    codes = None
    n_classes = None
    if labels is not None:
        codes, n_classes = _label_codes(labels, n_rows, 10)
    pair_index = None if pairs is None else _pair_index(pairs, n_rows)
    report = progress or (lambda fraction, message: None)
    dev = resolve_device(device).device

    with cpu_threads(dev):
        unit = _unit_rows(matrix, "embeddings") if (normalize or pair_index is not None) else None
        base = unit if normalize else matrix
        tensor = torch.as_tensor(base, device=dev)
        report(0.0, "RankMe")
        rank_raw = _rankme(tensor, _RANKME_EPS)
        rank_centered = _rankme(_centre(tensor), _RANKME_EPS)
        report(0.15, "covariance spectrum")
        if wide:
            num_spikes, bulk_max, cov_evals = None, None, _wide_covariance_eigenvalues(tensor)
        else:
            num_spikes, bulk_max, cov_evals = _covariance_spikes(tensor)

        rng = np.random.default_rng(random_state)
        subset = np.sort(rng.choice(n_rows, size=min(max_n, n_rows), replace=False))
        report(0.3, f"diffusion spectral entropy on {subset.size} rows")
        sq = _squared_distances(tensor[torch.as_tensor(subset, device=dev)])
        resolved_sigma = _median_sigma(sq) if sigma is None else float(sigma)
        dse = _dse_from_sqdist(sq, resolved_sigma, float(t))
        dsmi = None
        if codes is not None:
            report(0.5, "diffusion spectral mutual information")
            dsmi = _dsmi(sq, codes[subset], resolved_sigma, float(t), n_repetitions, rng)
        align = unif = None
        if pair_index is not None:
            report(0.85, "alignment and uniformity")
            align = float(
                np.mean(np.sum((unit[pair_index[:, 0]] - unit[pair_index[:, 1]]) ** 2, axis=1))
            )
            unif = _uniformity(torch.as_tensor(unit[subset], device=dev), 2.0)
    report(1.0, "representation diagnostics done")
    return RepresentationReport(
        n_rows=int(n_rows),
        n_features=int(n_features),
        rankme=rank_raw,
        rankme_centered=rank_centered,
        dse=dse,
        dse_sigma=resolved_sigma,
        dse_t=float(t),
        dse_n=int(subset.size),
        dsmi=dsmi,
        n_classes=n_classes,
        alignment=align,
        uniformity=unif,
        n_pairs=0 if pair_index is None else int(pair_index.shape[0]),
        uniformity_n=0 if pair_index is None else int(subset.size),
        mp_num_spikes=num_spikes,
        mp_bulk_max=bulk_max,
        covariance_eigenvalues=cov_evals,
        skipped=skipped,
        note=_wide_note(n_rows, n_features, skipped) if wide else None,
        params={
            "normalize": normalize,
            "max_n": max_n,
            "sigma": "median pairwise distance" if sigma is None else float(sigma),
            "t": float(t),
            "n_repetitions": n_repetitions,
            "random_state": random_state,
            "rankme_eps": _RANKME_EPS,
            "alignment_alpha": 2.0,
            "uniformity_t": 2.0,
            "device": dev,
        },
    )


# --------------------------------------------------------------------------- private


def _as_matrix(value, name: str, *, min_rows: int) -> np.ndarray:
    try:
        matrix = np.asarray(
            value.detach().cpu() if hasattr(value, "detach") else value, dtype=np.float64
        )
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be a numeric matrix; {exc}.") from exc
    if matrix.ndim != 2:
        raise InvalidInputError(
            f"{name} must be 2-D (n_samples, n_features); got shape {matrix.shape}."
        )
    if matrix.shape[0] < min_rows or matrix.shape[1] < 1:
        raise InvalidInputError(
            f"{name} has {matrix.shape[0]} rows and {matrix.shape[1]} columns; at least "
            f"{min_rows} rows and 1 column are needed."
        )
    bad = ~np.isfinite(matrix)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise InvalidInputError(
            f"{name} holds {int(bad.sum())} NaN or infinite values in {rows.size} rows "
            f"(first: row {int(rows[0])}); drop or impute those rows first."
        )
    return matrix


def _check_rows_vs_dims(shape) -> None:
    n_rows, n_features = shape
    if n_rows < n_features:
        raise InvalidInputError(
            f"The embedding has {n_rows} rows but {n_features} dimensions: with fewer rows "
            "than dimensions the covariance spectrum is rank-deficient and RankMe is capped "
            f"at {n_rows}, so neither says anything about collapse. Use at least "
            f"{n_features} rows, or reduce the dimensions first (e.g. PCA to < {n_rows})."
        )


def _wide_note(n_rows: int, n_features: int, skipped: dict[str, str]) -> str:
    """What a user must know when the embedding has fewer rows than dimensions."""
    return (f"{n_rows:,} rows in {n_features:,} dimensions (fewer rows than dimensions): "
            f"RankMe is capped at {n_rows:,}, and the covariance spectrum shows its {n_rows:,} "
            "possibly non-zero eigenvalues. Skipped: "
            + "; ".join(f"{name} ({why})" for name, why in skipped.items()) + ".")


def _wide_covariance_eigenvalues(tensor) -> np.ndarray:
    """The n_rows largest eigenvalues of the covariance X_cᵀX_c / N, descending, from the
    N x N Gram matrix X_c X_cᵀ / N (same non-zero eigenvalues; no D x D matrix)."""
    import torch

    centred = _centre(tensor.to(torch.float64))
    gram = centred @ centred.T / centred.shape[0]
    eigenvalues = torch.linalg.eigvalsh(gram).clamp_min(0.0).cpu().numpy()
    return eigenvalues[::-1].copy()


def _unit_rows(matrix: np.ndarray, name: str) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1)
    zero = np.nonzero(norms == 0)[0]
    if zero.size:
        raise InvalidInputError(
            f"{name} has {zero.size} all-zero rows (first: row {int(zero[0])}), which have no "
            "direction on the unit sphere; drop them first."
        )
    return matrix / norms[:, None]


def _check_sigma_t(sigma, t) -> None:
    if sigma is not None and (
        not isinstance(sigma, (int, float)) or isinstance(sigma, bool) or not sigma > 0
    ):
        raise InvalidParameterError(f"sigma must be a positive number or None; got {sigma!r}.")
    if not isinstance(t, (int, float)) or isinstance(t, bool) or not t > 0:
        raise InvalidParameterError(f"t must be a positive number; got {t!r}.")


def _check_int(value, name: str, low: int) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
        raise InvalidParameterError(f"{name} must be an int >= {low}; got {value!r}.")


def _label_codes(labels, n_rows: int, n_bins: int) -> tuple[np.ndarray, int]:
    import pandas as pd

    try:
        series = (
            labels.reset_index(drop=True) if isinstance(labels, pd.Series) else pd.Series(labels)
        )
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"labels must be one value per row; {exc}.") from exc
    if len(series) != n_rows:
        raise InvalidInputError(
            f"labels must have one entry per row: {n_rows} expected, got {len(series)}."
        )
    missing = int(series.isna().sum())
    if missing:
        raise InvalidInputError(
            f"labels has {missing} missing values; drop those rows or fill them with a class."
        )
    if pd.api.types.is_float_dtype(series.dtype) and series.nunique() > n_bins:
        series = pd.qcut(series, q=n_bins, duplicates="drop")
    codes, uniques = pd.factorize(series, sort=True)
    if len(uniques) < 2:
        raise InvalidInputError(
            "labels has a single class; mutual information needs at least 2 classes."
        )
    return codes.astype(np.int64), int(len(uniques))


def _pair_index(pairs, n_rows: int) -> np.ndarray:
    index = np.asarray(pairs)
    if index.ndim != 2 or index.shape[1] != 2 or index.shape[0] < 1:
        raise InvalidInputError(
            f"pairs must be an (n_pairs, 2) array of row indices; got shape {index.shape}."
        )
    if not np.issubdtype(index.dtype, np.integer):
        raise InvalidInputError(f"pairs must hold integer row indices; got dtype {index.dtype}.")
    if index.min() < 0 or index.max() >= n_rows:
        raise InvalidInputError(
            f"pairs refer to rows {int(index.min())}..{int(index.max())} but the embedding has "
            f"rows 0..{n_rows - 1}."
        )
    return index.astype(np.int64)


def _centre(tensor):
    """Column-centred copy; refuses a matrix whose rows are all (numerically) equal."""
    centred = tensor - tensor.mean(dim=0, keepdim=True)
    if float(centred.norm()) <= 1e-12 * float(tensor.norm()):
        raise InvalidInputError(
            "All rows of the embedding are identical, so the centred matrix is zero and its "
            "spectrum is undefined; check that the embedding was computed per row."
        )
    return centred


def _rankme(tensor, eps: float) -> float:
    import torch

    singular = torch.linalg.svdvals(tensor.to(torch.float64))
    total = float(singular.sum())
    if not total > 0:
        raise InvalidInputError(
            "The embedding is all zero, so RankMe is undefined (0/0); check that the "
            "embedding was computed."
        )
    p = singular / total + eps
    return float(torch.exp(-(p * torch.log(p)).sum()))


def _squared_distances(tensor):
    import torch

    x = tensor.to(torch.float64)
    norms = (x * x).sum(dim=1)
    sq = norms[:, None] + norms[None, :] - 2.0 * (x @ x.T)
    sq.clamp_(min=0.0)
    sq.fill_diagonal_(0.0)
    return sq


def _median_sigma(sq) -> float:
    import torch

    n = sq.shape[0]
    upper = torch.triu_indices(n, n, offset=1, device=sq.device)
    distances = torch.sqrt(sq[upper[0], upper[1]])
    median = (
        float(torch.quantile(distances, 0.5))
        if distances.numel() <= 16_000_000
        else float(torch.median(distances))
    )
    if not median > 0:
        raise InvalidInputError(
            "More than half of the row pairs coincide (median distance 0), so the DSE kernel "
            "width cannot be set from the data; pass sigma explicitly or deduplicate rows."
        )
    return median


def _dse_from_sqdist(sq, sigma: float, t: float) -> float:
    import torch

    kernel = torch.exp(-sq / (2.0 * sigma * sigma))
    inv_sqrt_degree = 1.0 / torch.sqrt(kernel.sum(dim=1))
    diffusion = kernel * inv_sqrt_degree[:, None] * inv_sqrt_degree[None, :]
    eigenvalues = torch.linalg.eigvalsh(diffusion).abs()
    powered = eigenvalues**t
    p = powered / powered.sum()
    p = p[p > 0]
    return float(-(p * torch.log2(p)).sum())


def _dsmi(sq, codes: np.ndarray, sigma: float, t: float, n_repetitions: int, rng) -> float:
    import torch

    n = codes.size
    total = 0.0
    for cls in np.unique(codes):
        members = np.nonzero(codes == cls)[0]
        size = members.size
        index = torch.as_tensor(members, device=sq.device)
        conditional = _dse_from_sqdist(sq[index][:, index], sigma, t) if size > 1 else 0.0
        random_dse = 0.0
        for _ in range(n_repetitions):
            draw = torch.as_tensor(
                np.sort(rng.choice(n, size=size, replace=False)), device=sq.device
            )
            random_dse += _dse_from_sqdist(sq[draw][:, draw], sigma, t) if size > 1 else 0.0
        total += size / n * (random_dse / n_repetitions - conditional)
    return float(total)


def _uniformity(unit_tensor, t: float) -> float:
    import torch

    x = unit_tensor.to(torch.float64)
    n = x.shape[0]
    sq = (2.0 - 2.0 * (x @ x.T)).clamp_(min=0.0)
    upper = torch.triu_indices(n, n, offset=1, device=x.device)
    values = -t * sq[upper[0], upper[1]]
    return float(torch.logsumexp(values, dim=0) - math.log(values.numel()))


def _covariance_spikes(tensor) -> tuple[int, float, np.ndarray]:
    import torch

    from backend.diagnostics.weights import fit_marchenko_pastur

    x = tensor.to(torch.float64)
    centred = _centre(x)
    n_rows, n_features = x.shape
    covariance = centred.T @ centred / n_rows
    eigenvalues = torch.linalg.eigvalsh(covariance).clamp_min(0.0).cpu().numpy()
    fit = fit_marchenko_pastur(eigenvalues, n_rows=int(n_rows), n_cols=int(n_features))
    return fit.num_spikes, fit.bulk_max, eigenvalues[::-1].copy()
