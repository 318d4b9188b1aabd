"""Location encoders: spherical harmonics, double-Fourier-sphere baselines, SIREN.

A location encoder maps a point on the Earth, given as ``latitude`` and
``longitude`` in degrees, to a vector. It has two parts (Rußwurm et al. 2024):
a fixed *positional encoding* (spherical harmonics ``"sh"`` or one of the
double-Fourier-sphere baselines) and a trained network, here a SIREN. The last
hidden layer of the trained network is the location embedding.

Latitude and longitude are always passed by name: the libraries this module
follows disagree on their order (SatCLIP and locationencoder take
``(lon, lat)``, global-land-mask and GeoCLIP ``(lat, lon)``).
"""

from __future__ import annotations

import json
import math
import pickle
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from backend.device import resolve_device
from backend.params import Param, ParamSpec
from backend.errors import InvalidInputError, InvalidParameterError

__all__ = [
    "DFS_ENCODERS",
    "ENCODERS",
    "LocationEncoder",
    "SatCLIPLocationEncoder",
    "SirenNet",
    "load_satclip_location_encoder",
    "positional_encoding",
    "spherical_harmonics",
]

#: Positional encodings understood by :func:`positional_encoding`.
ENCODERS = ("sh", "direct", "cartesian3d", "wrap", "grid", "theory", "spherec", "spherecplus")
#: The double-Fourier-sphere baselines among them.
DFS_ENCODERS = ("wrap", "grid", "theory", "spherec", "spherecplus")
_TASKS = ("classification", "regression")
_MAX_EXAMPLES = 5
_CHUNK_VALUES = 1 << 22  # float64 values per encoding chunk (32 MiB)


def _chunks(n_rows: int, n_features: int) -> list[slice]:
    """Row slices that keep each encoded chunk near 32 MiB."""
    step = max(1024, _CHUNK_VALUES // max(n_features, 1))
    return [slice(first, first + step) for first in range(0, n_rows, step)]


# ----------------------------------------------------------------------------
# input checks


def _check_coordinates(latitude: Any, longitude: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return latitude/longitude as float64 1-D arrays or raise with counts and examples."""
    try:
        lat = np.array(latitude, dtype=np.float64)  # a writable copy: torch refuses read-only views
        lon = np.array(longitude, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"latitude and longitude must be numeric arrays in degrees; conversion failed: {exc}"
        ) from None
    if lat.ndim != 1 or lon.ndim != 1 or lat.shape != lon.shape:
        raise InvalidInputError(
            "latitude and longitude must be 1-D arrays of the same length; got shapes "
            f"{lat.shape} and {lon.shape}."
        )
    if lat.size == 0:
        raise InvalidInputError("latitude and longitude are empty; pass at least one point.")
    problems = []
    for name, values, bound in (("latitude", lat, 90.0), ("longitude", lon, 180.0)):
        bad = ~np.isfinite(values) | (np.abs(values) > bound)
        if bad.any():
            rows = np.flatnonzero(bad)[:_MAX_EXAMPLES]
            examples = ", ".join(f"row {i}: ({lat[i]:g}, {lon[i]:g})" for i in rows)
            problems.append(
                f"{int(bad.sum())} of {values.size} {name} values are missing or outside "
                f"[-{bound:g}, {bound:g}] (examples as (latitude, longitude): {examples})"
            )
    if problems:
        raise InvalidInputError(
            "; ".join(problems) + ". Validate the table with backend.datasets.validate_lat_lon, which wraps "
            "longitudes into [-180, 180) and reports swapped columns."
        )
    return lat, lon


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InvalidParameterError(f"{name} must be an integer >= {low}; got {value!r}.")
    return int(value)


def _check_float(name: str, value: Any, low: float, *, low_open: bool, high: float | None = None) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = math.isfinite(value) and (value > low if low_open else value >= low)
        ok = ok and (high is None or value < high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {'inf' if high is None else f'{high:g}'})"
        raise InvalidParameterError(f"{name} must be a number in {interval}; got {value!r}.")
    return float(value)


def _check_encoder(encoder: Any) -> str:
    if encoder not in ENCODERS:
        raise InvalidParameterError(f"encoder must be one of {list(ENCODERS)}; got {encoder!r}.")
    return encoder


# ----------------------------------------------------------------------------
# spherical harmonics


def _legendre_coefficients(degree: int, dtype: torch.dtype, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Coefficients a[l, m], b[l, m] of the orthonormal associated-Legendre recurrence.

    ``P[l, m] = a[l, m] * (x * P[l-1, m] - b[l, m] * P[l-2, m])`` for ``m < l``.
    """
    ell = torch.arange(degree, dtype=torch.float64)[:, None]
    m = torch.arange(degree, dtype=torch.float64)[None, :]
    a = torch.where(m < ell, torch.sqrt((4 * ell**2 - 1) / (ell**2 - m**2).clamp(min=1)), 0.0)
    b = torch.where(
        m < ell - 1,
        torch.sqrt(((ell - 1) ** 2 - m**2).clamp(min=0) / (4 * (ell - 1) ** 2 - 1).clamp(min=1)),
        0.0,
    )
    return a.to(device=device, dtype=dtype), b.to(device=device, dtype=dtype)


def _sh_kernel(lat_rad: torch.Tensor, lon_rad: torch.Tensor, degree: int) -> torch.Tensor:
    """Real orthonormal spherical harmonics, degrees ``0..degree-1``; pure kernel.

    ``lat_rad``, ``lon_rad``: shape ``(n,)``, radians, float64. Returns
    ``(n, degree**2)`` with column ``l*l + l + m`` (a transposed view of a
    ``(degree**2, n)`` buffer: writing whole rows of it is the fast layout).
    """
    n = lat_rad.shape[0]
    x = torch.sin(lat_rad)  # cos(colatitude)
    s = torch.cos(lat_rad).clamp(min=0.0)  # sin(colatitude) >= 0
    a, b = _legendre_coefficients(degree, lat_rad.dtype, lat_rad.device)
    orders = torch.arange(1, degree, dtype=lat_rad.dtype, device=lat_rad.device)
    angle = orders[:, None] * lon_rad[None, :]  # (degree - 1, n), orders 1..L-1
    cos_m, sin_m = torch.cos(angle), torch.sin(angle)

    root2 = math.sqrt(2.0)
    out = torch.empty(degree * degree, n, dtype=lat_rad.dtype, device=lat_rad.device)
    p_prev2 = torch.zeros(degree, n, dtype=lat_rad.dtype, device=lat_rad.device)  # P[l-2, m]
    p_prev1 = torch.zeros_like(p_prev2)  # P[l-1, m]
    p_prev1[0] = 1.0 / math.sqrt(4.0 * math.pi)
    diagonal = p_prev1[0]  # P[m, m]
    out[0] = diagonal
    for ell in range(1, degree):
        p = torch.zeros_like(p_prev1)  # row l-1 of p_prev2 is read (times b = 0): keep it 0
        # orders 0..l-1: three-term recurrence in l; order l: sectoral recurrence
        p[:ell] = a[ell, :ell, None] * (x * p_prev1[:ell] - b[ell, :ell, None] * p_prev2[:ell])
        diagonal = math.sqrt((2 * ell + 1) / (2 * ell)) * s * diagonal
        p[ell] = diagonal
        centre = ell * ell + ell  # row of m = 0
        positive = root2 * p[1 : ell + 1]  # orders 1..l
        out[centre - ell : centre] = (positive * sin_m[:ell]).flip(0)  # m = -l..-1
        out[centre] = p[0]
        out[centre + 1 : centre + ell + 1] = positive * cos_m[:ell]  # m = 1..l
        p_prev2, p_prev1 = p_prev1, p
    return out.T


def spherical_harmonics(
    latitude: Any,
    longitude: Any,
    degree: int = 10,
    *,
    device: str | None = None,
) -> torch.Tensor:
    r"""Real orthonormal spherical harmonics of points on the sphere.

    Parameters
    ----------
    latitude : array-like of shape (n_samples,)
        Latitudes in degrees, in [-90, 90].
    longitude : array-like of shape (n_samples,)
        Longitudes in degrees, in [-180, 180].
    degree : int, default=10
        L, the number of Legendre degrees: l = 0, ..., L-1 are used, giving
        L² features. This is the ``legendre_polys`` L of Rußwurm et al. and of
        the SatCLIP checkpoints (L = 10 gives 100 features, L = 40 gives 1,600).
    device : str or None, default=None
        Torch device, resolved by :func:`backend.device.resolve_device`.

    Returns
    -------
    torch.Tensor of shape (n_samples, degree**2), float64
        Column ``l*l + l + m`` holds :math:`Y_l^m` for m = -l..l.

    Raises
    ------
    InvalidInputError
        If a coordinate is missing or out of range.
    InvalidParameterError
        If ``degree < 1`` or the device is unknown.

    Notes
    -----
    With colatitude :math:`\theta = 90° - \text{latitude}` and azimuth
    :math:`\varphi = \text{longitude}` (radians),

    .. math::

        Y_l^m = \begin{cases}
            \sqrt{2}\,\bar P_l^{m}(\cos\theta)\cos(m\varphi) & m > 0 \\
            \bar P_l^{0}(\cos\theta) & m = 0 \\
            \sqrt{2}\,\bar P_l^{|m|}(\cos\theta)\sin(|m|\varphi) & m < 0
        \end{cases},
        \qquad
        \bar P_l^m = \sqrt{\tfrac{2l+1}{4\pi}\tfrac{(l-m)!}{(l+m)!}}\;P_l^m ,

    where :math:`P_l^m` carries **no** Condon–Shortley phase. The basis is
    orthonormal on the unit sphere: :math:`\int Y_i Y_j \, d\Omega = \delta_{ij}`.
    Relation to SciPy (which includes the phase :math:`(-1)^m`):
    ``Y_l^m = sqrt(2) * (-1)**m * Re(sph_harm_y(l, m, theta, phi))`` for m > 0,
    ``sqrt(2) * (-1)**|m| * Im(sph_harm_y(l, |m|, theta, phi))`` for m < 0 and
    ``Re(sph_harm_y(l, 0, theta, phi))`` for m = 0.

    :math:`\bar P_l^m` is computed in float64 by the standard stable recurrence
    of fully normalised associated Legendre functions (sectoral terms
    :math:`\bar P_m^m \propto \sin^m\theta`, then three-term recurrence in l),
    with :math:`\cos\theta = \sin(\text{lat})` and :math:`\sin\theta = \cos(\text{lat})`
    taken directly from the latitude; no factorials, no division by
    :math:`\sin\theta`, so there is no NaN at or near the poles for any L.

    References
    ----------
    Rußwurm, Klemmer, Rolf, Zbinden, Tuia, "Geographic Location Encoding with
    Spherical Harmonics and Sinusoidal Representation Networks", ICLR 2024,
    arXiv:2310.06743, eq. 2-4; reference code ``MarcCoru/locationencoder``.
    Holmes & Featherstone, "A unified approach to the Clenshaw summation and the
    recursive computation of very high degree and order normalised associated
    Legendre functions", J. Geodesy 76 (2002), eq. 11-13.

    Examples
    --------
    >>> Y = spherical_harmonics([48.85], [2.35], degree=3)
    >>> tuple(Y.shape)
    (1, 9)
    """
    degree = _check_int("degree", degree, 1)
    lat, lon = _check_coordinates(latitude, longitude)
    dev = resolve_device(device).device
    lat_t = torch.deg2rad(torch.as_tensor(lat, dtype=torch.float64, device=dev))
    lon_t = torch.deg2rad(torch.as_tensor(lon, dtype=torch.float64, device=dev))
    return _sh_kernel(lat_t, lon_t, degree)


# ----------------------------------------------------------------------------
# double-Fourier-sphere baselines and simple encodings


def _dfs_frequencies(degree: int, frequency_num: int, dtype: torch.dtype, device: str) -> torch.Tensor:
    """Angular frequencies, geometric from 1 (period 360°) to ``max(degree - 1, 1)``."""
    highest = max(degree - 1, 1)
    return torch.as_tensor(np.geomspace(1.0, highest, frequency_num), dtype=dtype, device=device)


def _encode_kernel(
    lat_rad: torch.Tensor, lon_rad: torch.Tensor, encoder: str, degree: int, frequency_num: int
) -> torch.Tensor:
    """Positional encoding of radians; pure kernel (float64 in, float64 out)."""
    if encoder == "sh":
        return _sh_kernel(lat_rad, lon_rad, degree)
    if encoder == "direct":
        return torch.stack([lon_rad, lat_rad], dim=1)
    if encoder == "cartesian3d":
        c = torch.cos(lat_rad)
        return torch.stack([c * torch.cos(lon_rad), c * torch.sin(lon_rad), torch.sin(lat_rad)], dim=1)
    if encoder == "wrap":
        return torch.stack(
            [torch.cos(lon_rad), torch.sin(lon_rad), torch.cos(lat_rad), torch.sin(lat_rad)], dim=1
        )
    w = _dfs_frequencies(degree, frequency_num, lat_rad.dtype, lat_rad.device)
    lam = lon_rad[:, None] * w  # (n, S)
    phi = lat_rad[:, None] * w
    if encoder == "grid":
        parts = [torch.sin(lam), torch.cos(lam), torch.sin(phi), torch.cos(phi)]
    elif encoder == "theory":
        parts = []
        for angle in (0.0, 2 * math.pi / 3, 4 * math.pi / 3):
            projection = math.cos(angle) * lam + math.sin(angle) * phi
            parts += [torch.sin(projection), torch.cos(projection)]
    elif encoder == "spherec":
        parts = [torch.sin(phi), torch.cos(phi) * torch.cos(lam), torch.cos(phi) * torch.sin(lam)]
    else:  # spherecplus
        parts = [
            torch.sin(phi), torch.cos(phi), torch.sin(lam), torch.cos(lam),
            torch.cos(phi) * torch.cos(lam), torch.cos(phi) * torch.sin(lam),
        ]  # fmt: skip
    return torch.cat(parts, dim=1)


def _encoding_dim(encoder: str, degree: int, frequency_num: int) -> int:
    per_frequency = {"grid": 4, "theory": 6, "spherec": 3, "spherecplus": 6}
    fixed = {"sh": degree * degree, "direct": 2, "cartesian3d": 3, "wrap": 4}
    return fixed[encoder] if encoder in fixed else per_frequency[encoder] * frequency_num


def positional_encoding(
    latitude: Any,
    longitude: Any,
    *,
    encoder: str = "sh",
    degree: int = 10,
    frequency_num: int = 16,
    device: str | None = None,
) -> torch.Tensor:
    r"""Fixed positional encoding of points given in degrees.

    Parameters
    ----------
    latitude : array-like of shape (n_samples,)
        Latitudes in degrees, in [-90, 90].
    longitude : array-like of shape (n_samples,)
        Longitudes in degrees, in [-180, 180].
    encoder : {"sh", "direct", "cartesian3d", "wrap", "grid", "theory", "spherec", "spherecplus"}, default="sh"
        ``"sh"``: :func:`spherical_harmonics`. ``"direct"``: (λ, φ) in radians.
        ``"cartesian3d"``: the unit vector. The double-Fourier-sphere (DFS) baselines
        apply sines and cosines to longitude λ and latitude φ (radians) at S
        angular frequencies ω_s:
        ``"wrap"`` (Mac Aodha et al. 2019): cos λ, sin λ, cos φ, sin φ (4 features);
        ``"grid"`` (Space2Vec, Mai et al. 2020): sin/cos of ω_s λ and ω_s φ (4S);
        ``"theory"`` (Space2Vec): sin/cos of ω_s⟨(λ, φ), a_k⟩ for three unit
        vectors a_k 120° apart (6S);
        ``"spherec"`` (Sphere2Vec, Mai et al. 2023): sin ω_sφ, cos ω_sφ cos ω_sλ,
        cos ω_sφ sin ω_sλ (3S);
        ``"spherecplus"``: spherec plus sin/cos of ω_sφ and ω_sλ (6S).
    degree : int, default=10
        For ``"sh"``: L (L² features, see :func:`spherical_harmonics`). For the
        multi-frequency DFS encoders it sets the same resolution: the highest
        frequency is ``max(degree - 1, 1)``, the highest order of the L-degree
        harmonics.
    frequency_num : int, default=16
        S, the number of frequencies of ``"grid"``, ``"theory"``, ``"spherec"``
        and ``"spherecplus"``, spaced geometrically from 1 (period 360°) to the
        highest frequency. Ignored by the other encoders.
    device : str or None, default=None
        Torch device, resolved by :func:`backend.device.resolve_device`.

    Returns
    -------
    torch.Tensor of shape (n_samples, n_features), float64

    Raises
    ------
    InvalidInputError
        If a coordinate is missing or out of range.
    InvalidParameterError
        If ``encoder`` is unknown or ``degree``/``frequency_num`` is below 1.

    Notes
    -----
    The DFS encoders take radians. The reference implementation
    (``MarcCoru/locationencoder``) feeds degrees to the Space2Vec/Sphere2Vec
    encoders (its issue #5); we do not reproduce that.

    References
    ----------
    Rußwurm et al., ICLR 2024, arXiv:2310.06743, section 3 and appendix A.
    Mai et al., "Multi-Scale Representation Learning for Spatial Feature
    Distributions using Grid Cells", ICLR 2020 (grid, theory).
    Mai et al., "Sphere2Vec", ISPRS J. 2023, arXiv:2201.10489, eq. 4 and 10.
    """
    encoder = _check_encoder(encoder)
    degree = _check_int("degree", degree, 1)
    frequency_num = _check_int("frequency_num", frequency_num, 1)
    lat, lon = _check_coordinates(latitude, longitude)
    dev = resolve_device(device).device
    lat_t = torch.deg2rad(torch.as_tensor(lat, dtype=torch.float64, device=dev))
    lon_t = torch.deg2rad(torch.as_tensor(lon, dtype=torch.float64, device=dev))
    return _encode_kernel(lat_t, lon_t, encoder, degree, frequency_num)


# ----------------------------------------------------------------------------
# SIREN


class _SineLayer(nn.Module):
    """``sin(w0 * (x W^T + b))`` with the SIREN initialisation."""

    def __init__(self, dim_in: int, dim_out: int, w0: float, *, is_first: bool, dropout: float) -> None:
        super().__init__()
        self.w0 = w0
        self.dropout = dropout
        self.weight = nn.Parameter(torch.empty(dim_out, dim_in))
        self.bias = nn.Parameter(torch.empty(dim_out))
        self._bound = 1.0 / dim_in if is_first else math.sqrt(6.0 / dim_in) / w0

    def reset_parameters(self, generator: torch.Generator | None) -> None:
        with torch.no_grad():
            self.weight.uniform_(-self._bound, self._bound, generator=generator)
            self.bias.uniform_(-self._bound, self._bound, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = nn.functional.linear(x, self.weight, self.bias)
        if self.dropout > 0:
            out = nn.functional.dropout(out, p=self.dropout, training=self.training)
        return torch.sin(self.w0 * out)


class SirenNet(nn.Module):
    r"""Sinusoidal representation network (SIREN) with a linear output layer.

    Parameters
    ----------
    dim_in : int
        Input features (the positional encoding's width).
    dim_hidden : int
        Width of every hidden layer; the location embedding has this size.
    dim_out : int
        Outputs (classes or regression targets).
    num_layers : int
        Number of hidden sine layers.
    w0 : float, default=1.0
        Frequency factor of the hidden layers after the first.
    w0_initial : float, default=30.0
        Frequency factor of the first layer.
    dropout : float, default=0.0
        Dropout probability before each sine (training only).
    generator : torch.Generator or None, default=None
        Source of the initial weights, for reproducibility.

    Notes
    -----
    Hidden layer :math:`h_{k+1} = \sin(w_k (W_k h_k + b_k))`; output
    :math:`W h_K + b`. Initialisation: first layer U(±1/dim_in), later layers
    and the output layer U(±√(6/dim_in)/w0). Parameter names (``layers.i.weight``,
    ``layers.i.bias``, ``last_layer.weight``, ``last_layer.bias``) match
    SatCLIP's ``SirenNet``, so its state dict loads as is.

    References
    ----------
    Sitzmann et al., "Implicit Neural Representations with Periodic Activation
    Functions", NeurIPS 2020, arXiv:2006.09661, section 3.2 (initialisation);
    ``microsoft/satclip`` ``satclip/location_encoder.py`` (structure).
    """

    def __init__(
        self,
        dim_in: int,
        dim_hidden: int,
        dim_out: int,
        num_layers: int,
        *,
        w0: float = 1.0,
        w0_initial: float = 30.0,
        dropout: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            _SineLayer(
                dim_in if k == 0 else dim_hidden,
                dim_hidden,
                w0_initial if k == 0 else w0,
                is_first=k == 0,
                dropout=dropout,
            )
            for k in range(num_layers)
        )
        self.last_layer = nn.Linear(dim_hidden, dim_out)
        for layer in self.layers:
            layer.reset_parameters(generator)
        bound = math.sqrt(6.0 / dim_hidden) / w0
        with torch.no_grad():
            self.last_layer.weight.uniform_(-bound, bound, generator=generator)
            self.last_layer.bias.uniform_(-bound, bound, generator=generator)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Output of the last hidden layer, shape ``(n, dim_hidden)``."""
        for layer in self.layers:
            x = layer(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last_layer(self.embed(x))


# ----------------------------------------------------------------------------
# trainer


PARAMS = ParamSpec(
    Param("encoder", str, "sh", choices=tuple(ENCODERS), label="Positional encoding",
          help="Spherical harmonics, a double-Fourier-sphere baseline, 3-D Cartesian or raw."),
    Param("degree", int, 10, low=1, high=40, label="Degree L",
          help="Spherical harmonics of degrees 0..L-1 (L² features); sets the highest frequency "
               "of the DFS encodings too."),
    Param("hidden", int, 64, low=1, high=1024, label="Embedding size (hidden)",
          help="Width of the SIREN's hidden layers: the location embedding's dimension."),
    Param("n_layers", int, 2, low=1, high=8, help="Hidden layers of the SIREN."),
    Param("frequency_num", int, 16, low=1, high=256, help="Frequencies of the DFS encodings."),
    Param("w0_initial", float, 30.0, low=0.0, low_open=True, high=1000.0,
          help="SIREN frequency of the first layer."),
    Param("w0", float, 1.0, low=0.0, low_open=True, high=1000.0,
          help="SIREN frequency of the other layers."),
    Param("dropout", float, 0.0, low=0.0, high=1.0, high_open=True, help="Dropout rate."),
    Param("learning_rate", float, 1e-3, low=0.0, low_open=True, high=1.0,
          help="Adam's learning rate."),
    Param("weight_decay", float, 1e-4, low=0.0, high=1.0, help="Adam's weight decay."),
    Param("max_epochs", int, 200, low=1, high=5000, label="Epochs (at most)",
          help="Training stops early when the held-out part stops improving."),
    Param("batch_size", int, 1024, low=1, high=1_000_000, help="Rows per optimisation step."),
    Param("early_stopping", bool, True, help="Stop when the validation loss stops improving."),
    Param("validation_fraction", float, 0.1, low=0.0, high=1.0, low_open=True, high_open=True,
          help="Share of the rows held out for early stopping."),
    Param("n_iter_no_change", int, 20, low=1, high=10_000,
          help="Epochs without improvement before stopping early."),
    Param("random_state", int, 0, low=0, high=2**32 - 1, help="Seed of the split and the weights."),
)
"""The parameters of :class:`LocationEncoder`, declared once (its ``fit``, the
``location_encoder`` job kind, the service and the Globe page's form read this)."""


class LocationEncoder:
    r"""Trainable location encoder: positional encoding followed by a SIREN.

    Fitted on a target column of a geo table (classification or regression);
    :meth:`transform` returns the last hidden layer, the location embedding of
    any point.

    Parameters
    ----------
    encoder : str, default="sh"
        Positional encoding, one of :data:`ENCODERS` (see :func:`positional_encoding`).
    degree : int, default=10
        L of the spherical harmonics (L² features); sets the highest frequency
        of the DFS encoders too.
    hidden : int, default=64
        Width of the hidden layers = dimension of the location embedding.
    n_layers : int, default=2
        Number of hidden sine layers.
    frequency_num : int, default=16
        Frequencies of the multi-scale DFS encoders.
    w0_initial : float, default=30.0
        SIREN frequency factor of the first layer.
    w0 : float, default=1.0
        SIREN frequency factor of the later layers.
    dropout : float, default=0.0
        Dropout probability in the hidden layers during training.
    learning_rate : float, default=1e-3
        Adam learning rate.
    weight_decay : float, default=1e-4
        Adam (L2) weight decay.
    max_epochs : int, default=200
        Most passes over the training points.
    batch_size : int, default=1024
        Points per optimiser step.
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the points, stop when their loss
        has not improved for ``n_iter_no_change`` epochs and keep the weights
        of the best epoch (as the reference trains: validation loss, patience).
    validation_fraction : float, default=0.1
        Share of the points held out when ``early_stopping`` (at least one).
    n_iter_no_change : int, default=20
        Patience of the early stopping, in epochs.
    random_state : int, default=0
        Seed of the initial weights and of the batch order.
    device : str or None, default=None
        Torch device, resolved by :func:`backend.device.resolve_device`.

    Attributes
    ----------
    task_ : str
        ``"classification"`` or ``"regression"``.
    classes_ : ndarray of shape (n_classes,)
        Class labels (classification).
    target_mean_, target_scale_ : ndarray of shape (n_targets,)
        Standardisation of the regression targets.
    n_features_in_ : int
        Width of the positional encoding.
    loss_curve_ : list of float
        Mean training loss per epoch.
    validation_loss_curve_ : list of float
        Loss of the held-out points per epoch (empty without early stopping).
    n_iter_ : int
        Epochs run.
    best_epoch_ : int
        Epoch whose weights were kept (1-based; the last one without early stopping).
    fit_time_s_ : float
        Wall-clock training time, seconds.
    device_ : str
        Device used, with ``device_reason_`` saying why.
    network_ : SirenNet
        The trained network (float32).

    Notes
    -----
    The positional encoding is fixed, so it is computed once (float64, then
    cast to float32) and only the SIREN is trained, with Adam on cross-entropy
    (classification) or mean squared error of standardised targets
    (regression).

    References
    ----------
    Rußwurm et al., ICLR 2024, arXiv:2310.06743; reference code
    ``MarcCoru/locationencoder`` (tuned land-ocean setting: SH L = 10, SIREN
    hidden 64, 2 layers).

    Examples
    --------
    >>> import numpy as np
    >>> lat = np.array([10.0, -20.0, 30.0, -40.0]); lon = np.array([0.0, 90.0, -90.0, 170.0])
    >>> model = LocationEncoder(degree=4, hidden=8, max_epochs=5)
    >>> model.fit(lat, lon, np.array([0, 1, 0, 1])).transform(lat, lon).shape
    (4, 8)
    """

    def __init__(
        self,
        encoder: str = "sh",
        degree: int = 10,
        *,
        hidden: int = 64,
        n_layers: int = 2,
        frequency_num: int = 16,
        w0_initial: float = 30.0,
        w0: float = 1.0,
        dropout: float = 0.0,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        max_epochs: int = 200,
        batch_size: int = 1024,
        early_stopping: bool = True,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 20,
        random_state: int = 0,
        device: str | None = None,
    ) -> None:
        self.encoder = encoder
        self.degree = degree
        self.hidden = hidden
        self.n_layers = n_layers
        self.frequency_num = frequency_num
        self.w0_initial = w0_initial
        self.w0 = w0
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.device = device

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters as a JSON-able dict."""
        return {
            "encoder": self.encoder, "degree": self.degree, "hidden": self.hidden,
            "n_layers": self.n_layers, "frequency_num": self.frequency_num,
            "w0_initial": self.w0_initial, "w0": self.w0, "dropout": self.dropout,
            "learning_rate": self.learning_rate, "weight_decay": self.weight_decay,
            "max_epochs": self.max_epochs, "batch_size": self.batch_size,
            "early_stopping": self.early_stopping, "validation_fraction": self.validation_fraction,
            "n_iter_no_change": self.n_iter_no_change,
            "random_state": self.random_state, "device": self.device,
        }  # fmt: skip

    def _validate_params(self) -> None:
        params = self.get_params()
        params.pop("device")
        PARAMS.validate(params, owner="LocationEncoder")

    def _features(self, lat: np.ndarray, lon: np.ndarray) -> torch.Tensor:
        """Positional encoding, computed in float64 chunks, returned as float32."""
        lat_t = torch.deg2rad(torch.as_tensor(lat, dtype=torch.float64, device=self.device_))
        lon_t = torch.deg2rad(torch.as_tensor(lon, dtype=torch.float64, device=self.device_))
        width = _encoding_dim(self.encoder, self.degree, self.frequency_num)
        parts = [
            _encode_kernel(lat_t[rows], lon_t[rows], self.encoder, self.degree, self.frequency_num).to(
                torch.float32, memory_format=torch.contiguous_format
            )
            for rows in _chunks(lat.shape[0], width)
        ]
        return torch.cat(parts) if len(parts) > 1 else parts[0]

    def fit(
        self,
        latitude: Any,
        longitude: Any,
        y: Any,
        *,
        task: str = "classification",
        progress: Callable[[float, str], None] | None = None,
    ) -> LocationEncoder:
        """Train the SIREN on a target column.

        Parameters
        ----------
        latitude, longitude : array-like of shape (n_samples,)
            Degrees; latitude in [-90, 90], longitude in [-180, 180].
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Class labels (any hashable values) or numeric targets.
        task : {"classification", "regression"}, default="classification"
        progress : callable(fraction, message) or None, default=None
            Called after the encoding and after each epoch (at most ~100
            times); an exception raised inside it stops training and propagates.

        Returns
        -------
        self

        Raises
        ------
        InvalidInputError
            On bad coordinates, a ``y`` of the wrong length, fewer than two
            classes, or non-finite regression targets.
        InvalidParameterError
            On a parameter out of range or an unknown ``task``.
        """
        self._validate_params()
        return self._fit(latitude, longitude, y, task=task, progress=progress)

    def _fit(self, latitude: Any, longitude: Any, y: Any, *, task: str,
             progress: Callable[[float, str], None] | None) -> LocationEncoder:
        """:meth:`fit` with the constructor parameters already validated against
        :data:`PARAMS` (the job layer validates them once, before queueing)."""
        if task not in _TASKS:
            raise InvalidParameterError(f"task must be one of {list(_TASKS)}; got {task!r}.")
        lat, lon = _check_coordinates(latitude, longitude)
        target = np.asarray(y)
        if target.shape[0] != lat.shape[0] or target.ndim not in (1, 2):
            raise InvalidInputError(
                f"y must have shape (n_samples,) or (n_samples, n_targets) with n_samples = "
                f"{lat.shape[0]}; got shape {target.shape}."
            )
        if task == "classification":
            if target.ndim != 1:
                raise InvalidInputError(f"classification needs a 1-D y of labels; got shape {target.shape}.")
            missing = np.asarray(pd.isna(target))
            if missing.any():
                rows = np.flatnonzero(missing)[:_MAX_EXAMPLES].tolist()
                raise InvalidInputError(
                    f"{int(missing.sum())} of {target.shape[0]} labels are missing (rows {rows}); "
                    "drop those rows or fill the labels first."
                )
            try:
                self.classes_, codes = np.unique(target, return_inverse=True)
            except TypeError:
                raise InvalidInputError(
                    "the labels mix types that cannot be sorted (e.g. numbers and text); "
                    "convert the target column to one type first."
                ) from None
            if self.classes_.size < 2:
                raise InvalidInputError(
                    f"classification needs at least 2 classes; y has {self.classes_.size} "
                    f"({self.classes_.tolist()!r}). Pick another target column or task='regression'."
                )
            y_t = torch.as_tensor(codes, dtype=torch.long)
            n_out = int(self.classes_.size)
            loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nn.functional.cross_entropy
        else:
            try:
                values = target.astype(np.float64).reshape(lat.shape[0], -1)
            except (TypeError, ValueError):
                raise InvalidInputError(
                    f"regression needs numeric targets; y has dtype {target.dtype}."
                ) from None
            bad = ~np.isfinite(values).all(axis=1)
            if bad.any():
                rows = np.flatnonzero(bad)[:_MAX_EXAMPLES].tolist()
                raise InvalidInputError(
                    f"{int(bad.sum())} of {values.shape[0]} regression targets are missing or "
                    f"infinite (rows {rows}); drop or fill them first."
                )
            self.target_mean_ = values.mean(axis=0)
            scale = values.std(axis=0)
            self.target_scale_ = np.where(scale > 0, scale, 1.0)
            y_t = torch.as_tensor((values - self.target_mean_) / self.target_scale_, dtype=torch.float32)
            n_out = values.shape[1]
            loss_fn = nn.functional.mse_loss
        self.task_ = task

        resolution = resolve_device(self.device)
        self.device_, self.device_reason_ = resolution.device, resolution.reason
        start = time.perf_counter()
        features = self._features(lat, lon)
        y_t = y_t.to(self.device_)
        self.n_features_in_ = features.shape[1]
        if progress is not None:
            progress(0.0, f"encoded {lat.shape[0]} points ({self.encoder}, {self.n_features_in_} features)")

        generator = torch.Generator().manual_seed(self.random_state)
        self.network_ = SirenNet(
            self.n_features_in_, self.hidden, n_out, self.n_layers,
            w0=self.w0, w0_initial=self.w0_initial, dropout=self.dropout, generator=generator,
        ).to(self.device_)  # fmt: skip
        self._train(features, y_t, loss_fn, generator, progress)
        self.fit_time_s_ = time.perf_counter() - start
        return self

    def _train(
        self,
        features: torch.Tensor,
        y_t: torch.Tensor,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        generator: torch.Generator,
        progress: Callable[[float, str], None] | None,
    ) -> None:
        """Adam epochs over shuffled batches, with optional early stopping."""
        n = features.shape[0]
        if self.early_stopping:
            n_val = min(max(1, round(self.validation_fraction * n)), n - 1)
            if n_val < 1:
                raise InvalidInputError(
                    f"early stopping needs at least 2 points to hold some out; got {n}. "
                    "Pass early_stopping=False."
                )
            shuffled = torch.randperm(n, generator=generator).to(self.device_)
            val_idx, train_idx = shuffled[:n_val], shuffled[n_val:]
        else:
            train_idx = torch.arange(n, device=self.device_)
        x_train, y_train = features[train_idx], y_t[train_idx]
        n_train = x_train.shape[0]
        optimizer = torch.optim.Adam(
            self.network_.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        report_every = max(1, self.max_epochs // 100)
        self.loss_curve_, self.validation_loss_curve_ = [], []
        best_loss, best_state, since_best = math.inf, None, 0
        self.best_epoch_ = self.max_epochs
        for epoch in range(1, self.max_epochs + 1):
            self.network_.train()
            order = torch.randperm(n_train, generator=generator).to(self.device_)
            total = 0.0
            for first in range(0, n_train, self.batch_size):
                batch = order[first : first + self.batch_size]
                optimizer.zero_grad()
                loss = loss_fn(self.network_(x_train[batch]), y_train[batch])
                loss.backward()
                optimizer.step()
                total += loss.item() * batch.shape[0]
            self.loss_curve_.append(total / n_train)
            message = f"epoch {epoch}/{self.max_epochs}, loss {total / n_train:.4f}"
            stop = False
            if self.early_stopping:
                self.network_.eval()
                with torch.no_grad():
                    val_loss = loss_fn(self.network_(features[val_idx]), y_t[val_idx]).item()
                self.validation_loss_curve_.append(val_loss)
                message += f", validation loss {val_loss:.4f}"
                if val_loss < best_loss * (1.0 - 1e-4):  # losses are >= 0; inf at first
                    best_loss, since_best, self.best_epoch_ = val_loss, 0, epoch
                    best_state = {k: v.detach().clone() for k, v in self.network_.state_dict().items()}
                else:
                    since_best += 1
                    stop = since_best >= self.n_iter_no_change
            if progress is not None and (stop or epoch % report_every == 0 or epoch == self.max_epochs):
                progress(
                    1.0 if stop else epoch / self.max_epochs, message + (" (stopped early)" if stop else "")
                )
            if stop:
                break
        if best_state is not None:
            self.network_.load_state_dict(best_state)
        self.network_.eval()
        self.n_iter_ = epoch

    def _check_fitted(self) -> None:
        if not hasattr(self, "network_"):
            raise InvalidParameterError("this LocationEncoder is not fitted yet; call fit() first.")

    def _forward(self, latitude: Any, longitude: Any, *, embed: bool) -> torch.Tensor:
        self._check_fitted()
        lat, lon = _check_coordinates(latitude, longitude)
        outputs = []
        with torch.no_grad():
            for rows in _chunks(lat.shape[0], self.n_features_in_):
                features = self._features(lat[rows], lon[rows])
                outputs.append(self.network_.embed(features) if embed else self.network_(features))
        return torch.cat(outputs).cpu()

    def transform(self, latitude: Any, longitude: Any) -> np.ndarray:
        """Location embedding: the last hidden layer.

        Parameters
        ----------
        latitude, longitude : array-like of shape (n_samples,)
            Degrees.

        Returns
        -------
        ndarray of shape (n_samples, hidden), float32

        Raises
        ------
        InvalidInputError
            On bad coordinates.
        InvalidParameterError
            If the model is not fitted.
        """
        return self._forward(latitude, longitude, embed=True).numpy()

    def fit_transform(self, latitude: Any, longitude: Any, y: Any, **fit_params: Any) -> np.ndarray:
        """:meth:`fit`, then :meth:`transform` of the same points."""
        return self.fit(latitude, longitude, y, **fit_params).transform(latitude, longitude)

    def predict_proba(self, latitude: Any, longitude: Any) -> np.ndarray:
        """Class probabilities, shape ``(n_samples, n_classes)``, float32, columns in ``classes_`` order."""
        self._check_fitted()
        if self.task_ != "classification":
            raise InvalidParameterError("predict_proba needs a model fitted with task='classification'.")
        return torch.softmax(self._forward(latitude, longitude, embed=False), dim=1).numpy()

    def predict(self, latitude: Any, longitude: Any) -> np.ndarray:
        """Predicted class labels, or regression values in the target's units.

        Returns
        -------
        ndarray of shape (n_samples,) (or (n_samples, n_targets) for a 2-D
        regression target)
        """
        self._check_fitted()
        out = self._forward(latitude, longitude, embed=False).numpy()
        if self.task_ == "classification":
            return self.classes_[out.argmax(axis=1)]
        values = out.astype(np.float64) * self.target_scale_ + self.target_mean_
        return values[:, 0] if values.shape[1] == 1 else values

    def save(self, path: str | Path) -> None:
        """Write the fitted model to a ``.safetensors`` file (weights + JSON metadata, no pickle).

        Raises
        ------
        InvalidParameterError
            If the model is not fitted.
        """
        from safetensors.torch import save_file

        self._check_fitted()
        names = ("task_", "n_features_in_", "n_iter_", "best_epoch_", "loss_curve_",
                 "validation_loss_curve_", "fit_time_s_")  # fmt: skip
        fitted: dict[str, Any] = {name: getattr(self, name) for name in names}
        if self.task_ == "classification":
            fitted["classes_"] = self.classes_.tolist()
        else:
            fitted["target_mean_"] = self.target_mean_.tolist()
            fitted["target_scale_"] = self.target_scale_.tolist()
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.network_.state_dict().items()}
        metadata = {"format": "latent-lens.location-encoder.v1",
                    "params": json.dumps(self.get_params()), "fitted": json.dumps(fitted)}  # fmt: skip
        save_file(tensors, str(path), metadata=metadata)

    @classmethod
    def load(cls, path: str | Path, *, device: str | None = None) -> LocationEncoder:
        """Read a model written by :meth:`save`.

        Raises
        ------
        InvalidInputError
            If the file is not such a model.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file, safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
            tensors = load_file(str(path))
        except (OSError, SafetensorError) as exc:
            raise InvalidInputError(f"cannot read {path} as a safetensors file: {exc}") from None
        if metadata.get("format") != "latent-lens.location-encoder.v1":
            raise InvalidInputError(
                f"{path} is a safetensors file but not a LocationEncoder saved by Latent Lens "
                f"(metadata format {metadata.get('format')!r})."
            )
        params = json.loads(metadata["params"])
        params["device"] = device
        fitted = json.loads(metadata["fitted"])
        model = cls(**params)
        resolution = resolve_device(device)
        model.device_, model.device_reason_ = resolution.device, resolution.reason
        for name in ("task_", "n_features_in_", "n_iter_", "best_epoch_", "loss_curve_",
                     "validation_loss_curve_", "fit_time_s_"):  # fmt: skip
            setattr(model, name, fitted[name])
        if model.task_ == "classification":
            model.classes_ = np.asarray(fitted["classes_"])
            n_out = model.classes_.size
        else:
            model.target_mean_ = np.asarray(fitted["target_mean_"])
            model.target_scale_ = np.asarray(fitted["target_scale_"])
            n_out = model.target_mean_.size
        model.network_ = SirenNet(
            model.n_features_in_, model.hidden, n_out, model.n_layers,
            w0=model.w0, w0_initial=model.w0_initial, dropout=model.dropout,
        )  # fmt: skip
        model.network_.load_state_dict(tensors)
        model.network_.to(model.device_).eval()
        return model


# ----------------------------------------------------------------------------
# SatCLIP


def _satclip_sh_scale(degree: int, harmonics_calculation: str) -> torch.Tensor:
    """Per-feature factor turning our orthonormal basis into SatCLIP's harmonics.

    SatCLIP evaluates Y at θ_s = lat + 90° (measured from the south pole) and
    φ_s = lon + 180°. Since P_l^m(-x) = (-1)^(l+m) P_l^m(x) and
    cos/sin(m(λ + π)) = (-1)^m cos/sin(mλ), its values equal ours times:

    - ``"analytic"`` (sympy-generated; SatCLIP's default):
      (-1)^l for m != 0 (the generator's (-1)^m cancels sympy's Condon–Shortley
      phase), and π·(-1)^l for m = 0 (the generator's constant
      ``sqrt((2l+1)/4*pi)`` lacks brackets: π times the orthonormal one);
    - ``"closed-form"`` (Green's recurrence, keeps the Condon–Shortley phase):
      (-1)^(l+m) for m != 0 and (-1)^l for m = 0.
    """
    scale = []
    for ell in range(degree):
        for m in range(-ell, ell + 1):
            sign = (-1.0) ** ell
            if harmonics_calculation == "analytic":
                scale.append(sign * (math.pi if m == 0 else 1.0))
            else:
                scale.append(sign * (-1.0) ** abs(m))
    return torch.tensor(scale, dtype=torch.float64)


class SatCLIPLocationEncoder:
    """The location encoder of a SatCLIP checkpoint (no vision backbone).

    Built by :func:`load_satclip_location_encoder`; do not construct directly.

    Attributes
    ----------
    degree : int
        L (``legendre_polys``) of the checkpoint.
    harmonics_calculation : str
        ``"analytic"`` or ``"closed-form"``, SatCLIP's harmonic convention.
    embed_dim : int
        Output dimension (256 for the released checkpoints).
    hyper_parameters : dict
        The checkpoint's hyper-parameters that are JSON-able.
    network : SirenNet
        float64, in eval mode.
    device : str
    """

    def __init__(
        self, network: SirenNet, degree: int, harmonics_calculation: str,
        hyper_parameters: dict[str, Any], device: str,
    ) -> None:  # fmt: skip
        self.network = network
        self.degree = degree
        self.harmonics_calculation = harmonics_calculation
        self.hyper_parameters = hyper_parameters
        self.embed_dim = network.last_layer.out_features
        self.device = device
        self._scale = _satclip_sh_scale(degree, harmonics_calculation).to(device)

    def transform(self, latitude: Any, longitude: Any) -> np.ndarray:
        """SatCLIP location embeddings.

        Parameters
        ----------
        latitude, longitude : array-like of shape (n_samples,)
            Degrees (passed by name: SatCLIP itself takes ``(lon, lat)`` pairs).

        Returns
        -------
        ndarray of shape (n_samples, embed_dim), float32
            Computed in float64 as SatCLIP does, returned as float32.

        Raises
        ------
        InvalidInputError
            On bad coordinates.
        """
        lat, lon = _check_coordinates(latitude, longitude)
        outputs = []
        with torch.no_grad():
            for rows in _chunks(lat.shape[0], self.degree * self.degree):
                lat_t = torch.deg2rad(torch.as_tensor(lat[rows], dtype=torch.float64, device=self.device))
                lon_t = torch.deg2rad(torch.as_tensor(lon[rows], dtype=torch.float64, device=self.device))
                features = _sh_kernel(lat_t, lon_t, self.degree) * self._scale
                outputs.append(self.network(features).to(torch.float32).cpu())
        return torch.cat(outputs).numpy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (for an artifact sidecar)."""
        return {
            "model": "satclip-location-encoder",
            "degree": self.degree,
            "harmonics_calculation": self.harmonics_calculation,
            "embed_dim": self.embed_dim,
            "hidden": self.network.last_layer.in_features,
            "n_layers": len(self.network.layers),
            "hyper_parameters": self.hyper_parameters,
        }


def _refuse(path: str | Path, reason: str) -> InvalidInputError:
    return InvalidInputError(
        f"{path} is not a usable SatCLIP checkpoint: {reason}. Supply one of the SatCLIP "
        "checkpoint files (e.g. satclip-resnet50-l40.ckpt from the Hugging Face repository "
        "microsoft/SatCLIP-ResNet50-L40), unchanged."
    )


def load_satclip_location_encoder(path: str | Path, *, device: str | None = None) -> SatCLIPLocationEncoder:
    """Load only the location encoder from a SatCLIP checkpoint file.

    Parameters
    ----------
    path : str or Path
        A SatCLIP Lightning checkpoint (``.ckpt``): a dict with
        ``hyper_parameters`` and ``state_dict``. Read with
        ``torch.load(weights_only=True)``, so the file cannot run code; the
        vision-encoder tensors are read but discarded.
    device : str or None, default=None
        Torch device, resolved by :func:`backend.device.resolve_device`.

    Returns
    -------
    SatCLIPLocationEncoder
        Spherical harmonics in SatCLIP's own convention (see Notes), then the
        checkpoint's SIREN in float64, in eval mode.

    Raises
    ------
    InvalidInputError
        If the file is missing, is not a torch checkpoint, holds objects that
        ``weights_only`` loading refuses, is not a SatCLIP checkpoint, uses a
        positional encoding other than spherical harmonics
        (``le_type="sphericalharmonics"``, ``harmonics_calculation`` "analytic" or
        "closed-form") or a network other than ``"siren"``, or its tensors do
        not fit that structure.

    Notes
    -----
    SatCLIP's harmonics differ from :func:`spherical_harmonics`: they use
    θ = lat + 90°, φ = lon + 180°, and with the default ``"analytic"``
    calculation no Condon–Shortley phase and an m = 0 constant π times the
    orthonormal one. We compute our stable orthonormal basis and multiply each
    column by the exact factor (±1, or ±π for m = 0) that gives SatCLIP's
    values. SatCLIP's sympy-expanded polynomials lose digits at high degree;
    we evaluate the same functions without that loss.

    References
    ----------
    Klemmer et al., "SatCLIP: Global, General-Purpose Location Embeddings with
    Satellite Imagery", arXiv:2311.17179; ``microsoft/satclip``
    ``satclip/load_lightweight.py`` (which tensors form the location encoder),
    ``satclip/positional_encoding/spherical_harmonics_generate_ylms.py``.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"SatCLIP checkpoint {path} does not exist or is not a file.")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        detail = text.split("WeightsUnpickler error:", 1)[-1].strip().split("\n")[0].strip()
        if "Unsupported global" in text:
            raise _refuse(
                path, f"it holds Python objects that safe (weights-only) loading refuses ({detail})"
            ) from None
        raise _refuse(path, f"it is not a PyTorch checkpoint ({detail or type(exc).__name__})") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        raise _refuse(path, f"it is not a PyTorch checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(checkpoint, dict) or not {"hyper_parameters", "state_dict"} <= checkpoint.keys():
        keys = sorted(checkpoint)[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise _refuse(path, f"it has no 'hyper_parameters' and 'state_dict' entries (found {keys})")
    hp, state = checkpoint["hyper_parameters"], checkpoint["state_dict"]
    required = ("le_type", "pe_type", "legendre_polys", "embed_dim", "capacity", "num_hidden_layers")
    missing = [k for k in required if k not in hp]
    if missing:
        raise _refuse(path, f"its hyper_parameters lack {missing}")
    if hp["le_type"] != "sphericalharmonics":
        raise _refuse(path, f"its positional encoding is le_type={hp['le_type']!r}; only "
                      "'sphericalharmonics' (all released SatCLIP models) is supported")  # fmt: skip
    calculation = hp.get("harmonics_calculation", "analytic")
    if calculation not in ("analytic", "closed-form"):
        raise _refuse(path, f"harmonics_calculation={calculation!r}; only 'analytic' and "
                      "'closed-form' are supported")  # fmt: skip
    if hp["pe_type"] != "siren":
        raise _refuse(path, f"its network is pe_type={hp['pe_type']!r}; only 'siren' is supported")

    tensors: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if "nnet." in key and isinstance(value, torch.Tensor):
            tensors.setdefault(key[key.index("nnet.") + len("nnet.") :], value)
    degree, hidden, n_layers = int(hp["legendre_polys"]), int(hp["capacity"]), int(hp["num_hidden_layers"])
    network = SirenNet(degree * degree, hidden, int(hp["embed_dim"]), n_layers)
    expected = {k: tuple(v.shape) for k, v in network.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    if found != expected:
        raise _refuse(
            path,
            f"its location-network tensors {found or '(none)'} do not match a SIREN with "
            f"L={degree}, capacity={hidden}, {n_layers} hidden layers: expected {expected}",
        )
    dev = resolve_device(device).device
    network = network.double()
    network.load_state_dict({k: v.to(torch.float64) for k, v in tensors.items()})
    network = network.to(dev).eval()
    plain = {k: v for k, v in hp.items() if isinstance(v, (str, int, float, bool, type(None)))}
    return SatCLIPLocationEncoder(network, degree, calculation, plain, dev)
