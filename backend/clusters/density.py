"""Point density of a 2-D map on a grid, with contour levels.

A binned kernel density estimate: the points are counted on a regular grid
(``numpy.histogram2d``, every point, no sampling) and the counts are smoothed by
a Gaussian filter (``scipy.ndimage.gaussian_filter``) whose width is the
bandwidth in grid cells. For a Gaussian kernel this equals the exact KDE up to
the binning error (at most half a cell in each coordinate), at O(n + cells) cost:
about 0.1 s for 1,000,000 points on a 256 x 256 grid.

The bandwidth defaults to Scott's rule per axis, :math:`h = \\sigma n^{-1/6}`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.errors import InvalidInputError, InvalidParameterError

__all__ = ["DensityGrid", "density_grid"]


@dataclass(frozen=True)
class DensityGrid:
    """A density on a regular grid.

    Attributes
    ----------
    density : ndarray of shape (grid_size, grid_size), dtype float32
        Estimated probability density (per unit area of map coordinates);
        ``density[i, j]`` is at ``(x[j], y[i])`` (image order: rows are y).
    x, y : ndarray of shape (grid_size,), dtype float64
        Cell centres in map coordinates.
    levels : list of float
        Contour levels: the densities above which 25 %, 50 %, 75 % and 90 % of
        the probability mass lies (highest-density regions), in increasing order.
    bandwidth : tuple of float
        Kernel standard deviation along x and y, in map units.
    n_points : int
        Points counted (all of them).
    """

    density: np.ndarray
    x: np.ndarray
    y: np.ndarray
    levels: list[float]
    bandwidth: tuple[float, float]
    n_points: int

    def to_dict(self) -> dict:
        return {"density": self.density.tolist(), "x": self.x.tolist(), "y": self.y.tolist(),
                "levels": self.levels, "bandwidth": list(self.bandwidth), "n_points": self.n_points}

    @classmethod
    def from_dict(cls, d: dict) -> "DensityGrid":
        return cls(np.asarray(d["density"], dtype=np.float32), np.asarray(d["x"], dtype=np.float64),
                   np.asarray(d["y"], dtype=np.float64), [float(v) for v in d["levels"]],
                   tuple(float(v) for v in d["bandwidth"]), int(d["n_points"]))


_MASS = (0.9, 0.75, 0.5, 0.25)


def density_grid(
    xy: np.ndarray, *, grid_size: int = 256, bandwidth: float | str = "scott", padding: float = 0.05
) -> DensityGrid:
    """Kernel density of 2-D points on a grid.

    Parameters
    ----------
    xy : array-like of shape (n_samples, 2)
        Map coordinates; finite.
    grid_size : int, default=256
        Cells per axis, in [16, 2048].
    bandwidth : float or "scott", default="scott"
        Kernel standard deviation as a fraction of the larger coordinate range, in
        (0, 1], or ``"scott"`` for Scott's rule on each axis.
    padding : float, default=0.05
        Fraction of each range added on both sides, so contours close.

    Returns
    -------
    DensityGrid

    Raises
    ------
    InvalidInputError
        If ``xy`` is not (n, 2), is empty, or has non-finite values.
    InvalidParameterError
        If ``grid_size`` or ``bandwidth`` is out of range.

    References
    ----------
    .. [1] Wand (1994). "Fast computation of multivariate kernel estimators."
       J. Comput. Graph. Stat. 3(4). doi:10.1080/10618600.1994.10474656
    .. [2] Hyndman (1996). "Computing and graphing highest density regions."
       Am. Stat. 50(2). doi:10.1080/00031305.1996.10474359
    """
    from scipy.ndimage import gaussian_filter

    xy = np.asarray(xy, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or xy.shape[0] == 0:
        raise InvalidInputError(f"density needs points of shape (n, 2), n > 0; got {xy.shape}.")
    if not np.isfinite(xy).all():
        raise InvalidInputError("density needs finite coordinates; some are NaN or infinite.")
    if isinstance(grid_size, bool) or not isinstance(grid_size, int) or not 16 <= grid_size <= 2048:
        raise InvalidParameterError(f"grid_size must be an integer in [16, 2048]; got {grid_size!r}.")
    if bandwidth != "scott" and (isinstance(bandwidth, bool) or not isinstance(bandwidth, (int, float))
                                 or not 0 < bandwidth <= 1):
        raise InvalidParameterError(
            f"bandwidth must be 'scott' or a number in (0, 1]; got {bandwidth!r}.")
    n = xy.shape[0]
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = hi - lo
    scale = float(span.max()) if span.max() > 0 else 1.0
    span = np.where(span > 0, span, scale)
    if bandwidth == "scott":
        sd = xy.std(axis=0)
        bw = np.where(sd > 0, sd, scale * 0.01) * n ** (-1.0 / 6.0)
    else:
        bw = np.array([bandwidth * scale] * 2)
    lo, hi = lo - span * padding - 3 * bw, hi + span * padding + 3 * bw
    counts, xe, ye = np.histogram2d(xy[:, 0], xy[:, 1], bins=grid_size, range=[[lo[0], hi[0]], [lo[1], hi[1]]])
    cell = np.array([xe[1] - xe[0], ye[1] - ye[0]])
    smooth = gaussian_filter(counts, sigma=bw / cell, mode="constant", truncate=4.0)
    dens = (smooth / (n * cell[0] * cell[1])).T.astype(np.float32)  # rows are y
    return DensityGrid(dens, (xe[:-1] + xe[1:]) / 2, (ye[:-1] + ye[1:]) / 2,
                       _hdr_levels(dens), (float(bw[0]), float(bw[1])), n)


def _hdr_levels(dens: np.ndarray) -> list[float]:
    """Density thresholds enclosing 90/75/50/25 % of the mass (increasing)."""
    flat = np.sort(dens.ravel())[::-1]
    cum = np.cumsum(flat, dtype=np.float64)
    if cum[-1] <= 0:
        return []
    cum /= cum[-1]
    return [float(flat[min(np.searchsorted(cum, m), len(flat) - 1)]) for m in _MASS]
