"""Weight-matrix spectra: heavy-tailed self-regularisation metrics per layer.

For every weight matrix ``W`` (``N x M``, ``N >= M``) the empirical spectral density
(ESD) is the set of ``M`` eigenvalues of the smaller Gram matrix, ``λ_i = σ_i(W)²``,
with no ``1/N`` scaling (WeightWatcher's convention). Conv kernels are cut into one
matrix per kernel position and their eigenvalues pooled. From the ESD:

* a power law ``p(λ) ∝ λ^-alpha`` for ``λ >= xmin``, fitted by maximum likelihood with
  the ``xmin`` that minimises the Kolmogorov-Smirnov distance (Clauset et al. 2009);
* ``alpha_weighted = alpha * log10(λ_max)``, ``log_norm = log10 Σλ``,
  ``log_spectral_norm = log10 λ_max``, ``stable_rank = Σλ / λ_max``;
* a Marchenko-Pastur fit of the bulk with its spike count and ``mp_softrank``;
* FARMS: the same power-law fit on the pooled ESD of fixed-aspect-ratio windows of
  ``W``, which removes the dependence of ``alpha`` on the aspect ratio ``N/M``.

Eigenvalues come from Gram matrices in float64, batched by size: ``torch.linalg.eigvalsh``
on the GPU when there is one; on the CPU numpy's LAPACK call, the layers spread over
worker threads (``n_jobs``). Everything else is written here; the ``powerlaw`` package
is not used.

References
----------
Martin & Mahoney, "Implicit self-regularization in deep neural networks", JMLR 22
(2021); Martin, Peng & Mahoney, "Predicting trends in the quality of state-of-the-art
neural networks without access to training or testing data", Nat. Commun. 12 (2021);
reference implementation WeightWatcher 0.7.7 (CalculatedContent/WeightWatcher,
``weightwatcher.py``, ``WW_powerlaw.py``, ``RMT_Util.py``).
Clauset, Shalizi & Newman, "Power-law distributions in empirical data", SIAM Review
51 (2009), eq. 3.1 and §3.3.
Lu et al., "FARMS: Fixed-aspect-ratio matrix subsampling", arXiv:2506.06280 (2025).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from backend.threads import cpu_threads
from backend.errors import InvalidInputError, InvalidParameterError

__all__ = [
    "analyze_weights",
    "WeightAnalysis",
    "LayerSpectrum",
    "PowerLawFit",
    "MPFit",
    "fit_power_law",
    "fit_marchenko_pastur",
    "layer_eigenvalues",
    "farms_eigenvalues",
    "mp_bulk_edges",
    "spiked_top_eigenvalue",
    "EVALS_THRESH",
]

#: Eigenvalues at or below this are dropped before the power-law fit (WeightWatcher's
#: ``EVALS_THRESH``); norm metrics and the MP fit use all eigenvalues.
EVALS_THRESH = 1e-5

_OVER_TRAINED = 2.0
_UNDER_TRAINED = 6.0
_KDE_BANDWIDTH = 0.1
_KDE_POINTS = 1000
_KDE_FLOOR = 0.01
_PENDING_BYTES = 256 * 2**20  # Gram matrices held before one batched eigvalsh
_KS_CHUNK = 4_000_000  # entries of one (candidates x eigenvalues) block
_KS_PRUNE_ABOVE = 1024  # exact scan below, bounded scan above
# Tail positions per candidate in the bounding passes: on MiniLM's FARMS spectra
# (8,192 eigenvalues) (32, 256) fitted in 0.28 s against 0.48 s for (128, 1024).
_KS_GRID_LEVELS = (32, 256)
_CAST_CHUNK = 2**19  # values cast to float64 at a time for a CPU Gram matrix (4 MiB)
_IN_FLIGHT_PER_WORKER = 2  # layers read ahead per worker thread on the CPU


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class PowerLawFit:
    """A continuous power law fitted to the tail of an ESD.

    Attributes
    ----------
    alpha : float
        Exponent of ``p(λ) ∝ λ^-alpha``; NaN when the fit failed.
    xmin : float
        Start of the tail (an eigenvalue).
    D : float
        Kolmogorov-Smirnov distance of the tail to the fitted law.
    sigma : float
        Standard error ``(alpha - 1) / sqrt(num_pl_spikes)``.
    num_pl_spikes : int
        Eigenvalues ``>= xmin``.
    n_fitted : int
        Eigenvalues above :data:`EVALS_THRESH` that entered the fit.
    """

    alpha: float
    xmin: float
    D: float
    sigma: float
    num_pl_spikes: int
    n_fitted: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class MPFit:
    """Marchenko-Pastur fit of an ESD's bulk (WeightWatcher's ``mp_fit``).

    Attributes
    ----------
    sigma_mp : float
        Fitted MP scale, in units where the mean eigenvalue is 1.
    bulk_min, bulk_max : float
        MP bulk edges ``sigma_mp² (1 ∓ 1/sqrt(Q))²`` in the ESD's own units.
    num_spikes : int
        Eigenvalues beyond ``bulk_max`` plus a Tracy-Widom margin.
    mp_softrank : float
        ``bulk_max / λ_max``: near 1 for a random-like layer, near 0 when a few
        large eigenvalues dominate.
    w_scale : float
        ``sqrt(n_evals / Σλ)``, the rescaling applied before the fit.
    Q : float
        Aspect ratio ``N / M``.
    """

    sigma_mp: float
    bulk_min: float
    bulk_max: float
    num_spikes: int
    mp_softrank: float
    w_scale: float
    Q: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LayerSpectrum:
    """The ESD of one layer with its fits, for the log-log ESD plot.

    Attributes
    ----------
    name : str
        Tensor name, e.g. ``"encoder.layer.0.attention.self.query.weight"``.
    evals : numpy.ndarray of shape (num_evals,), float64
        Eigenvalues of the full matrix (pooled over conv slices), ascending.
    plain : PowerLawFit
        Power-law fit of ``evals``.
    farms_evals : numpy.ndarray or None
        Pooled eigenvalues of the FARMS windows, ascending; ``None`` without FARMS.
    farms : PowerLawFit or None
        Power-law fit of ``farms_evals``.
    mp : MPFit or None
        MP fit of ``evals``; ``None`` without the MP fit.
    """

    name: str
    evals: np.ndarray
    plain: PowerLawFit
    farms_evals: np.ndarray | None = None
    farms: PowerLawFit | None = None
    mp: MPFit | None = None

    def fit_line(self, method: str = "plain", n_points: int = 50) -> tuple[np.ndarray, np.ndarray]:
        """Fitted power-law density over the tail, scaled to the whole ESD.

        Returns ``(λ, density)`` with ``density = (k/n) (alpha-1)/xmin (λ/xmin)^-alpha``
        on ``n_points`` log-spaced ``λ`` from ``xmin`` to ``λ_max``, where ``k/n`` is
        the fraction of fitted eigenvalues in the tail, so the line overlays a
        density histogram of all eigenvalues.

        Raises
        ------
        InvalidParameterError
            If ``method`` is not ``"plain"`` or ``"farms"``, or FARMS was not run.
        """
        if method not in ("plain", "farms"):
            raise InvalidParameterError(f"method must be 'plain' or 'farms'; got {method!r}.")
        fit, evals = (
            (self.plain, self.evals) if method == "plain" else (self.farms, self.farms_evals)
        )
        if fit is None or evals is None:
            raise InvalidParameterError(
                f"layer {self.name} has no FARMS spectrum; run analyze_weights(farms=True)."
            )
        if not np.isfinite(fit.alpha):
            return np.empty(0), np.empty(0)
        x = np.geomspace(fit.xmin, float(evals[-1]), n_points)
        scale = fit.num_pl_spikes / max(fit.n_fitted, 1)
        y = scale * (fit.alpha - 1.0) / fit.xmin * (x / fit.xmin) ** (-fit.alpha)
        return x, y

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "evals": self.evals.tolist(),
            "plain": self.plain.to_dict(),
            "farms_evals": None if self.farms_evals is None else self.farms_evals.tolist(),
            "farms": None if self.farms is None else self.farms.to_dict(),
            "mp": None if self.mp is None else self.mp.to_dict(),
        }


@dataclass
class WeightAnalysis:
    """Result of :func:`analyze_weights`.

    Attributes
    ----------
    layers : pandas.DataFrame
        One row per analysed layer, in input order. Columns:

        - ``name``, ``kind`` (``"linear"``, ``"embedding"``, ``"conv1d"``,
          ``"conv2d"``), ``shape`` (e.g. ``"1536x384"``), ``N``, ``M``, ``Q = N/M``,
          ``rf`` (kernel positions), ``num_evals = M * rf``;
        - norm metrics: ``norm`` (Σλ), ``log_norm``, ``spectral_norm`` (λ_max),
          ``log_spectral_norm``, ``stable_rank``;
        - ``alpha``, ``alpha_weighted``, ``log_alpha_norm`` from the default fit named
          in ``alpha_method`` (``"farms"`` or ``"plain"``);
        - ``warning``: ``"over-trained"`` (plain alpha < 2), ``"under-trained"``
          (plain alpha > 6), ``"fit failed"`` or ``""``. The thresholds are
          WeightWatcher's, calibrated on full-matrix fits, so they use the plain alpha
          whatever the default (FARMS alphas of 128 x 128 windows run higher: mean 6.77
          vs 4.12 on all-MiniLM-L6-v2);
        - ``alpha_plain``, ``xmin_plain``, ``D_plain``, ``sigma_plain``,
          ``num_pl_spikes_plain``, ``alpha_weighted_plain`` (the full-matrix fit,
          comparable with WeightWatcher's ``alpha``);
        - ``alpha_farms``, ``xmin_farms``, ``D_farms``, ``sigma_farms``,
          ``num_pl_spikes_farms``, ``alpha_weighted_farms``, ``farms_windows``,
          ``farms_window`` (NaN / empty without FARMS);
        - ``sigma_mp``, ``bulk_min``, ``bulk_max``, ``num_spikes``, ``mp_softrank``
          (NaN without the MP fit).
    skipped : pandas.DataFrame
        Tensors that were not analysed: ``name``, ``shape``, ``reason`` (1-D tensors,
        tied copies of an analysed tensor, too few eigenvalues, ...).
    spectra : dict of str to LayerSpectrum
        Per-layer eigenvalues and fits, keyed by ``name``.
    params : dict
        The effective parameters, including the FARMS settings.
    device : str
        Where the eigenvalues were computed.
    timings : dict of str to float
        Seconds per stage; with a distributed engine also ``worker_peak_rss_mb``, the
        largest peak resident size (MiB) of the worker processes that ran the tasks.
    """

    layers: Any
    skipped: Any
    spectra: dict[str, LayerSpectrum]
    params: dict
    device: str
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict:
        """Means over analysed layers, and how many alphas are below 2, above 6 or above 8,
        for each fit: ``n_over_trained_plain``/``_farms``, ``n_under_trained_plain``/
        ``_farms``, ``n_alpha_above_8_plain``/``_farms`` and ``n_alpha_plain``/``_farms`` (layers
        with a finite alpha of that fit); the unsuffixed counts are the plain fit's.

        Unlike WeightWatcher's ``get_summary``, failed fits (NaN) are left out of the
        means; alphas above 8 (often spurious) are counted, not removed.
        """
        out: dict[str, Any] = {
            "n_layers": int(len(self.layers)),
            "n_skipped": int(len(self.skipped)),
        }
        for column in (
            "log_norm",
            "alpha",
            "alpha_plain",
            "alpha_farms",
            "alpha_weighted",
            "log_alpha_norm",
            "log_spectral_norm",
            "stable_rank",
            "mp_softrank",
        ):
            values = (
                self.layers[column].to_numpy(dtype=float) if column in self.layers else np.empty(0)
            )
            values = values[np.isfinite(values)]
            out[column] = float(values.mean()) if values.size else None
        for method in ("plain", "farms"):
            column = f"alpha_{method}"
            alpha = (self.layers[column].to_numpy(dtype=float)
                     if len(self.layers) and column in self.layers else np.empty(0))
            out[f"n_over_trained_{method}"] = int(np.sum(alpha < _OVER_TRAINED))
            out[f"n_under_trained_{method}"] = int(np.sum(alpha > _UNDER_TRAINED))
            out[f"n_alpha_above_8_{method}"] = int(np.sum(alpha > 8.0))
            out[f"n_alpha_{method}"] = int(np.isfinite(alpha).sum())
        # unsuffixed: the plain fit, the scale WeightWatcher's 2 and 6 were calibrated on
        for key in ("n_over_trained", "n_under_trained", "n_alpha_above_8"):
            out[key] = out[f"{key}_plain"]
        return out

    def spectra_frame(self):
        """Long-format eigenvalues for storage: columns ``name``, ``spectrum``
        (``"full"`` or ``"farms"``), ``eigenvalue``."""
        import pandas as pd

        parts = []
        for name, spec in self.spectra.items():
            parts.append(pd.DataFrame({"name": name, "spectrum": "full", "eigenvalue": spec.evals}))
            if spec.farms_evals is not None:
                parts.append(
                    pd.DataFrame(
                        {"name": name, "spectrum": "farms", "eigenvalue": spec.farms_evals}
                    )
                )
        if not parts:
            return pd.DataFrame({"name": [], "spectrum": [], "eigenvalue": []})
        return pd.concat(parts, ignore_index=True)

    def to_dict(self) -> dict:
        """JSON-able: layer rows, skipped tensors, summary, params, device, timings
        (spectra are left out; use :meth:`spectra_frame`)."""
        layers = self.layers.astype(object).where(self.layers.notna(), None)
        return {
            "layers": layers.to_dict(orient="records"),
            "skipped": self.skipped.to_dict(orient="records"),
            "summary": self.summary(),
            "params": dict(self.params),
            "device": self.device,
            "timings": dict(self.timings),
        }


# --------------------------------------------------------------------------- public functions


def mp_bulk_edges(Q: float, sigma: float = 1.0) -> tuple[float, float]:
    """Marchenko-Pastur bulk edges ``(λ-, λ+) = sigma² (1 ∓ 1/sqrt(Q))²``.

    For ``X`` of shape ``(n, p)``, ``n >= p``, with iid entries of variance
    ``sigma²``, the eigenvalues of ``XᵀX / n`` fill ``[λ-, λ+]`` as ``n, p → ∞``
    with ``Q = n/p`` fixed.

    Parameters
    ----------
    Q : float
        Aspect ratio ``N / M >= 1``.
    sigma : float, default=1.0
        Entry standard deviation.

    Returns
    -------
    tuple of float
        ``(lambda_minus, lambda_plus)``; ``(0.25, 2.25)`` for ``Q = 4``.

    Raises
    ------
    InvalidParameterError
        If ``Q < 1`` or ``sigma <= 0``.

    References
    ----------
    Marchenko & Pastur, Math. USSR-Sbornik 1 (1967); WeightWatcher
    ``RMT_Util.calc_lambda_minus`` / ``calc_lambda_plus``.
    """
    if not (isinstance(Q, (int, float)) and Q >= 1):
        raise InvalidParameterError(f"Q must be a number >= 1; got {Q!r}.")
    if not (isinstance(sigma, (int, float)) and sigma > 0):
        raise InvalidParameterError(f"sigma must be a positive number; got {sigma!r}.")
    root = 1.0 / math.sqrt(Q)
    return float((sigma * (1 - root)) ** 2), float((sigma * (1 + root)) ** 2)


def spiked_top_eigenvalue(ell: float, gamma: float) -> float:
    """Limit of the top sample-covariance eigenvalue for one population spike (BBP).

    Population covariance ``diag(ell, 1, ..., 1)``, ``gamma = p/n <= 1``: the top
    eigenvalue of the sample covariance converges to ``ell (1 + gamma / (ell - 1))``
    when ``ell > 1 + sqrt(gamma)``, and sticks to the bulk edge ``(1 + sqrt(gamma))²``
    otherwise.

    Parameters
    ----------
    ell : float
        Spike strength (> 0).
    gamma : float
        Ratio ``p / n`` in (0, 1].

    Returns
    -------
    float
        5.3125 for ``ell=5, gamma=0.25``; 2.25 for ``ell=1.3, gamma=0.25``.

    Raises
    ------
    InvalidParameterError
        If ``ell <= 0`` or ``gamma`` is outside (0, 1].

    References
    ----------
    Baik, Ben Arous & Péché, Ann. Probab. 33 (2005); Baik & Silverstein, J.
    Multivariate Anal. 97 (2006), Theorem 1.1.
    """
    if not (isinstance(ell, (int, float)) and ell > 0):
        raise InvalidParameterError(f"ell must be a positive number; got {ell!r}.")
    if not (isinstance(gamma, (int, float)) and 0 < gamma <= 1):
        raise InvalidParameterError(f"gamma must be in (0, 1]; got {gamma!r}.")
    if ell > 1 + math.sqrt(gamma):
        return float(ell * (1 + gamma / (ell - 1)))
    return float((1 + math.sqrt(gamma)) ** 2)


def fit_power_law(evals, *, device: str | None = None) -> PowerLawFit:
    """Fit a continuous power law to the tail of a spectrum (Hill MLE + KS-optimal xmin).

    Eigenvalues ``<= EVALS_THRESH`` (1e-5) are dropped. For every candidate ``xmin``
    (each sorted eigenvalue but the largest), with ``n`` eigenvalues ``>= xmin``:

    .. math::

        \\hat\\alpha = 1 + n \\Big/ \\sum_{\\lambda_j \\ge x_{min}} \\ln(\\lambda_j / x_{min}),
        \\qquad
        D = \\max_j \\left| 1 - (\\lambda_j / x_{min})^{1-\\hat\\alpha} - j/n \\right|

    and the ``xmin`` with the smallest ``D`` wins (the first on ties; candidates with
    ``alpha <= 1`` get ``D = 1``). This is WeightWatcher's default fit (``WWFit``,
    equal to ``powerlaw.Fit(data, xmax=None)``), except that WeightWatcher 0.7.7
    switches to a bias-corrected small-sample variant below 20 eigenvalues, which is
    not reproduced. Above 1024 eigenvalues the scan first bounds every candidate's
    ``D`` on a coarse grid and evaluates exactly only those whose lower bound beats the
    best upper bound, which returns the same ``xmin``.

    Parameters
    ----------
    evals : array-like of shape (n,)
        Eigenvalues (any order), finite and >= 0.
    device : str or None, default=None
        Torch device for the scan (see :func:`backend.device.resolve_device`).

    Returns
    -------
    PowerLawFit
        ``alpha = NaN`` when fewer than 2 eigenvalues exceed the threshold.

    Raises
    ------
    InvalidInputError
        If ``evals`` is not 1-D, or holds NaN, inf or negative values.

    References
    ----------
    Clauset, Shalizi & Newman, SIAM Review 51 (2009), eqs. 3.1 and 3.9;
    WeightWatcher ``WW_powerlaw.WWFit``.
    """
    import torch

    from backend.device import resolve_device

    values = np.asarray(evals, dtype=np.float64)
    if values.ndim != 1:
        raise InvalidInputError(f"evals must be 1-D; got shape {values.shape}.")
    if not np.all(np.isfinite(values)):
        raise InvalidInputError(
            f"evals holds {int(np.sum(~np.isfinite(values)))} NaN or infinite values; "
            "remove them before fitting."
        )
    if values.size and values.min() < -1e-8 * max(1.0, float(np.abs(values).max())):
        raise InvalidInputError(
            "evals must be >= 0 (eigenvalues of a Gram matrix); the smallest is "
            f"{values.min():.3g}."
        )
    dev = resolve_device(device).device
    tensor = torch.as_tensor(np.sort(values), dtype=torch.float64, device=dev)
    with cpu_threads(dev):
        return _fit_power_law(tensor)


def fit_marchenko_pastur(evals, *, n_rows: int, n_cols: int) -> MPFit:
    """Fit the Marchenko-Pastur law to the bulk of an ESD, as WeightWatcher's ``mp_fit``.

    Steps: rescale the eigenvalues so their mean is 1; estimate the density with a
    linear-kernel KDE (bandwidth 0.1) on 1000 points from 0 to ``max + 0.5`` and drop
    points where it is below 0.01; find ``sigma`` by a grid search over
    ``[0.05, 2) * sigma0`` in steps of ``0.01 * sigma0``
    (``sigma0 = sqrt(λmax / (1 + 1/sqrt(Q))²)``), polished by Nelder-Mead
    (``scipy.optimize.brute`` with its default finish), minimising the squared
    difference between the MP density and the KDE (a flat penalty when the bulk edge
    misses the KDE's peak or range). For ``Q == 1`` the quarter-circle law is fitted to
    ``sqrt(λ)`` instead. Then ``bulk_max = sigma² (1 + 1/sqrt(Q))²``, a Tracy-Widom
    margin ``TW = Q^-1/2 bulk_max^2/3 M^-2/3``, ``num_spikes = #{λ > bulk_max + sqrt(TW)}``
    and ``mp_softrank = bulk_max / λmax`` (all in rescaled units). The KDE is computed
    once (WeightWatcher recomputes it for every ``sigma``), so the result is the same,
    only faster. The heuristics are WeightWatcher's; treat ``num_spikes`` and
    ``mp_softrank`` as indicative (WeightWatcher issues #55, #210).

    Parameters
    ----------
    evals : array-like of shape (n,)
        All eigenvalues of the layer (not thresholded), >= 0, not all zero.
    n_rows, n_cols : int
        ``N`` (larger) and ``M`` (smaller) dimension of one weight matrix;
        ``Q = n_rows / n_cols``.

    Returns
    -------
    MPFit

    Raises
    ------
    InvalidInputError
        If ``evals`` is empty, all zero, or holds NaN/inf.
    InvalidParameterError
        If ``n_rows < n_cols`` or either is < 1.

    References
    ----------
    Marchenko & Pastur (1967); Martin & Mahoney, JMLR 22 (2021), §3;
    WeightWatcher ``weightwatcher.py::mp_fit``, ``RMT_Util.fit_density_with_range``,
    ``RMT_Util.resid_mp``.
    """
    if not (isinstance(n_rows, (int, np.integer)) and isinstance(n_cols, (int, np.integer))):
        raise InvalidParameterError(f"n_rows and n_cols must be ints; got {n_rows!r}, {n_cols!r}.")
    if n_cols < 1 or n_rows < n_cols:
        raise InvalidParameterError(
            "need n_rows >= n_cols >= 1 (N is the larger dimension); got "
            f"n_rows={n_rows}, n_cols={n_cols}."
        )
    values = np.asarray(evals, dtype=np.float64).ravel()
    if values.size == 0 or not np.all(np.isfinite(values)) or values.sum() <= 0:
        raise InvalidInputError(
            f"evals must be finite with a positive sum; got {values.size} values, "
            f"sum {values.sum() if values.size else 0:.3g}."
        )
    return _fit_mp(np.sort(values), int(n_rows), int(n_cols))


def layer_eigenvalues(weight, *, conv2d_norm: bool = True, device: str | None = None) -> np.ndarray:
    """Eigenvalues ``σ_i(W)²`` of one weight tensor, pooled over conv kernel positions.

    Parameters
    ----------
    weight : torch.Tensor or numpy.ndarray of 2, 3 or 4 dimensions
        ``(out, in)``; ``(out, in, k)`` Conv1d; ``(out, in, kh, kw)`` Conv2d.
    conv2d_norm : bool, default=True
        Scale each Conv2d slice by ``sqrt(1/2)`` (WeightWatcher's default), which
        halves its eigenvalues.
    device : str or None, default=None
        Torch device.

    Returns
    -------
    numpy.ndarray of shape (M * rf,), float64
        Ascending.

    Raises
    ------
    InvalidInputError
        If the tensor is not 2-4 dimensional, not floating point, or not finite.
    """
    from backend.device import resolve_device

    dev = resolve_device(device).device
    tensor = _as_tensor(weight, "weight")
    _check_finite(tensor, "weight")
    if tensor.ndim not in (2, 3, 4):
        raise InvalidInputError(
            f"weight must have 2, 3 or 4 dimensions; got shape {tuple(tensor.shape)}."
        )
    slices = _slices(tensor.to(dev))
    with cpu_threads(dev):
        grams = _grams(slices, _gram_scale(tensor, conv2d_norm))
        return _sorted_numpy(_eigvalsh(grams).reshape(-1))


def farms_eigenvalues(
    weight,
    *,
    window: int = 128,
    windows_per_dim: int = 8,
    q_ratio: float = 1.0,
    conv2d_norm: bool = True,
    device: str | None = None,
) -> np.ndarray:
    """Pooled ESD of fixed-aspect-ratio windows of one weight tensor (FARMS).

    Each matrix (each conv slice) is oriented so that rows >= columns. The window is
    ``round(q_ratio * m)`` rows by ``m`` columns with ``m = min(window, M, N / q_ratio)``.
    Window starts are evenly spaced on each axis, ``windows_per_dim`` per axis, from
    0 to ``L - w`` (``numpy.linspace(0, L - w, windows_per_dim).round()``), so the
    windows reach both ends of the matrix; duplicates are removed (a matrix barely
    larger than the window gets fewer, distinct windows). Windows overlap when the
    matrix is small. The eigenvalues of all windows of all slices are concatenated
    into one ESD. (FARMS' released code spaces starts by ``(L - w) // (ops - 1)``,
    which can leave the last rows unused.) With the defaults this reproduces the
    128 x 128, 8 x 8-window alphas of all-MiniLM-L6-v2 in the reference values.

    Parameters
    ----------
    weight : torch.Tensor or numpy.ndarray of 2, 3 or 4 dimensions
    window : int, default=128
        Short side ``m`` of a window.
    windows_per_dim : int, default=8
        Window starts per axis (at most ``windows_per_dim²`` windows per matrix).
    q_ratio : float, default=1.0
        Window aspect ratio (long / short side), >= 1.
    conv2d_norm : bool, default=True
    device : str or None, default=None

    Returns
    -------
    numpy.ndarray of shape (n_windows * m,), float64
        Ascending.

    Raises
    ------
    InvalidInputError
        As :func:`layer_eigenvalues`.
    InvalidParameterError
        If ``window < 2``, ``windows_per_dim < 1`` or ``q_ratio < 1``.

    References
    ----------
    Lu et al., arXiv:2506.06280 (2025), §3 ("fixed sampling");
    HUST-AI-HYZ/FARMS ``LLM_Pruning/lib/sampling.py``.
    """
    from backend.device import resolve_device

    _check_farms_params(window, windows_per_dim, q_ratio)
    dev = resolve_device(device).device
    tensor = _as_tensor(weight, "weight")
    _check_finite(tensor, "weight")
    if tensor.ndim not in (2, 3, 4):
        raise InvalidInputError(
            f"weight must have 2, 3 or 4 dimensions; got shape {tuple(tensor.shape)}."
        )
    slices = _slices(tensor.to(dev))
    scale = _gram_scale(tensor, conv2d_norm)
    with cpu_threads(dev):
        grams = _farms_grams(slices, window, windows_per_dim, q_ratio, scale)
        return _sorted_numpy(_eigvalsh(grams))


def analyze_weights(
    weights_iter,
    *,
    farms: bool = True,
    mp_fit: bool = True,
    min_evals: int = 50,
    max_evals: int | None = 15000,
    conv2d_norm: bool = True,
    farms_window: int = 128,
    farms_windows_per_dim: int = 8,
    farms_q_ratio: float = 1.0,
    n_jobs: int | None = -1,
    device: str | None = None,
    progress: Callable[[float, str], None] | None = None,
    engine=None,
    stop=None,
) -> WeightAnalysis:
    """Spectral health metrics for every weight matrix of a model.

    A tensor is analysed when it is floating point, has 2-4 dimensions, its name ends
    in ``"weight"`` (``.weight``, ``in_proj_weight``) and does not contain ``"norm"``,
    and it has between ``min_evals`` and ``max_evals`` eigenvalues. 2-D tensors
    (Linear, Embedding, HF Conv1D) are one matrix; 3-D (``out, in, k``) and 4-D
    (``out, in, kh, kw``) kernels are cut into one matrix per kernel position, as
    WeightWatcher does (kernel axes first when they are larger than the channel axes,
    e.g. Keras ``kh, kw, in, out``), and their eigenvalues pooled. Every other tensor is
    listed in ``skipped`` with the reason: 1-D tensors (biases, norm scales), and a tensor
    that shares its storage with an earlier one (a tied embedding and output head: the
    same matrix, analysed and counted in the model's averages once).

    Per layer: eigenvalues of the Gram matrix in float64 (no 1/N scaling), norm
    metrics on all eigenvalues, the power-law fit (:func:`fit_power_law`) on
    eigenvalues above 1e-5, the FARMS fit on the pooled windows
    (:func:`farms_eigenvalues`), and the MP fit (:func:`fit_marchenko_pastur`).
    ``alpha`` is the FARMS alpha when ``farms=True``, else the plain one;
    ``alpha_weighted = alpha * log10(λ_max)`` and ``log_alpha_norm = log10 Σ λ^alpha``
    use the full matrix's eigenvalues with that alpha. ``warning`` is
    ``"over-trained"`` below 2, ``"under-trained"`` above 6 (WeightWatcher's labels),
    judged on the plain alpha.

    On the CPU the layers are spread over ``n_jobs`` worker threads, each running
    torch and BLAS single-threaded (restored afterwards): the work is many small and
    mid-sized matrices, which parallelise well across layers (2 workers: 1.9x on 2
    idle cores) and badly inside one decomposition (multi-threaded BLAS spin-waits:
    on a shared 2-core machine at load 9 it made all-MiniLM-L6-v2 12x slower, 126 s
    against 10 s). Results do not depend on ``n_jobs``.

    Parameters
    ----------
    weights_iter : ModelWeights, mapping of str to tensor, or iterable of (str, tensor)
        Named tensors (torch tensors or numpy arrays), read one at a time.
    farms : bool, default=True
        Compute the FARMS fit and make it the default ``alpha``.
    mp_fit : bool, default=True
        Fit the Marchenko-Pastur bulk.
    min_evals : int, default=50
        Skip layers with fewer eigenvalues (``M * rf``). WeightWatcher 0.7.7 uses 8;
        its README recommends >= 50.
    max_evals : int or None, default=15000
        Skip layers with more eigenvalues (WeightWatcher's default); ``None`` for no limit.
        Unlike WeightWatcher there is no limit on ``N`` (its ``max_N = 50000`` drops
        large-vocabulary embeddings).
    conv2d_norm : bool, default=True
        Scale Conv2d slices by ``sqrt(1/2)``, as WeightWatcher does.
    farms_window, farms_windows_per_dim, farms_q_ratio : int, int, float
        FARMS settings (see :func:`farms_eigenvalues`): 128, 8 and 1.0 give at most
        64 windows of 128 x 128 per matrix. FARMS alphas are comparable only at equal
        settings.
    n_jobs : int or None, default=-1
        Worker threads on the CPU: -1 for every usable core, None for 1 (scikit-learn's
        convention). Ignored on CUDA, where Gram matrices are batched by size for one
        ``eigvalsh`` call each.
    device : str or None, default=None
        Torch device for the eigenvalues and fits; CUDA when available.
    progress : callable (fraction, message) or None, default=None
        Called between layers. An exception raised inside it propagates and stops
        the analysis.
    engine : backend.engines.Engine or None, default=None
        A distributed engine (a Ray cluster) analyses each tensor of a safetensors model
        (one file or a folder of shards) as one task: the worker reads the tensor from its
        shard by path (the checkpoint must be visible at the same path on every node),
        computes its spectra and fits, and returns them; at most one task per worker is
        in flight, in shard order, so the cluster's host memory holds about one tensor
        per worker (two shards' worth at most) and never the whole checkpoint. The
        results are the same, bit for bit, as in process. ``None`` or an in-process
        engine, or weights that are not safetensors: analysed here as described above.
    stop : threading.Event or None, default=None
        With a distributed engine: once set, outstanding tasks are cancelled.

    Returns
    -------
    WeightAnalysis
        ``layers`` (one row per layer), ``skipped``, ``spectra``, ``params``,
        ``device``, ``timings``.

    Raises
    ------
    InvalidInputError
        If there are no tensors, no tensor qualifies (e.g. only 1-D tensors), a value
        is not a tensor, or an analysed tensor holds NaN or inf.
    InvalidParameterError
        If a parameter is out of range.

    References
    ----------
    Martin & Mahoney, JMLR 22 (2021); WeightWatcher 0.7.7 ``WeightWatcher.analyze``;
    Lu et al., arXiv:2506.06280 (FARMS).

    Examples
    --------
    >>> from backend.models import bundled_minilm
    >>> result = analyze_weights(bundled_minilm(), mp_fit=False)
    >>> result.layers[["name", "alpha", "alpha_plain"]].head(3)  # doctest: +SKIP
    """
    from backend.device import resolve_device

    for flag_name, flag in (("farms", farms), ("mp_fit", mp_fit), ("conv2d_norm", conv2d_norm)):
        if not isinstance(flag, bool):
            raise InvalidParameterError(f"{flag_name} must be True or False; got {flag!r}.")
    if not isinstance(min_evals, int) or isinstance(min_evals, bool) or min_evals < 2:
        raise InvalidParameterError(f"min_evals must be an int >= 2; got {min_evals!r}.")
    if max_evals is not None and (
        not isinstance(max_evals, int) or isinstance(max_evals, bool) or max_evals < min_evals
    ):
        raise InvalidParameterError(
            f"max_evals must be None or an int >= min_evals ({min_evals}); got {max_evals!r}."
        )
    _check_farms_params(farms_window, farms_windows_per_dim, farms_q_ratio)
    workers = _n_workers(n_jobs)
    if progress is not None and not callable(progress):
        raise InvalidParameterError(f"progress must be callable or None; got {progress!r}.")
    resolution = resolve_device(device)
    dev = resolution.device
    params = {
        "farms": farms,
        "mp_fit": mp_fit,
        "min_evals": min_evals,
        "max_evals": max_evals,
        "conv2d_norm": conv2d_norm,
        "farms_window": farms_window,
        "farms_windows_per_dim": farms_windows_per_dim,
        "farms_q_ratio": float(farms_q_ratio),
        "farms_pooling": "esd",
        "evals_thresh": EVALS_THRESH,
        "xmin_rule": "ks_min",
        "n_jobs": workers if dev.startswith("cpu") else 1,
        "device": dev,
        "device_reason": resolution.reason,
    }
    report = progress or (lambda fraction, message: None)
    if engine is not None and engine.distributed and getattr(weights_iter, "locations", None):
        params["n_jobs"] = engine.n_workers()
        return _analyze_on(engine, weights_iter, params, report, stop)
    with cpu_threads(dev):
        return _analyze(weights_iter, params, report)


def _analyze_on(engine, weights, params: dict, report, stop) -> WeightAnalysis:
    """analyze_weights with one engine task per analysed tensor (see ``engine``).

    The tensors are listed in the order the in-process path reads them (shard by shard),
    skipped ones decided from the header's shapes and dtypes without reading data, so the
    frames come out identical.
    """
    import torch

    from backend.engines import Task
    from backend.models import group_by_file

    t0 = time.perf_counter()
    layers: list[dict] = []
    skipped: list[dict] = []
    tasks: list = []
    n_seen = n_one_d = 0
    for path, names in group_by_file(weights.names, weights.locations).items():
        shard = os.path.basename(path)
        for name in names:
            n_seen += 1
            dtype = getattr(torch, weights.dtypes[name], None)
            if not isinstance(dtype, torch.dtype):  # a safetensors dtype torch lacks
                dtype = torch.uint8
            meta = torch.empty(weights.shapes[name], dtype=dtype, device="meta")
            if meta.ndim < 2:
                n_one_d += 1
                skipped.append({"name": name, "shape": _shape_str(meta.shape),
                                "reason": ONE_D_REASON})
                continue
            reason, kind = _skip_reason(name, meta, min_evals=params["min_evals"],
                                        max_evals=params["max_evals"])
            if reason:
                skipped.append({"name": name, "shape": _shape_str(meta.shape), "reason": reason})
                continue
            layers.append(_layer_row(name, kind, meta, params))
            tasks.append(Task(f"tensor {name} (shard {shard})", (path, name, params)))
    outputs = engine.map(_tensor_task, tasks, stop=stop,
                         progress=lambda f, m: report(0.99 * f, m)) if tasks else []
    spectra: dict[str, LayerSpectrum] = {}
    kept: list[dict] = []
    zero: list[dict] = []
    peak = 0.0
    for row, out in zip(layers, outputs, strict=True):
        fitted, peak_mb = out
        peak = max(peak, peak_mb)
        if fitted is None:
            zero.append(row)
            continue
        row_done, spectrum = fitted
        kept.append(row_done)
        spectra[row_done["name"]] = spectrum
    skipped += [{"name": row["name"], "shape": row["shape"], "reason": "all weights are zero"}
                for row in zero]
    if not kept:
        _raise_nothing_analysed(n_seen, n_one_d, skipped, params)
    report(1.0, f"analysed {len(kept)} layers")
    timings = {"spectra_and_fits": round(time.perf_counter() - t0, 4),
               "worker_peak_rss_mb": round(peak, 1)}
    return _analysis(kept, skipped, spectra, params, timings)


def _tensor_task(path: str, name: str, params: dict):
    """Engine task: ((row, LayerSpectrum) or None when all weights are zero, the worker
    process's peak resident memory in MiB) of the tensor ``name`` of the shard ``path``.

    The same steps as the in-process path, on one tensor: Gram matrices, eigenvalues
    (one LAPACK call per matrix, as the batched call makes), fits.
    """
    import resource

    import torch

    from backend.models import read_tensor

    with cpu_threads(params["device"]), torch.no_grad():
        tensor = read_tensor(path, name)
        reason, kind = _skip_reason(name, tensor, min_evals=params["min_evals"],
                                    max_evals=params["max_evals"])
        if reason:  # the header said otherwise: the shard changed since it was opened
            raise InvalidInputError(f"{name} in {os.path.basename(path)} changed while it was "
                                    f"analysed ({reason}); analyse the model again.")
        row = _layer_row(name, kind, tensor, params)
        grams = _layer_grams(tensor, name, params)
        del tensor
        fitted = None
        if grams is not None:
            full = _eigvalsh(grams[0])
            farms = _eigvalsh(grams[1]) if grams[1] is not None else None
            del grams
            fitted = _fit_layer(row, full, farms, params["mp_fit"])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return fitted, peak_mb


def _analyze(weights_iter, params: dict, report) -> WeightAnalysis:
    """Core of analyze_weights on validated parameters.

    Tensors are read one at a time in this thread. Each layer's Gram matrices are
    computed by a task on the worker threads (at most ``_IN_FLIGHT_PER_WORKER`` layers
    per worker read ahead), collected by size and decomposed by one batched
    ``eigvalsh`` per size, split over the workers on the CPU. Then the power-law and MP
    fits, one task per layer. With ``n_jobs=1`` (and on CUDA) the tasks run in this
    thread. numpy's ``eigvalsh`` keeps the GIL for a single matrix but not for a
    batch, which is one more reason to batch on the CPU too.
    """
    import pandas as pd
    import torch

    dev = params["device"]
    workers = params["n_jobs"]
    names_total = _total_count(weights_iter)
    timings = {"spectra": 0.0, "fits": 0.0}

    layers: list[dict] = []
    skipped: list[dict] = []
    zero: set[int] = set()
    storages: dict = {}
    n_seen = n_one_d = 0
    t0 = time.perf_counter()
    pool = ThreadPoolExecutor(workers, thread_name_prefix="weights") if workers > 1 else None
    submit = pool.submit if pool else _run_now
    pending = _PendingGrams(dev, pool, workers)
    in_flight: dict[Future, int] = {}

    def collect(limit: int) -> None:
        """Gram matrices of finished layers into ``pending``, waiting while more than
        ``limit`` layers are in flight (for any one of them, so that one large layer
        does not stall the rest)."""
        while in_flight:
            done, _ = wait(
                list(in_flight),
                timeout=None if len(in_flight) > limit else 0,
                return_when=FIRST_COMPLETED,
            )
            if not done:
                return
            for future in done:
                index = in_flight.pop(future)
                grams = future.result()  # re-raises the NaN/inf error of that layer
                if grams is None:
                    zero.add(index)
                    continue
                pending.add(("full", index), grams[0])
                if grams[1] is not None:
                    pending.add(("farms", index), grams[1])
            if pending.nbytes > _PENDING_BYTES:
                pending.flush()

    try:
        with torch.no_grad():
            for name, value in _iterate(weights_iter):
                n_seen += 1
                tensor = _as_tensor(value, name)
                if names_total:
                    report(0.6 * n_seen / names_total, f"eigenvalues of {name}")
                if tensor.ndim < 2:
                    n_one_d += 1
                    skipped.append({"name": name, "shape": _shape_str(tensor.shape),
                                    "reason": ONE_D_REASON})
                    continue
                tied = _tied_to(tensor, value, name, storages)
                if tied is not None:
                    skipped.append({"name": name, "shape": _shape_str(tensor.shape),
                                    "reason": f"shares storage with {tied} (tied weights): "
                                              "counted once"})
                    continue
                reason, kind = _skip_reason(name, tensor, min_evals=params["min_evals"],
                                            max_evals=params["max_evals"])
                if reason:
                    skipped.append({"name": name, "shape": _shape_str(tensor.shape),
                                    "reason": reason})
                    continue
                layers.append(_layer_row(name, kind, tensor, params))
                in_flight[submit(_layer_grams, tensor, name, params)] = len(layers) - 1
                collect(limit=_IN_FLIGHT_PER_WORKER * workers)
                del tensor, value
            collect(limit=0)
            pending.flush()
            kept = [index for index in range(len(layers)) if index not in zero]
            results = [
                (
                    pending.result(("full", index)),
                    pending.result(("farms", index)) if params["farms"] else None,
                )
                for index in kept
            ]
        timings["spectra"] = time.perf_counter() - t0

        if n_seen == 0:
            _raise_nothing_analysed(n_seen, n_one_d, skipped, params)
        for index in sorted(zero):
            row = layers[index]
            skipped.append({"name": row["name"], "shape": row["shape"],
                            "reason": "all weights are zero"})
        layers = [layers[index] for index in kept]
        if not layers:
            _raise_nothing_analysed(n_seen, n_one_d, skipped, params)

        t1 = time.perf_counter()
        report(0.6, f"power-law fits of {len(layers)} layers")
        jobs = [(row, full_t, farms_t, params["mp_fit"])
                for row, (full_t, farms_t) in zip(layers, results, strict=True)]
        fitted = pool.map(_fit_layer, *zip(*jobs)) if pool else map(_fit_layer, *zip(*jobs))
        spectra: dict[str, LayerSpectrum] = {}
        for done, (row, spectrum) in enumerate(fitted, start=1):
            spectra[row["name"]] = spectrum
            report(0.6 + 0.4 * done / len(layers), f"fitted {row['name']}")
        timings["fits"] = time.perf_counter() - t1
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    report(1.0, f"analysed {len(layers)} layers")
    return _analysis(layers, skipped, spectra, params,
                     {step: round(seconds, 4) for step, seconds in timings.items()})


def _raise_nothing_analysed(n_seen: int, n_one_d: int, skipped: list[dict], params: dict):
    if n_seen == 0:
        raise InvalidInputError(
            "The model holds no tensors (an empty state dict); nothing to analyse."
        )
    if n_one_d == n_seen:
        raise InvalidInputError(
            f"None of the {n_seen} tensors is a weight matrix: all are 1-D (biases, "
            "norm scales). Weight spectra need 2-D Linear/Embedding weights or conv "
            "kernels."
        )
    reasons = "; ".join(f"{row['name']} ({row['reason']})" for row in skipped[:5])
    raise InvalidInputError(
        f"None of the {n_seen} tensors could be analysed ({n_one_d} are 1-D; "
        f"{len(skipped)} skipped: {reasons}). Lower min_evals (now "
        f"{params['min_evals']}) if the layers are small."
    )


def _analysis(layers: list[dict], skipped: list[dict], spectra: dict, params: dict,
              timings: dict) -> WeightAnalysis:
    import pandas as pd

    return WeightAnalysis(
        layers=pd.DataFrame(layers, columns=_COLUMNS),
        skipped=pd.DataFrame(skipped, columns=["name", "shape", "reason"]),
        spectra=spectra,
        params=params,
        device=params["device"],
        timings=timings,
    )


ONE_D_REASON = "1-D (a bias or a norm scale): no matrix to take a spectrum of"


def _tied_to(tensor, value, name: str, storages: dict) -> str | None:
    """The name of an earlier tensor that is this very tensor (same storage, offset, shape
    and strides: a tied embedding and output head), else None after recording this one.

    A weak reference to ``value`` (the object the source yielded; ``tensor`` is a detached
    view of it) guards against a freed tensor whose memory was reused: only a tensor still
    alive (e.g. held by the same state dict) counts as the same storage.
    """
    import weakref

    if tensor.numel() == 0:
        return None
    key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape),
           tuple(tensor.stride()), tensor.dtype)
    seen = storages.get(key)
    if seen is not None and seen[1]() is not None:
        return seen[0]
    try:
        storages[key] = (name, weakref.ref(value))
    except TypeError:  # an object without weak references: it cannot be proved alive
        storages[key] = (name, lambda: None)
    return None


def _run_now(function, *args):
    """A finished future of ``function(*args)`` (the serial path's ``submit``)."""
    future: Future = Future()
    try:
        future.set_result(function(*args))
    except BaseException as error:  # noqa: BLE001 - handed to the caller by result()
        future.set_exception(error)
    return future


def _layer_row(name: str, kind: str, tensor, params: dict) -> dict:
    """The shape columns of one analysed layer."""
    shape = tuple(int(s) for s in tensor.shape)
    a, b = _slice_shape(shape)
    n_big, m_small = max(a, b), min(a, b)
    rf = int(np.prod(shape)) // (a * b)
    row = {
        "name": name,
        "kind": kind,
        "shape": _shape_str(shape),
        "N": int(n_big),
        "M": int(m_small),
        "Q": n_big / m_small,
        "rf": rf,
        "num_evals": int(m_small * rf),
    }
    if params["farms"]:
        (rows, cols), row_starts, col_starts = _farms_layout(
            n_big, m_small, params["farms_window"], params["farms_windows_per_dim"],
            params["farms_q_ratio"],
        )
        row["farms_windows"] = len(row_starts) * len(col_starts) * rf
        row["farms_window"] = f"{rows}x{cols}"
    return row


def _layer_grams(tensor, name: str, params: dict):
    """(full Grams (rf, M, M), FARMS window Grams or None) in float64 on the device,
    or None when every weight is zero. Raises InvalidInputError on NaN/inf."""
    scale = _gram_scale(tensor, params["conv2d_norm"])
    slices = _slices(tensor.to(params["device"]))
    grams = _grams(slices, scale)
    # trace(WᵀW) = Σ w²: one cheap test for NaN/inf anywhere in the tensor
    trace = float(grams.diagonal(dim1=1, dim2=2).sum())
    if not math.isfinite(trace):
        _check_finite(tensor, name)
    if trace == 0.0:
        return None
    farms_grams = None
    if params["farms"]:
        farms_grams = _farms_grams(
            slices, params["farms_window"], params["farms_windows_per_dim"],
            params["farms_q_ratio"], scale,
        )
    return grams, farms_grams


def _fit_layer(row: dict, full_t, farms_t, mp_fit: bool):
    """Worker task: fits of one layer; fills ``row`` and returns (row, LayerSpectrum)."""
    import torch

    full_t = torch.sort(full_t.reshape(-1))[0]
    evals = full_t.cpu().numpy()
    plain = _fit_power_law(full_t)
    farms_fit = farms_evals = None
    if farms_t is not None:
        farms_t = torch.sort(farms_t.reshape(-1))[0]
        farms_evals = farms_t.cpu().numpy()
        farms_fit = _fit_power_law(farms_t)
    mp = _fit_mp(evals, row["N"], row["M"]) if mp_fit else None
    row.update(_row_metrics(evals, plain, farms_fit, mp))
    spectrum = LayerSpectrum(
        name=row["name"], evals=evals, plain=plain, farms_evals=farms_evals, farms=farms_fit,
        mp=mp,
    )
    return row, spectrum


_COLUMNS = [
    "name",
    "kind",
    "shape",
    "N",
    "M",
    "Q",
    "rf",
    "num_evals",
    "norm",
    "log_norm",
    "spectral_norm",
    "log_spectral_norm",
    "stable_rank",
    "alpha",
    "alpha_method",
    "alpha_weighted",
    "log_alpha_norm",
    "warning",
    "alpha_plain",
    "xmin_plain",
    "D_plain",
    "sigma_plain",
    "num_pl_spikes_plain",
    "alpha_weighted_plain",
    "alpha_farms",
    "xmin_farms",
    "D_farms",
    "sigma_farms",
    "num_pl_spikes_farms",
    "alpha_weighted_farms",
    "farms_windows",
    "farms_window",
    "sigma_mp",
    "bulk_min",
    "bulk_max",
    "num_spikes",
    "mp_softrank",
]


# --------------------------------------------------------------------------- private helpers


def _n_workers(n_jobs) -> int:
    """Worker threads for ``n_jobs`` (-1: usable cores; None: 1)."""
    if n_jobs is None:
        return 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or not (n_jobs == -1 or n_jobs >= 1):
        raise InvalidParameterError(f"n_jobs must be -1, None or an int >= 1; got {n_jobs!r}.")
    if n_jobs >= 1:
        return n_jobs
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _check_farms_params(window, windows_per_dim, q_ratio) -> None:
    if not isinstance(window, int) or isinstance(window, bool) or window < 2:
        raise InvalidParameterError(f"farms window must be an int >= 2; got {window!r}.")
    if (
        not isinstance(windows_per_dim, int)
        or isinstance(windows_per_dim, bool)
        or not 1 <= windows_per_dim <= 64
    ):
        raise InvalidParameterError(
            f"farms windows_per_dim must be an int in [1, 64]; got {windows_per_dim!r}."
        )
    if (
        not isinstance(q_ratio, (int, float))
        or isinstance(q_ratio, bool)
        or not 1.0 <= q_ratio <= 64.0
    ):
        raise InvalidParameterError(f"farms q_ratio must be a number in [1, 64]; got {q_ratio!r}.")


def _total_count(weights_iter) -> int:
    if isinstance(weights_iter, Mapping) or hasattr(weights_iter, "shapes"):
        return len(weights_iter)
    return 0


def _iterate(weights_iter) -> Iterable[tuple[str, Any]]:
    if isinstance(weights_iter, Mapping):
        return weights_iter.items()
    if isinstance(weights_iter, Iterable) and not isinstance(weights_iter, (str, bytes)):
        return _pairs(weights_iter)
    raise InvalidInputError(
        f"weights must be a ModelWeights, a mapping of names to tensors or an iterable of "
        f"(name, tensor) pairs; got {type(weights_iter).__name__}."
    )


def _pairs(iterable):
    for item in iterable:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise InvalidInputError(
                f"weights must yield (name, tensor) pairs; got {type(item).__name__}."
            )
        yield item


def _as_tensor(value, name: str):
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    raise InvalidInputError(
        f"{name} is a {type(value).__name__}, not a tensor; give torch tensors or numpy arrays."
    )


def _check_finite(tensor, name: str) -> None:
    import torch

    if not (tensor.dtype.is_floating_point or tensor.dtype.is_complex):
        raise InvalidInputError(
            f"{name} has dtype {tensor.dtype}; a weight must be floating point."
        )
    finite = torch.isfinite(tensor)
    if not bool(finite.all()):
        n_nan = int(torch.isnan(tensor).sum())
        n_inf = int(tensor.numel() - finite.sum()) - n_nan
        raise InvalidInputError(
            f"{name} {tuple(tensor.shape)} holds {n_nan} NaN and {n_inf} infinite values out of "
            f"{tensor.numel()}; the checkpoint is corrupt or training diverged. Analyse an "
            "earlier checkpoint or repair this tensor."
        )
    largest = float(tensor.abs().max()) if tensor.numel() else 0.0
    if largest > 1e150:
        raise InvalidInputError(
            f"{name} holds values up to {largest:.3g}, whose squares overflow float64; "
            "the checkpoint is corrupt or training diverged."
        )


def _shape_str(shape) -> str:
    return "x".join(str(s) for s in shape)


def _skip_reason(name: str, tensor, min_evals: int, max_evals: int | None) -> tuple[str, str]:
    """('' , kind) when the tensor is analysed, else (reason, '')."""
    leaf = name.rsplit(".", 1)[-1].lower()
    shape = tuple(tensor.shape)
    if not tensor.dtype.is_floating_point:
        return f"not floating point ({str(tensor.dtype).removeprefix('torch.')})", ""
    if not leaf.endswith("weight"):
        return "not a layer weight (name does not end in 'weight')", ""
    if "norm" in name.lower():
        return "normalisation layer", ""
    if tensor.ndim > 4:
        return f"{tensor.ndim}-D tensors are not analysed", ""
    if tensor.ndim == 2:
        kind = "embedding" if "embed" in name.lower() else "linear"
        m, rf = min(shape), 1
    else:
        a, b = (shape[0], shape[1]) if _channels_last(shape) else (shape[-2], shape[-1])
        kind = "conv1d" if tensor.ndim == 3 else "conv2d"
        m, rf = min(a, b), int(np.prod(shape)) // (a * b)
    if m * rf < min_evals:
        return f"{m * rf} eigenvalues < min_evals={min_evals}", ""
    if max_evals is not None and m * rf > max_evals:
        return f"{m * rf} eigenvalues > max_evals={max_evals}", ""
    return "", kind


def _channels_last(shape) -> bool:
    """PyTorch layout (out, in, k...) unless the kernel axes are larger (Keras)."""
    if len(shape) == 3:
        return shape[0] + shape[1] >= shape[2]
    return shape[0] + shape[1] >= shape[2] + shape[3]


def _slices(tensor):
    """(rf, a, b) stack of the 2-D matrices of a 2-4-D tensor (a view, same dtype)."""
    if tensor.ndim == 2:
        return tensor.unsqueeze(0)
    if _channels_last(tuple(tensor.shape)):
        a, b = tensor.shape[0], tensor.shape[1]
        return tensor.reshape(a, b, -1).permute(2, 0, 1)
    a, b = tensor.shape[-2], tensor.shape[-1]
    return tensor.reshape(-1, a, b)


def _gram_scale(tensor, conv2d_norm: bool) -> float:
    """1/2 for Conv2d kernels under ``conv2d_norm`` (slices scaled by sqrt(1/2),
    WeightWatcher's convention, applied exactly to the Gram matrix), else 1."""
    return 0.5 if conv2d_norm and tensor.ndim == 4 else 1.0


def _grams(stack, scale: float = 1.0):
    """(B, m, m) float64 Gram matrices on the smaller side of each (B, a, b) matrix.

    ``stack`` may have any floating dtype; it is cast to float64 here. On the CPU
    the cast goes in chunks of the long side (``_CAST_CHUNK`` values), each chunk's
    product accumulated, so a large matrix is never copied whole (a 30522 x 384
    embedding: 38 ms for the one-shot cast, most of it page faults), and numpy's
    matmul is used: it measured 1.5x faster than torch's for float64 here
    (30522 x 384: 0.33 s vs 0.54 s on one thread).
    """
    import torch

    tall = stack.shape[1] >= stack.shape[2]
    if stack.device.type != "cpu":
        stack = stack.to(torch.float64)
        grams = stack.transpose(1, 2) @ stack if tall else stack @ stack.transpose(1, 2)
        return grams * scale if scale != 1.0 else grams
    if not tall:
        stack = stack.transpose(1, 2)
    count, length, width = stack.shape
    rows = max(64, _CAST_CHUNK // max(1, count * width))
    grams = None
    for start in range(0, length, rows):
        piece = stack[:, start : start + rows].to(torch.float64).numpy()
        product = np.swapaxes(piece, 1, 2) @ piece
        if grams is None:
            grams = product
        else:
            grams += product
    if scale != 1.0:
        grams *= scale
    return torch.from_numpy(grams)


def _eigvalsh(batch):
    """Batched eigenvalues of symmetric matrices, clamped at 0 (round-off negatives).

    On the CPU numpy's LAPACK call is used: it measured 1.3-1.5x faster than
    ``torch.linalg.eigvalsh`` for 128-384 sized float64 matrices.
    """
    import torch

    if batch.device.type == "cpu":
        return torch.from_numpy(np.linalg.eigvalsh(batch.numpy())).clamp_min(0.0)
    return torch.linalg.eigvalsh(batch).clamp_min(0.0)


def _sorted_numpy(values) -> np.ndarray:
    import torch

    return torch.sort(values.reshape(-1))[0].cpu().numpy()


def _window_starts(length: int, size: int, count: int) -> list[int]:
    """``count`` evenly spaced starts from 0 to ``length - size`` (rounded half to even),
    duplicates removed."""
    if count == 1 or length == size:
        return [0]
    return sorted({int(v) for v in np.linspace(0, length - size, count).round()})


def _slice_shape(shape: tuple) -> tuple[int, int]:
    """(a, b): the shape of one matrix of :func:`_slices` for a tensor of ``shape``."""
    if len(shape) == 2 or not _channels_last(shape):
        return int(shape[-2]), int(shape[-1])
    return int(shape[0]), int(shape[1])


def _farms_layout(rows: int, cols: int, window: int, per_dim: int, q_ratio: float):
    """((long, short), row starts, column starts) of the FARMS windows of a
    ``rows x cols`` matrix with ``rows >= cols``."""
    short = max(1, min(window, cols, int(rows // q_ratio)))
    long = max(short, int(round(short * q_ratio)))
    return (long, short), _window_starts(rows, long, per_dim), _window_starts(cols, short, per_dim)


def _farms_grams(slices, window: int, per_dim: int, q_ratio: float, scale: float = 1.0):
    """(n_windows, short, short) Gram matrices of the FARMS windows of every slice.

    Each window is ``long x short`` with its long side along the longer axis of the
    matrix; its Gram matrix is ``WᵀW`` on the short side.
    """
    import torch

    if slices.shape[1] < slices.shape[2]:
        slices = slices.transpose(1, 2)
    (long, short), row_starts, col_starts = _farms_layout(
        slices.shape[1], slices.shape[2], window, per_dim, q_ratio
    )
    pieces = [slices[:, r : r + long, c : c + short] for r in row_starts for c in col_starts]
    return _grams(torch.cat(pieces, dim=0), scale)


class _PendingGrams:
    """Gram matrices waiting for one batched eigvalsh per size.

    On the CPU with a worker pool, each size's matrices are split into one batch per
    worker (contiguous runs of layers, balanced by matrix count) and decomposed in
    parallel.
    """

    def __init__(self, device: str, pool=None, workers: int = 1) -> None:
        self.device = device
        self.pool = pool if device.startswith("cpu") else None
        self.workers = workers if self.pool is not None else 1
        self.groups: dict[int, list[tuple[tuple, Any]]] = {}
        self.results: dict[tuple, list] = {}
        self.nbytes = 0

    def add(self, key: tuple, grams) -> None:
        self.groups.setdefault(int(grams.shape[-1]), []).append((key, grams))
        self.nbytes += grams.numel() * grams.element_size()

    def flush(self) -> None:
        import torch

        for items in self.groups.values():
            parts = _split_items(items, self.workers)
            if self.pool is None:
                evals = [_eigvalsh_items(part) for part in parts]
            else:
                evals = list(self.pool.map(_eigvalsh_items, parts))
            for part, values in zip(parts, evals, strict=True):
                for (key, _), chunk in zip(part, values, strict=True):
                    self.results.setdefault(key, []).append(chunk.reshape(-1))
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        self.groups = {}
        self.nbytes = 0

    def result(self, key: tuple):
        import torch

        return torch.cat(self.results.pop(key))


def _split_items(items: list, parts: int) -> list[list]:
    """``items`` ((key, (B, m, m) Grams) pairs, in order) cut into at most ``parts``
    contiguous runs of equal matrix counts (up to one); a layer's Grams are cut
    between runs where needed, its pieces staying in order."""
    total = sum(int(grams.shape[0]) for _, grams in items)
    size = -(-total // max(1, parts))
    if parts <= 1 or size >= total:
        return [items]
    runs: list[list] = [[]]
    room = size
    for key, grams in items:
        start = 0
        while start < grams.shape[0]:
            if room == 0:
                runs.append([])
                room = size
            take = min(room, int(grams.shape[0]) - start)
            runs[-1].append((key, grams[start : start + take]))
            start += take
            room -= take
    return runs


def _eigvalsh_items(items: list) -> list:
    """Eigenvalues of each item's Gram matrices: a list of (B, m) tensors.

    Items holding several matrices are decomposed as they are; single matrices are
    stacked into one batch first (no copy of the large FARMS stacks, and numpy
    releases the GIL only for batches).
    """
    import torch

    evals: list = [None] * len(items)
    singles = [i for i, (_, grams) in enumerate(items) if grams.shape[0] == 1]
    for i, (_, grams) in enumerate(items):
        if grams.shape[0] > 1 or len(singles) == 1:
            evals[i] = _eigvalsh(grams)
    if len(singles) > 1:
        batch = _eigvalsh(torch.cat([items[i][1] for i in singles], dim=0))
        for row, i in enumerate(singles):
            evals[i] = batch[row : row + 1]
    return evals


def _fit_power_law(sorted_evals) -> PowerLawFit:
    """Core fit on ascending float64 eigenvalues (a torch tensor)."""
    import torch

    x = sorted_evals[sorted_evals > EVALS_THRESH]
    n = int(x.numel())
    if n < 2:
        return PowerLawFit(float("nan"), float("nan"), float("nan"), float("nan"), 0, n)
    log_x = torch.log(x)
    suffix = torch.flip(torch.cumsum(torch.flip(log_x, [0]), 0), [0])
    tail = torch.arange(n, 1, -1, device=x.device, dtype=torch.float64)  # n - i, i < n-1
    denom = suffix[:-1] - tail * log_x[:-1]
    alpha = 1.0 + tail / denom
    valid = (denom > 0) & (alpha > 1.0)
    if n <= _KS_PRUNE_ABOVE:
        distance = _ks_exact(log_x, alpha, tail, valid, torch.arange(n - 1, device=x.device))
    else:
        distance = _ks_pruned(log_x, alpha, tail, valid)
    best = int(torch.argmin(distance))
    a = float(alpha[best])
    k = int(tail[best])
    return PowerLawFit(
        alpha=a,
        xmin=float(x[best]),
        D=float(distance[best]),
        sigma=(a - 1.0) / math.sqrt(k),
        num_pl_spikes=k,
        n_fitted=n,
    )


def _ks_exact(log_x, alpha, tail, valid, candidates):
    """KS distance for the candidate xmin indices (others get 1, like WeightWatcher)."""
    import torch

    n = log_x.numel()
    distance = torch.ones(n - 1, dtype=torch.float64, device=log_x.device)
    candidates = candidates[valid[candidates]]
    if candidates.numel() == 0:
        return distance
    j = torch.arange(n, device=log_x.device)
    rows = max(1, _KS_CHUNK // n)
    for start in range(0, candidates.numel(), rows):
        idx = candidates[start : start + rows]
        first = int(idx.min())  # columns before the first candidate are all masked
        offset = (j[None, first:] - idx[:, None]).to(torch.float64)
        theoretical = 1.0 - torch.exp(
            (1.0 - alpha[idx, None]) * (log_x[None, first:] - log_x[idx, None])
        )
        gap = (theoretical - offset / tail[idx, None]).abs()
        gap = torch.where(offset >= 0, gap, torch.zeros((), dtype=gap.dtype, device=gap.device))
        distance[idx] = gap.amax(dim=1)
    return distance


def _ks_pruned(log_x, alpha, tail, valid):
    """Same minimiser as the exact scan, with far fewer evaluations.

    Each candidate's D is bracketed on a grid of ``g`` points spread over its own
    tail (the candidate and the largest eigenvalue included). Between two grid points
    a < b both the fitted CDF F and the empirical CDF S are non-decreasing, so
    |F_j - S_j| <= max(F_b - S_a, S_b - F_a) there, while the largest |F - S| on the
    grid is a lower bound. A candidate whose lower bound exceeds the best upper bound
    cannot be the minimiser; the rest go to a finer grid, then to the exact scan.
    """
    import torch

    n = log_x.numel()
    device = log_x.device
    candidates = torch.nonzero(valid).reshape(-1)
    best_upper = torch.tensor(float("inf"), dtype=torch.float64, device=device)
    for points in _KS_GRID_LEVELS:
        if candidates.numel() * n <= _KS_CHUNK * 4:
            break
        lower, upper = _ks_bounds(log_x, alpha, tail, candidates, points)
        best_upper = torch.minimum(best_upper, upper.min())
        candidates = candidates[lower <= best_upper]
    distance = torch.ones(n - 1, dtype=torch.float64, device=device)
    exact = _ks_exact(log_x, alpha, tail, valid, candidates)
    distance[candidates] = exact[candidates]
    return distance


def _ks_bounds(log_x, alpha, tail, candidates, points: int):
    """Lower and upper bounds of D for each candidate from ``points`` tail positions."""
    import torch

    device = log_x.device
    fraction = torch.linspace(0.0, 1.0, points, dtype=torch.float64, device=device)
    lowers, uppers = [], []
    rows = max(1, _KS_CHUNK // points)
    for start in range(0, candidates.numel(), rows):
        idx = candidates[start : start + rows]
        k = tail[idx]
        offset = torch.floor(fraction[None, :] * (k[:, None] - 1.0))  # 0 .. k-1
        j = idx[:, None] + offset.to(torch.long)
        fitted = 1.0 - torch.exp((1.0 - alpha[idx, None]) * (log_x[j] - log_x[idx, None]))
        empirical = offset / k[:, None]
        lower = (fitted - empirical).abs().amax(dim=1)
        gap = torch.maximum(fitted[:, 1:] - empirical[:, :-1], empirical[:, 1:] - fitted[:, :-1])
        upper = torch.maximum(gap.amax(dim=1), lower)
        lowers.append(lower)
        uppers.append(upper)
    return torch.cat(lowers), torch.cat(uppers)


def _linear_kde(points: np.ndarray, grid: np.ndarray, bandwidth: float) -> np.ndarray:
    """Linear-kernel density (1/(n h)) Σ max(0, 1 - |x - p|/h), exact, O((n + G) log n).

    Equals scikit-learn's ``KernelDensity(kernel="linear")`` in one dimension.
    """
    pts = np.sort(points)
    csum = np.concatenate([[0.0], np.cumsum(pts)])
    lo = np.searchsorted(pts, grid - bandwidth, side="left")
    mid = np.searchsorted(pts, grid, side="right")
    hi = np.searchsorted(pts, grid + bandwidth, side="right")
    left = (mid - lo) * grid - (csum[mid] - csum[lo])  # Σ (x - p) for p in [x-h, x]
    right = (csum[hi] - csum[mid]) - (hi - mid) * grid  # Σ (p - x) for p in (x, x+h]
    total = (hi - lo) - (left + right) / bandwidth
    return np.maximum(total, 0.0) / (pts.size * bandwidth)


def _fit_mp(evals: np.ndarray, n_rows: int, n_cols: int) -> MPFit:
    """WeightWatcher's mp_fit on ascending eigenvalues; see fit_marchenko_pastur."""
    from scipy import optimize

    q = n_rows / n_cols
    w_scale2 = evals.size / float(np.sum(evals))
    scaled = evals * w_scale2
    lambda_max = float(scaled.max())
    sigma0 = math.sqrt(lambda_max / (1.0 + 1.0 / math.sqrt(q)) ** 2)
    to_fit = np.sqrt(scaled) if q == 1 else scaled
    grid = np.linspace(0.0, float(to_fit.max()) + 0.5, _KDE_POINTS)
    density = _linear_kde(to_fit, grid, _KDE_BANDWIDTH)
    keep = density > _KDE_FLOOR
    x, y = grid[keep], density[keep]
    x_peak = x[np.argmax(y)] if x.size else 0.0
    x_top = x.max() if x.size else 0.0

    def residual(p) -> float:
        sigma = np.asarray(p, dtype=np.float64)
        with np.errstate(all="ignore"):
            if q == 1:
                model = np.nan_to_num((1.0 / (np.pi * sigma * sigma)) * np.sqrt(4.0 - x**2))
            else:
                b = (sigma * (1.0 + np.sqrt(1.0 / q))) ** 2
                a = (sigma * (1.0 - np.sqrt(1.0 / q))) ** 2
                if bool(np.any((b < x_peak) | (b > x_top) | (a > x_peak))):
                    return float(np.sum(np.full(x.size, 1000.0) ** 2))
                model = np.nan_to_num(
                    (1.0 / (2 * np.pi * sigma * sigma * x * (1.0 / q))) * np.sqrt((b - x) * (x - a))
                )
        return float(np.sum((model - y) ** 2))

    ranges = (slice(0.05 * sigma0, 2.0 * sigma0, 0.01 * sigma0),)
    best = optimize.brute(residual, ranges, full_output=True)[0]
    sigma = float(np.asarray(best).ravel()[0])
    bulk_max = (sigma * (1.0 + 1.0 / math.sqrt(q))) ** 2
    bulk_min = (sigma * (1.0 - 1.0 / math.sqrt(q))) ** 2
    tracy_widom = 1.0 / math.sqrt(q) * bulk_max ** (2.0 / 3.0) * n_cols ** (-2.0 / 3.0)
    num_spikes = int(np.sum(scaled > bulk_max + math.sqrt(tracy_widom)))
    return MPFit(
        sigma_mp=sigma,
        bulk_min=bulk_min / w_scale2,
        bulk_max=bulk_max / w_scale2,
        num_spikes=num_spikes,
        mp_softrank=bulk_max / lambda_max,
        w_scale=math.sqrt(w_scale2),
        Q=q,
    )


def _row_metrics(
    evals: np.ndarray, plain: PowerLawFit, farms_fit: PowerLawFit | None, mp: MPFit | None
) -> dict:
    norm = float(np.sum(evals))
    spectral = float(evals[-1])
    log_spectral = math.log10(spectral) if spectral > 0 else float("nan")
    chosen = farms_fit if farms_fit is not None else plain
    alpha = chosen.alpha
    row = {
        "norm": norm,
        "log_norm": math.log10(norm) if norm > 0 else float("nan"),
        "spectral_norm": spectral,
        "log_spectral_norm": log_spectral,
        "stable_rank": norm / spectral if spectral > 0 else float("nan"),
        "alpha": alpha,
        "alpha_method": "farms" if farms_fit is not None else "plain",
        "alpha_weighted": alpha * log_spectral,
        "log_alpha_norm": _log_alpha_norm(evals, alpha),
        "warning": _warning(plain.alpha),
        "alpha_plain": plain.alpha,
        "xmin_plain": plain.xmin,
        "D_plain": plain.D,
        "sigma_plain": plain.sigma,
        "num_pl_spikes_plain": plain.num_pl_spikes,
        "alpha_weighted_plain": plain.alpha * log_spectral,
    }
    if farms_fit is not None:
        row.update(
            {
                "alpha_farms": farms_fit.alpha,
                "xmin_farms": farms_fit.xmin,
                "D_farms": farms_fit.D,
                "sigma_farms": farms_fit.sigma,
                "num_pl_spikes_farms": farms_fit.num_pl_spikes,
                "alpha_weighted_farms": farms_fit.alpha * log_spectral,
            }
        )
    if mp is not None:
        row.update(
            {
                "sigma_mp": mp.sigma_mp,
                "bulk_min": mp.bulk_min,
                "bulk_max": mp.bulk_max,
                "num_spikes": mp.num_spikes,
                "mp_softrank": mp.mp_softrank,
            }
        )
    return row


def _log_alpha_norm(evals: np.ndarray, alpha: float) -> float:
    if not np.isfinite(alpha):
        return float("nan")
    positive = evals[evals > 0]
    if positive.size == 0:
        return float("nan")
    # log10 Σ λ^alpha, summed in log space so large alphas do not overflow
    logs = alpha * np.log(positive)
    top = logs.max()
    return float((top + np.log(np.sum(np.exp(logs - top)))) / np.log(10.0))


def _warning(alpha: float) -> str:
    if not np.isfinite(alpha):
        return "fit failed"
    if alpha < _OVER_TRAINED:
        return "over-trained"
    if alpha > _UNDER_TRAINED:
        return "under-trained"
    return ""
