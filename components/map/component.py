"""The map as a Streamlit Components v2 element (WebGL, regl-scatterplot).

Python sends Arrow tables only when the browser page lacks them: the frontend reports the
coordinates and colouring it holds (state ``have``), so a rerun (a selection, a new colour,
a highlight) moves at most one colour column, and usually nothing but a few ids.

Layers are drawn with the points, and switching them moves no coordinates: cluster names
(a short list, written at their centres and thinned by zoom), a density grid (one byte a
cell, sent once per grid, drawn under the points) and graph edges (point index pairs, sent
once per edge set, drawn under the points).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import streamlit as st

from components.map.bundle import bundle_js
from components.map.encode import EncodedColor, EncodedCoords, EncodedDensity, EncodedEdges

__all__ = ["MapEvent", "map_view"]

_MAP = st.components.v2.component("latent_lens.map", js=bundle_js())


@dataclass(frozen=True)
class MapEvent:
    """What the user did on the map, as of this rerun.

    Attributes
    ----------
    selection : dict or None
        The box or lasso in data coordinates, in the shape
        :func:`components.selection.rows_in_selection` reads
        (``{"box": [{"x": [x0, x1], "y": [y0, y1]}]}`` or ``{"lasso": [{"x": [...], "y": [...]}]}``);
        None when nothing is selected.
    clicked_row : int or None
        Row id of the point clicked in this rerun.
    hidden : tuple of str
        Legend categories switched off (their points are neither drawn nor selected).
    projection_id : str or None
        The projection the selection was drawn on (a replaced projection drops it).
    """

    selection: dict | None
    clicked_row: int | None
    hidden: tuple[str, ...]
    projection_id: str | None


def _noop() -> None:
    pass


def _hovered_key(key: str) -> str:
    return f"{key}:hovered"


def _sent_key(key: str) -> str:
    return f"{key}:sent"


def _to_send(have: dict, sent: dict, ids: dict[str, str]) -> list[str]:
    """The kinds of table (of ``ids``: kind -> table id) this render sends; updates ``sent``.

    ``have`` is what the browser reported holding after the render numbered ``have["seq"]``.
    Renders that send tables are numbered (``sent["seq"]``); one that sends nothing keeps the
    number, so its message is unchanged and served from Streamlit's message cache. A table
    the browser lacks is sent unless a render numbered after the browser's report sent it: it
    is then on its way (a rerun that started before the report arrived would otherwise send
    it twice). If that render never reached the browser, the next carries its number, the
    browser reports the table missing with that number, and it is sent again. Colours are
    keyed by coordinates: new coordinates bring their colours.
    """
    seen = int(have.get("seq") or 0)

    def lacks(kind: str) -> bool:
        sent_id, sent_seq = sent.get(kind, (None, 0))
        return have.get(kind) != ids[kind] and not (sent_id == ids[kind] and seen < sent_seq)

    kinds = [k for k in ids if lacks(k)]
    if "coords" in kinds and "color" in ids and "color" not in kinds:
        kinds.append("color")
    if kinds:
        sent["seq"] += 1
        sent.update({k: (ids[k], sent["seq"]) for k in kinds})
    return kinds


def _remember_hover(key: str) -> None:
    """The row the pointer rests on (the ``hover`` trigger), kept for this run's ``data``."""
    st.session_state[_hovered_key(key)] = (st.session_state.get(key) or {}).get("hover")


def map_view(coords: EncodedCoords, color: EncodedColor, *, key: str,
             highlight_rows=None, context_rows=None, caption: str = "", height: int = 620,
             labels: list | None = None, density: EncodedDensity | None = None,
             edges: EncodedEdges | None = None,
             hover_text: Callable[[int], str] | None = None, hover_id: str = "") -> MapEvent:
    """Draw the map and return what the user selected, clicked and hid.

    Parameters
    ----------
    coords : EncodedCoords
        From :func:`components.map.encode.encode_coords` (cache it per projection).
    color : EncodedColor
        From :func:`components.map.encode.encode_color` (cache it per column).
    key : str
        Streamlit key; the view (zoom, pan), selection and hidden categories are kept per key.
    highlight_rows : array of int, optional
        Row ids ringed black on the map (neighbours, search hits, a selected node); the first
        5,000.
    context_rows : array of int, optional
        Row ids ringed orange under those (e.g. a selected node's neighbours); the first 5,000.
    caption : str
        Shown in the map's tool bar.
    height : int
        Pixels.
    labels : list of [x, y, name, n_rows], optional
        Names written at cluster centres, largest first (:func:`components.map.encode.encode_labels`);
        the browser drops a label that would overlap a larger one at the current zoom.
    density : EncodedDensity, optional
        Drawn under the points as shaded highest-density regions with contour lines
        (:func:`components.map.encode.encode_density`); None draws no density.
    edges : EncodedEdges, optional
        Line segments between points, drawn under them; the edges of ringed points
        (``highlight_rows``) are drawn dark (:func:`components.map.encode.encode_edges`).
    hover_text : callable, optional
        ``hover_text(row_id) -> str``: the page's hover columns of one row. The tooltip shows
        the row id and colour value at once; when the pointer rests on a point (250 ms) the
        browser asks for that row (one rerun) and adds this text, kept for later hovers.
    hover_id : str
        Names what ``hover_text`` shows (e.g. the hover columns): texts cached in the browser
        under another id are not reused.

    Returns
    -------
    MapEvent
    """
    prev = st.session_state[key] if key in st.session_state else {}  # the browser's latest state
    have = prev.get("have") or {}
    hl, ctx = ([] if rows is None else [int(r) for r in np.asarray(rows).ravel()[:5000]]
               for rows in (highlight_rows, context_rows))
    data: dict[str, Any] = {
        "coords_id": coords.coords_id, "projection_id": coords.projection_id, "bounds": list(coords.bounds),
        "color_id": color.color_id, "color_kind": color.kind, "color_label": color.label,
        "categories": list(color.categories), "counts": list(color.counts),
        "palette": list(color.palette), "vmin": color.vmin, "vmax": color.vmax,
        "highlight": hl, "context": ctx, "height": int(height), "caption": caption, "view_key": key,
        "labels": list(labels or []),
        "density_id": None if density is None else density.density_id,
        "density_shape": None if density is None else list(density.shape),
        "density_extent": None if density is None else list(density.extent),
        "density_levels": None if density is None else list(density.levels),
        "edges_id": None if edges is None else edges.edges_id,
        "hover_key": None if hover_text is None else f"hover:{hover_id}",
    }  # the selection and hidden categories stay in the browser: a selection changes nothing here
    tables = {"coords": (coords.coords_id, coords.table),
              "color": (color.color_id, color.table),
              "density": (None, None) if density is None else (density.density_id, density.table),
              "edges": (None, None) if edges is None else (edges.edges_id, edges.table)}
    sent = st.session_state.setdefault(_sent_key(key), {"seq": 0})
    for kind in _to_send(have, sent, {kind: t[0] for kind, t in tables.items() if t[1] is not None}):
        data[kind] = tables[kind][1]
    data["seq"] = sent["seq"]
    hovered = st.session_state.get(_hovered_key(key))
    if hover_text is not None and hovered is not None:
        data["hover"] = {"row": int(hovered), "text": hover_text(int(hovered))}
    result = _MAP(key=key, data=data, default={"have": {}, "event": {}},
                  on_have_change=_noop, on_event_change=_noop, on_click_change=_noop,
                  on_hover_change=partial(_remember_hover, key))
    ev = result.get("event") or {}
    if ev.get("projection_id") not in (None, coords.projection_id):
        ev = {}
    click = result.get("click")
    return MapEvent(selection=ev.get("selection"),
                    clicked_row=None if click is None else int(click),
                    hidden=tuple(h for h in ev.get("hidden") or () if h in color.categories),
                    projection_id=ev.get("projection_id"))
