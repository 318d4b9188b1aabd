"""Pure geometry for map selections: which rows fall in a box or lasso (no Streamlit)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["draw_sample", "rows_in_selection", "points_in_polygon"]


def draw_sample(n_rows: int, budget: int, seed: int = 0) -> np.ndarray:
    """Row ids to draw: all rows when ``n_rows <= budget``, else a uniform sample, sorted."""
    if n_rows <= budget:
        return np.arange(n_rows)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_rows, size=budget, replace=False))


def points_in_polygon(x: np.ndarray, y: np.ndarray, px, py) -> np.ndarray:
    """Boolean mask of the points (x, y) inside the polygon (px, py) (even-odd rule)."""
    px = np.asarray(px, dtype=np.float64)
    py = np.asarray(py, dtype=np.float64)
    inside = np.zeros(len(x), dtype=bool)
    j = len(px) - 1
    for i in range(len(px)):
        xi, yi, xj, yj = px[i], py[i], px[j], py[j]
        crosses = (yi > y) != (yj > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xint = (xj - xi) * (y - yi) / (yj - yi) + xi
        inside ^= crosses & (x < xint)
        j = i
    return inside


def rows_in_selection(coords, selection: dict[str, Any]) -> np.ndarray | None:
    """Row ids of every point (drawn or not) inside the selection's boxes and lassos, or of
    the clicked points.

    Parameters
    ----------
    coords : DataFrame with columns ``_row``, ``x``, ``y``
        All rows of the projection.
    selection : dict
        A selection state: ``box``: [{"x": [x0, x1], "y": [y0, y1]}], ``lasso``:
        [{"x": [...], "y": [...]}] in data coordinates, and ``points``: [{"customdata": row}]
        (clicks; used when there is no box or lasso).

    Returns
    -------
    ndarray of int64 or None
        Sorted row ids; ``None`` when nothing is selected.
    """
    boxes = selection.get("box") or []
    lassos = selection.get("lasso") or []
    if not boxes and not lassos:
        clicked = {int(pt["customdata"]) for pt in selection.get("points") or []
                   if isinstance(pt, dict) and pt.get("customdata") is not None}
        return np.array(sorted(clicked), dtype=np.int64) if clicked else None
    x = coords["x"].to_numpy(np.float64)
    y = coords["y"].to_numpy(np.float64)
    mask = np.zeros(len(x), dtype=bool)
    for b in boxes:
        bx, by = b.get("x", []), b.get("y", [])
        if len(bx) >= 2 and len(by) >= 2:
            mask |= (x >= min(bx)) & (x <= max(bx)) & (y >= min(by)) & (y <= max(by))
    for las in lassos:
        if len(las.get("x", [])) >= 3:
            mask |= points_in_polygon(x, y, las["x"], las["y"])
    return np.sort(coords["_row"].to_numpy(np.int64)[mask])
