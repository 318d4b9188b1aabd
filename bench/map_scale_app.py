"""The Streamlit page bench/map_scale.py drives: one synthetic projection, drawn by the WebGL map
or by the plotly path (?renderer=plotly), with a colour choice and a selection count.

Reads the projection from $MAP_SCALE_DIR/points_<n>.parquet (columns _row, x, y, label, score).
"""

import os
import sys
import time
from pathlib import Path

T0 = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from components.map.component import map_view  # noqa: E402
from components.map.encode import DRAW_BUDGET, encode_color, encode_coords  # noqa: E402
from components.scatter import scatter_figure  # noqa: E402
from components.selection import draw_sample, rows_in_selection  # noqa: E402

n = int(st.query_params.get("n", 100_000))
renderer = st.query_params.get("renderer", "webgl")
PLOTLY_BUDGET = 100_000


@st.cache_resource
def points(n: int) -> pd.DataFrame:
    return pd.read_parquet(Path(os.environ["MAP_SCALE_DIR"]) / f"points_{n}.parquet")


@st.cache_resource
def coords(n: int):
    p = points(n)
    return encode_coords(f"bench{n}", p["_row"].to_numpy(), p["x"].to_numpy(), p["y"].to_numpy(),
                         DRAW_BUDGET)


@st.cache_resource
def colour(n: int, column: str):
    return encode_color(points(n)[column], coords(n).positions, column)


@st.cache_data(max_entries=4)
def figure(n: int, column: str):
    p = points(n)
    return scatter_figure(p.iloc[draw_sample(len(p), PLOTLY_BUDGET)], color=column)[0]


df = points(n)
column = st.selectbox("Colour by", ["label", "score"], key="colour")
if renderer == "webgl":
    enc = coords(n)
    ev = map_view(enc, colour(n, column), key="bench-map", caption=f"{enc.n_drawn:,} of {n:,} drawn")
    selection = ev.selection
else:
    event = st.plotly_chart(figure(n, column), key="bench-plotly", on_select="rerun",
                            selection_mode=("box", "lasso"))
    selection = event.selection if event else None
rows = rows_in_selection(df, selection) if selection else None
if rows is not None:
    st.markdown(f"**{len(rows):,} selected**")
st.caption(f"server-ms={1000 * (time.perf_counter() - T0):.0f}")
