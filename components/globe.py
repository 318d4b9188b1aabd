"""The globe: points on a pydeck GlobeView, no base map, the far side hidden.

Pure drawing helpers: colours (categories, a continuous scale, an embedding's first principal
components as RGB), sizes, and :func:`globe_deck`, which builds the ``pydeck.Deck``.
Nothing is fetched: no tiles, no base map; an opaque sphere drawn under the points hides
the far side (depth test), and a 30° graticule shows the orientation.
"""

from __future__ import annotations

import html
import json

import numpy as np
import pandas as pd
import pydeck as pdk
from pydeck.bindings.json_tools import default_serialize

from components.scatter import _PALETTE, category_plan

__all__ = [
    "GLOBE_COLOR",
    "OTHER_COLOR",
    "categorical_colors",
    "continuous_colors",
    "embedding_rgb",
    "point_sizes",
    "CompactDeck",
    "tooltip_fields",
    "sphere_image",
    "globe_deck",
    "legend_html",
]

GLOBE_COLOR = (32, 44, 62)  # the sphere under the points (dark slate)
OTHER_COLOR = (170, 170, 170)
# viridis at 9 evenly spaced stops (matplotlib's table)
_VIRIDIS = np.array([
    (68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141),
    (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37),
], dtype=np.float64)


def _hex_rgb(h: str) -> tuple[int, int, int]:
    h = h.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def categorical_colors(values: pd.Series) -> tuple[dict[str, tuple[int, int, int]], str | None]:
    """A colour per category, as on the Map page (:func:`components.scatter.category_plan`):
    the 30 most frequent categories in natural order take the palette, the rest share grey
    (``"other"``).

    Returns
    -------
    colors : dict str -> (r, g, b)
        Keys are category labels (:func:`components.scatter.category_labels`: ``str(value)``,
        ``"(missing)"`` for missing values); labels not in it are "other".
    note : str or None
        Set when categories were grouped.
    """
    keep, note = category_plan(values)
    return {k: _hex_rgb(_PALETTE[i % len(_PALETTE)]) for i, k in enumerate(keep)}, note


def continuous_colors(values, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Viridis colours of numbers, ``(n, 3)`` uint8; NaN is grey.

    ``lo``/``hi`` default to the 2nd and 98th percentiles (robust to outliers).
    """
    v = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=np.float64)
    finite = np.isfinite(v)
    out = np.tile(np.array(OTHER_COLOR, np.uint8), (len(v), 1))
    if not finite.any():
        return out
    lo = float(np.percentile(v[finite], 2)) if lo is None else float(lo)
    hi = float(np.percentile(v[finite], 98)) if hi is None else float(hi)
    t = np.clip((v[finite] - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.full(finite.sum(), 0.5)
    pos = t * (len(_VIRIDIS) - 1)
    i = np.minimum(pos.astype(int), len(_VIRIDIS) - 2)
    f = (pos - i)[:, None]
    out[finite] = np.round(_VIRIDIS[i] * (1 - f) + _VIRIDIS[i + 1] * f).astype(np.uint8)
    return out


def embedding_rgb(coords: np.ndarray) -> np.ndarray:
    """Colours from an embedding's first principal components: PC1 → red, PC2 → green,
    PC3 → blue, each scaled between its 2nd and 98th percentile; ``(n, 3)`` uint8.

    ``coords`` has 1 to 3 columns (the PCA projection); missing components are mid-grey.
    """
    c = np.asarray(coords, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] < 1:
        raise ValueError(f"coords must be (n, 1..3); got shape {c.shape}")
    out = np.full((c.shape[0], 3), 128, dtype=np.uint8)
    for j in range(min(3, c.shape[1])):
        lo, hi = np.percentile(c[:, j], [2, 98])
        t = np.clip((c[:, j] - lo) / (hi - lo), 0, 1) if hi > lo else np.full(len(c), 0.5)
        out[:, j] = np.round(30 + 225 * t).astype(np.uint8)  # keep off pure black
    return out


def point_sizes(values, *, min_px: float = 2.0, max_px: float = 12.0) -> np.ndarray:
    """Radii in pixels, square-root scaled (area ∝ value) up to the 99th percentile."""
    v = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=np.float64)
    v = np.where(np.isfinite(v), v, np.nan)
    finite = np.isfinite(v)
    out = np.full(len(v), min_px)
    if not finite.any():
        return out
    lo = np.nanmin(v)
    top = np.nanpercentile(v, 99)
    if top > lo:
        t = np.sqrt(np.clip((v[finite] - lo) / (top - lo), 0, 1))
        out[finite] = min_px + (max_px - min_px) * t
    return out


class CompactDeck(pdk.Deck):
    """A ``pydeck.Deck`` whose JSON has no indentation (pydeck indents by 2, which more than
    doubles what Streamlit sends to the browser for every point)."""

    def to_json(self) -> str:
        return json.dumps(self, sort_keys=True, default=default_serialize, separators=(",", ":"))


def tooltip_fields(df: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, str]:
    """Per-row tooltip values (HTML-escaped, cut at 60 characters) in fields ``t0``, ``t1``, …
    and the tooltip template that shows them under the row id."""
    fields = {}
    template = "<b>row {_row}</b>"
    for i, col in enumerate(columns):
        fields[f"t{i}"] = ["–" if _missing(v) else html.escape(str(v)[:60]) for v in df[col].tolist()]
        template += f"<br/>{html.escape(str(col))}: {{t{i}}}"
    return pd.DataFrame(fields, index=df.index), template


def _missing(v) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):  # lists, arrays
        return False


def sphere_image(heat: pd.DataFrame | None = None, heat_step: float = 2.0,
                 heat_colors: np.ndarray | None = None) -> str:
    """The globe's surface as a PNG data URL for a BitmapLayer over [-180, 180] x [-90, 90]:
    the globe colour, with the heat cells (RGBA, alpha-blended) painted on it when given.

    Cell (latitude, longitude) centres of a regular ``heat_step`` grid map to pixels (north
    row first). Opaque everywhere, so it hides the far side of the globe.
    """
    import base64
    import io

    from PIL import Image

    if heat is None or len(heat) == 0:
        img = np.tile(np.array(GLOBE_COLOR, np.uint8), (2, 4, 1))
    else:
        h, w = int(round(180 / heat_step)), int(round(360 / heat_step))
        img = np.tile(np.array(GLOBE_COLOR, np.float64), (h, w, 1))
        rows = np.clip(np.floor((90.0 - heat["latitude"].to_numpy()) / heat_step), 0, h - 1).astype(int)
        cols = np.clip(np.floor((heat["longitude"].to_numpy() + 180.0) / heat_step), 0, w - 1).astype(int)
        rgba = np.asarray(heat_colors, dtype=np.float64)
        a = (rgba[:, 3:4] / 255.0) if rgba.shape[1] == 4 else np.ones((len(rgba), 1))
        img[rows, cols] = img[rows, cols] * (1 - a) + rgba[:, :3] * a
        img = np.round(img).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img, "RGB").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _graticule(step: int = 30) -> list[dict]:
    paths = []
    for lat in range(-90 + step, 90, step):
        paths.append({"path": [[lon, lat] for lon in range(-180, 181, 5)]})
    for lon in range(-180, 180, step):
        paths.append({"path": [[lon, lat] for lat in range(-90, 91, 5)]})
    return paths


def globe_deck(
    points: pd.DataFrame,
    *,
    latitude: str,
    longitude: str,
    colors: np.ndarray,
    radii: np.ndarray | float,
    tooltip_columns: list[str] | None = None,
    highlight: np.ndarray | None = None,
    heat: pd.DataFrame | None = None,
    heat_step: float = 2.0,
    heat_colors: np.ndarray | None = None,
    view: tuple[float, float] | None = None,
    zoom: float = 0.4,
    dim_unselected: bool = False,
) -> pdk.Deck:
    """The globe: a GlobeView with an opaque sphere (a heat map painted on it), a graticule,
    the points.

    Parameters
    ----------
    points : DataFrame
        One row per drawn point, with ``_row``, ``latitude`` and ``longitude`` (degrees).
    latitude, longitude : str
        The coordinate columns (passed by name; deck.gl takes ``[lon, lat]``).
    colors : ndarray of shape (n, 3) or (n, 4), uint8
    radii : ndarray of shape (n,) or float
        Point radii in pixels.
    tooltip_columns : list of str, optional
        Columns of ``points`` shown on hover (under the row id).
    highlight : ndarray of int, optional
        Row ids drawn with a white ring on top (a selection made on the map).
    heat : DataFrame, optional
        Grid centres (``latitude``, ``longitude``) of a trained encoder's output, painted on
        the sphere as ``heat_step``-degree cells coloured by ``heat_colors`` (n, 4) uint8
        (alpha-blended over the globe colour; see :func:`sphere_image`).
    view : (latitude, longitude), optional
        Centre of the initial view; default the points' median latitude (within ±60°) and
        circular-mean longitude.
    dim_unselected : bool, default=False
        Fade the points not in ``highlight``.

    Returns
    -------
    pydeck.Deck
        ``map_provider=None`` (no base map, nothing fetched). Layer ids: ``globe`` (a
        BitmapLayer: the sphere with the heat map), ``graticule``, ``points`` (pickable; its
        objects carry ``_row``) and ``highlight``.
    """
    n = len(points)
    colors = np.asarray(colors, dtype=np.uint8)
    if colors.shape[1] == 3:
        colors = np.column_stack([colors, np.full(n, 230, np.uint8)])
    hl = np.asarray(highlight if highlight is not None else [], dtype=np.int64)
    rows = points["_row"].to_numpy(np.int64)
    in_hl = np.isin(rows, hl) if len(hl) else np.zeros(n, bool)
    if dim_unselected and len(hl):
        colors = colors.copy()
        colors[~in_hl, 3] = 60
    data = pd.DataFrame({
        "_row": rows,
        "lon": points[longitude].to_numpy(np.float64).round(4),
        "lat": points[latitude].to_numpy(np.float64).round(4),
        "c": colors.tolist(),
    })
    constant_radius = np.ndim(radii) == 0
    if not constant_radius:
        data["r"] = np.round(np.asarray(radii, dtype=np.float64), 1)
    template = None
    if tooltip_columns is not None:
        fields, template = tooltip_fields(points, tooltip_columns)
        data = pd.concat([data, fields.reset_index(drop=True)], axis=1)
    if view is None and n:
        lon_r = np.deg2rad(data["lon"].to_numpy())
        view = (float(np.clip(data["lat"].median(), -60, 60)),
                float(np.rad2deg(np.arctan2(np.sin(lon_r).mean(), np.cos(lon_r).mean()))))
    view = view or (20.0, 0.0)

    # The sphere (and the heat map painted on it) is a BitmapLayer: opaque, so the depth test
    # hides the far side, and outside the layers Streamlit greys out during a selection.
    on_heat = heat is not None and len(heat) > 0
    layers = [
        pdk.Layer(
            "BitmapLayer", id="globe", bounds=[-180, -90, 180, 90],
            image="'" + sphere_image(heat, heat_step, heat_colors) + "'",
        ),
        pdk.Layer(
            "PathLayer", id="graticule", data=_graticule(), get_path="path",
            get_color=[255, 255, 255, 38], width_units="'pixels'", get_width=1,
        ),
        pdk.Layer(
            "ScatterplotLayer", id="points", data=data, get_position=["lon", "lat"],
            get_fill_color="c", get_radius=float(radii) if constant_radius else "r",
            radius_units="'pixels'", radius_min_pixels=1, pickable=True, filled=True,
            stroked=on_heat, get_line_color=[12, 16, 24, 200], line_width_units="'pixels'",
            get_line_width=1,  # a dark rim keeps points apart from heat cells of the same colour
        ),
    ]
    if in_hl.any():
        hd = data.loc[in_hl, ["_row", "lon", "lat"]]
        hd["r"] = (float(radii) if constant_radius else data.loc[in_hl, "r"]) + 2
        layers.append(pdk.Layer(
            "ScatterplotLayer", id="highlight", data=hd, get_position=["lon", "lat"],
            get_radius="r", radius_units="'pixels'", stroked=True, filled=False,
            get_line_color=[255, 255, 255, 220], line_width_units="'pixels'", get_line_width=1,
        ))
    # (GlobeView culls back faces by default in deck.gl 9; "cull" keeps it so in older ones.)
    return CompactDeck(
        layers=layers,
        views=[pdk.View(type="_GlobeView", controller=True)],
        initial_view_state=pdk.ViewState(latitude=view[0], longitude=view[1], zoom=zoom),
        map_provider=None,
        map_style=None,
        tooltip={"html": template, "style": {"fontSize": "12px"}} if template else False,
        parameters={"cull": True},
    )


def legend_html(entries: list[tuple[str, tuple[int, int, int]]], *, limit: int = 30) -> str:
    """A compact HTML legend: a coloured dot and a label per entry."""
    items = [
        f"<span style='white-space:nowrap;margin-right:10px'><span style='display:inline-block;"
        f"width:10px;height:10px;border-radius:5px;background:rgb{tuple(int(x) for x in c)};"
        f"margin-right:4px'></span>{html.escape(str(label))}</span>"
        for label, c in entries[:limit]
    ]
    return "<div style='font-size:0.8rem;line-height:1.6'>" + " ".join(items) + "</div>"
