"""Map: project a dataset, colour it, select points, read their rows and neighbours."""

import os

import numpy as np
import pandas as pd
import streamlit as st

from app import map_points
from app.common import client, current_dataset, load_artifact_table, load_table
from backend.errors import LatentLensError
from backend.jobs import JobSpec
from backend.project.knn import KNN_METRICS
from components.images import image_grid
from components.jobs import job_progress
from components.map.encode import DRAW_BUDGET
from components.scatter import scatter_figure
from components.map.component import map_view
from components.selection import draw_sample, rows_in_selection
from app.panels import representation_panel, search_panel

METHODS = {"umap": "UMAP", "heat_geodesic": "Heat geodesic", "pca": "PCA"}
# "webgl" (components/map, up to millions of points) or "plotly" (the former map; 3-D maps
# always use it, at most PLOTLY_BUDGET points) until the WebGL map wins everywhere.
RENDERER = os.environ.get("LATENT_LENS_MAP_RENDERER", "webgl")
PLOTLY_BUDGET = 100_000
SELECTION_PAGE = 1_000

c = client()
info = current_dataset()
st.title("Map")
st.caption(f"**{info.name}** · {info.n_rows:,} rows × {info.n_dims} dimensions · {info.source}")


def projection_form() -> dict | None:
    """Sidebar: the method, then a form of its parameters; returns the submitted spec, or None."""
    max_k = max(2, min(200, info.n_rows - 1))
    st.sidebar.subheader("Projection")
    method = st.sidebar.selectbox("Method", list(METHODS), format_func=METHODS.get,
                                  key="proj_method")
    with st.sidebar.form("projection"):
        dims = st.radio("Dimensions", [2, 3], horizontal=True, key="proj_dims")
        params: dict = {"n_components": dims}
        if method == "umap":
            params["n_neighbors"] = st.slider(
                "n_neighbors", 2, max_k, min(15, max_k), key="proj_k",
                help="Neighbours per point in the shared kNN graph, the point itself included "
                     "(umap-learn's convention).")
            params["min_dist"] = st.slider("min_dist", 0.0, 1.0, 0.1, 0.05, key="proj_min_dist")
        elif method == "heat_geodesic":
            params["n_neighbors"] = st.slider(
                "n_neighbors", 2, max_k - 1, min(10, max_k - 1), key="proj_hg_k",
                help="Neighbours of each point in the diffusion graph, the point itself excluded.")
            auto_t = st.checkbox("Choose diffusion time t from the graph", True, key="proj_hg_auto")
            t = st.number_input("t (when not automatic)", 0.1, 10_000.0, 10.0, key="proj_hg_t",
                                help="The reference's tau; its default is 10.")
            params["t"] = "auto" if auto_t else float(t)
            params["sigma"] = st.slider("sigma (Harnack regularisation)", 0.0, 1.0, 1.0, 0.1,
                                        key="proj_hg_sigma",
                                        help="The reference's harnack_regul (default 0 there).")
        if method != "pca":
            params["metric"] = st.selectbox("metric", KNN_METRICS, key="proj_metric")
            params["random_state"] = int(st.number_input("random_state", 0, 2**31 - 1, 42,
                                                         key="proj_seed"))
        if not st.form_submit_button("Compute map", type="primary"):
            return None
    return {"kind": method, "params": params}


def default_spec() -> dict:
    k = min(15, info.n_rows - 1)
    return {"kind": "umap", "params": {"n_neighbors": k, "min_dist": 0.1, "metric": "euclidean",
                                       "n_components": 2, "random_state": 42}}


PER_POINT = {"trustworthiness": "per-point trustworthiness", "continuity": "per-point continuity",
             "knn_recall": "per-point kNN recall"}


def _with_scores(data: pd.DataFrame, faith_id: str | None) -> pd.DataFrame:
    if faith_id is None:
        return data
    pp = load_artifact_table(c, faith_id, "per_point.parquet")
    pp = pp[["_row", *[k for k in PER_POINT if k in pp.columns]]].rename(columns=PER_POINT)
    return data.merge(pp, on="_row", how="left")


@st.cache_data(show_spinner=False, max_entries=8)
def _figure(art_id: str, dataset_id: str, color, hover: tuple, budget: int, highlight,
            faith_id: str | None = None):
    """The map figure, cached per display choice: reruns (selections) don't rebuild it."""
    data = load_artifact_table(c, art_id, "projection.parquet").merge(
        load_table(c, dataset_id), on="_row", how="left")
    data = _with_scores(data, faith_id)
    drawn_rows = draw_sample(len(data), budget)
    return scatter_figure(data.iloc[drawn_rows], color=color, hover=list(hover),
                          highlight=None if highlight is None else np.asarray(highlight))


jobs = st.session_state.setdefault("map_jobs", {})
last_done = st.session_state.setdefault("map_done", {})
spec = projection_form()
if spec is None and info.id not in jobs:
    spec = default_spec()
if spec is not None:
    try:
        jobs[info.id] = c.submit(JobSpec(spec["kind"], info.id, spec["params"]))
    except LatentLensError as e:
        st.error(str(e))

job_id = jobs.get(info.id)
status = c.status(job_id) if job_id else None
if status is not None and status.state == "done":
    last_done[info.id] = status.artifact_id
elif status is not None and status.state in ("queued", "running"):
    job_progress(c, job_id, label=f"{METHODS.get(status.kind, status.kind)} of {info.name}",
                 key="map-job")
elif status is not None and status.state == "failed":
    st.error(f"The projection failed: {status.error}")
elif status is not None:
    st.info(f"The projection was {status.state}. Press **Compute map** to run it again.")

art_id = last_done.get(info.id)
if art_id is None:
    st.stop()

meta = c.artifact_json(art_id, "meta.json")
faith_job = c.submit(JobSpec("faithfulness", info.id, {"projection": art_id})) \
    if info.n_rows > 20 else None
faith = c.status(faith_job) if faith_job else None
faith_id = faith.artifact_id if faith is not None and faith.state == "done" else None
proj = map_points.projection(c, art_id)
table = map_points.dataset_table(c, info.id)
meta_cols = [col for col in table.columns if col != "_row"]
webgl = RENDERER != "plotly" and "z" not in proj.columns

with st.sidebar.expander("Display", expanded=True):
    label_col = info.extra.get("label_column")
    options = ["(none)", *meta_cols, *(PER_POINT.values() if faith_id else [])]
    color = st.selectbox("Colour by", options,
                         index=options.index(label_col) if label_col in options else 0,
                         key=f"color-{info.id}")
    hover = st.multiselect("Hover shows", meta_cols, default=meta_cols[:3], key=f"hover-{info.id}")
    top = 10_000_000 if webgl else PLOTLY_BUDGET
    budget = int(st.number_input(
        "Draw budget (points)", 1_000, top, min(DRAW_BUDGET, top), 10_000,
        key="draw_budget" if webgl else "draw_budget_plotly",
        help="Points drawn in the browser; selections always cover every row."
             + ("" if webgl else " This map is drawn with plotly (3-D, or "
                "LATENT_LENS_MAP_RENDERER=plotly): at most 100,000 points.")))

n_rows = len(proj)
if webgl:
    enc = map_points.coords(c, art_id, budget)
    n_drawn, n_nonfinite = enc.n_drawn, enc.n_nonfinite
else:
    n_drawn, n_nonfinite = min(n_rows, budget), 0
p = meta["params"]
title = METHODS.get(meta["kind"], meta["kind"])
if n_drawn + n_nonfinite < n_rows:
    st.warning(f"{n_drawn:,} of {n_rows:,} points drawn (a uniform sample; raise the draw "
               "budget to draw more). Box and lasso selections still cover every row.")
if n_nonfinite:
    st.warning(f"{n_nonfinite:,} rows have NaN or infinite map coordinates: they are not drawn "
               "and cannot be selected.")
st.caption(f"{title} · {n_drawn:,} of {n_rows:,} points drawn · " + ", ".join(
    f"{k}={v}" for k, v in p.items()) + f" · computed in {meta['seconds']:.1f} s on {meta['device']}")

hg = meta.get("heat_geodesic")
if hg:
    st.caption(
        f"Heat geodesic: diffusion time t = {hg['t']:.3g} "
        f"({'chosen from the graph' if hg['t_auto'] else 'as set'}), "
        f"{'Chebyshev order ' + str(hg['order']) if hg['order'] else hg.get('kernel', 'exact') + ' kernel'}, "
        f"{hg['method']} mode on {hg['n_diffusion_nodes']:,} nodes, "
        f"**{hg['saturated_fraction']:.1%} of distances saturated**, MDS stress {hg['stress']:.3f}.")

map_area, search_rows = st.container(), None
if info.extra.get("text_column") and info.extra.get("text_model"):  # a text embedding
    map_area, search_area = st.columns([3, 2], gap="medium")
    with search_area:
        search_rows = search_panel(c, info, table)
nb_row = st.session_state.get("nb_row")
highlight = None
if st.session_state.get("nb_highlight") and nb_row is not None and 0 <= nb_row < info.n_rows:
    nbs = c.neighbors(info.id, int(nb_row), int(st.session_state.get("nb_k", 10)),
                      p.get("metric", "euclidean"))
    highlight = np.concatenate([[int(nb_row)], nbs["_row"].to_numpy()])
if search_rows is not None and len(search_rows):
    highlight = search_rows
selected = clicked = None
if webgl:
    score_col = next((k for k, v in PER_POINT.items() if v == color), None)
    col_enc = map_points.colors(c, art_id, info.id, None if color == "(none)" else color, budget,
                                faith_id if score_col else None, score_col)
    if col_enc.n_folded:
        map_area.caption(f"{color!r} has {len(col_enc.categories) - 1 + col_enc.n_folded:,} "
                         f"categories; the {len(col_enc.categories) - 1} most frequent are coloured, "
                         "the rest are grey ('other').")
    with map_area:
        event = map_view(enc, col_enc, key=f"webmap-{info.id}", highlight_rows=highlight,
                         caption=f"{n_drawn:,} of {n_rows:,} points drawn")
    if event.hidden:
        map_area.caption(f"Hidden in the legend: {', '.join(event.hidden)}. Their points are "
                         "neither drawn nor selected.")
    selected = map_points.selected_rows(proj, event.selection, col_enc, event.hidden)
    clicked = event.clicked_row
    if clicked is not None:
        st.session_state["map_clicked"] = (art_id, clicked)
    last = st.session_state.get("map_clicked")
    if last and last[0] == art_id:
        one = map_points.rows_of(table, map_points.row_index(c, info.id), [last[1]])
        if len(one):
            map_area.caption(f"Clicked row **{last[1]}**: " + " · ".join(
                f"{h}: {str(one.iloc[0][h])[:80]}" for h in hover))
else:
    fig, note = _figure(art_id, info.id, None if color == "(none)" else color, tuple(hover),
                        budget, None if highlight is None else tuple(int(h) for h in highlight),
                        faith_id if color in PER_POINT.values() else None)
    if note:
        map_area.caption(note)
    event = map_area.plotly_chart(fig, key=f"map-{art_id}", on_select="rerun",
                                 selection_mode=("points", "box", "lasso"))

if faith is not None and faith.state in ("queued", "running"):
    job_progress(c, faith_job, label="Scoring the projection's faithfulness", key="faith-job")
elif faith_id is not None:
    f = c.artifact_json(faith_id, "faithfulness.json")
    k = f["n_neighbors"]
    m = st.columns(4)
    m[0].metric(f"Trustworthiness (k={k})", f"{f['trustworthiness']:.3f}",
                help="1 = no point in a map neighbourhood that is far in the original space")
    m[1].metric(f"Continuity (k={k})", f"{f['continuity']:.3f}",
                help="1 = no original-space neighbour pushed away in the map")
    m[2].metric(f"kNN recall (k={k})", f"{f['knn_recall']:.3f}",
                help="share of each point's original-space neighbours kept in the map")
    m[3].metric("Row Spearman vs original distances", f"{f['row_spearman_original']:.3f}",
                help="mean per-row rank correlation of map and original distances")
    if f["sampled"]:
        st.caption(f"Trustworthiness, continuity and Spearman on {f['n_rows']:,} random rows "
                   f"of {f['n_samples']:,} (each against every point); kNN recall on every row.")
elif faith is not None and faith.state == "failed":
    st.caption(f"Faithfulness could not be scored: {faith.error}")

if not webgl and "z" not in proj.columns and event and event.selection:
    selected = rows_in_selection(proj, event.selection)
    if selected is None and event.selection.get("points"):
        selected = np.array(sorted({int(pt["customdata"]) for pt in event.selection["points"]
                                    if pt.get("customdata") is not None}))
if "z" in proj.columns:
    st.caption("3-D maps rotate and zoom; box and lasso selection work on 2-D maps.")

tab_sel, tab_nb, tab_rep, tab_params = st.tabs(
    ["Selection", "Nearest neighbours", "Representation", "Parameters"])
with tab_sel:
    if "z" in proj.columns:
        st.info("Selection works on 2-D maps: choose 2 dimensions and compute the map again.")
    elif selected is None or len(selected) == 0:
        st.info("Drag a box or lasso on the map (or click a point) to select points.")
    else:
        index = map_points.row_index(c, info.id)
        n_pages = -(-len(selected) // SELECTION_PAGE)
        head = st.columns([3, 1, 2])
        head[0].markdown(f"**{len(selected):,} selected points**")
        page = int(head[1].number_input("Page", 1, n_pages, 1, key="selection_page",
                                        label_visibility="collapsed",
                                        help=f"{SELECTION_PAGE:,} rows a page")) if n_pages > 1 else 1
        head[2].download_button(
            f"Download the {len(selected):,} rows (CSV)",
            data=lambda: map_points.rows_of(table, index, selected).to_csv(index=False),
            file_name=f"{info.name}-selection.csv", mime="text/csv", key="selection_download",
            on_click="ignore")
        rows = map_points.rows_of(table, index, selected[(page - 1) * SELECTION_PAGE:page * SELECTION_PAGE])
        if n_pages > 1:
            st.caption(f"Page {page} of {n_pages}: rows {(page - 1) * SELECTION_PAGE + 1:,}–"
                       f"{min(page * SELECTION_PAGE, len(selected)):,} of {len(selected):,}.")
        st.dataframe(rows, hide_index=True, key="selection_table", height=260)
        shape = info.extra.get("image_shape")
        if shape:
            show = [int(r) for r in selected[:48]]
            labels = map_points.rows_of(table, index, show)[label_col].tolist() if label_col else None
            captions = ([f"{r}: {v}" for r, v in zip(show, labels)] if labels is not None
                        else [f"row {r}" for r in show])
            image_grid(c.rows(info.id, show), show, tuple(shape), captions=captions)
            if len(selected) > 48:
                st.caption(f"First 48 of {len(selected):,} images shown.")
with tab_nb:
    default_row = int(selected[0]) if selected is not None and len(selected) else 0
    first = int(selected[0]) if selected is not None and len(selected) else None
    if ("nb_row" not in st.session_state or st.session_state.get("nb_dataset") != info.id
            or (first is not None and first != st.session_state.get("nb_first"))):
        st.session_state["nb_row"] = default_row  # a new selection: its first point
        st.session_state["nb_dataset"] = info.id
    st.session_state["nb_first"] = first
    c1, c2, c3 = st.columns([1, 1, 2])
    row = c1.number_input("Row", 0, info.n_rows - 1, key="nb_row")
    k = c2.number_input("k", 1, min(100, info.n_rows - 1), 10, key="nb_k")
    c3.checkbox("Highlight on the map", key="nb_highlight")
    metric = p.get("metric", "euclidean")
    nbs = c.neighbors(info.id, int(row), int(k), metric)
    out = nbs.merge(map_points.rows_of(table, map_points.row_index(c, info.id), nbs["_row"]),
                    on="_row", how="left")
    st.markdown(f"The {int(k)} nearest rows to row **{int(row)}** in the original "
                f"{info.n_dims}-dimensional space ({metric} distance):")
    st.dataframe(out, hide_index=True, key="neighbors_table", height=260)
    shape = info.extra.get("image_shape")
    if shape:
        show = [int(row), *out["_row"].astype(int).tolist()]
        caps = ["query", *[f"d={d:.1f}" for d in out["distance"]]]
        image_grid(c.rows(info.id, show), show, tuple(shape), captions=caps)
with tab_rep:
    representation_panel(c, info, meta_cols, label_col)
with tab_params:
    st.json({k: meta[k] for k in ("kind", "params", "seconds", "device", "device_reason",
                                  "versions", "job_id") if k in meta}, expanded=False)
