"""Map: project a dataset, colour it, select points, read their rows and neighbours."""

import os

import numpy as np
import streamlit as st

from app import map_points
from app.clusters_panel import (cluster_column, clusters_tab, current_clustering, downloads,
                                filters_area, restore_view, selection_geometry, write_view)
from app.common import client, current_dataset, load_artifact_table, load_table, submit_once
from app.panels import faithfulness_panel, representation_panel, search_panel
from app.quick_map import map_to_show
from backend.errors import LatentLensError
from backend.kinds import JobSpec, default_map_spec, kind_title, params_of
from components.clusters import add_cluster_names, add_density, cluster_centres
from components.form import param_form
from components.images import image_grid
from components.jobs import job_done
from components.map.component import map_view
from components.map.encode import DRAW_BUDGET
from components.scatter import scatter_figure
from components.selection import draw_sample, rows_in_selection

METHODS = ("umap", "heat_geodesic", "pca")
SHOWN = {"umap": ("n_components", "n_neighbors", "min_dist", "metric", "random_state"),
         "heat_geodesic": ("n_components", "n_neighbors", "t", "sigma", "metric", "random_state"),
         "pca": ("n_components",)}
# "webgl" (components/map, up to millions of points) or "plotly" (the former map; 3-D maps
# always use it, at most PLOTLY_BUDGET points) until the WebGL map wins everywhere.
RENDERER = os.environ.get("LATENT_LENS_MAP_RENDERER", "webgl")
PLOTLY_BUDGET = 100_000
SELECTION_PAGE = 1_000
PER_POINT = {"trustworthiness": "per-point trustworthiness", "continuity": "per-point continuity",
             "knn_recall": "per-point kNN recall"}

c = client()
info = current_dataset()
st.title("Map")
st.caption(f"**{info.name}** · {info.n_rows:,} rows × {info.n_dims} dimensions · {info.source}")
view = restore_view(c, info)


def projection_form() -> tuple[str, dict] | None:
    """Sidebar: the method, then a form of its declared parameters; the submitted spec."""
    st.sidebar.subheader("Projection")
    method = st.sidebar.selectbox("Method", METHODS, format_func=kind_title, key="proj_method")
    decl = params_of(method)
    max_k = max(1, min(200, info.n_rows - 1))
    overrides = {"n_components": {"high": min(3, max(2, info.n_dims))}}
    if "n_neighbors" in decl:
        overrides["n_neighbors"] = {"high": max_k,
                                    "default": min(decl["n_neighbors"].default, max_k)}
    with st.sidebar.form("projection"):
        params = param_form(decl, key=f"proj-{method}", only=SHOWN[method], overrides=overrides)
        if not st.form_submit_button("Compute map", type="primary"):
            return None
    return method, params


@st.cache_data(show_spinner=False, max_entries=8)
def _figure(art_id: str, dataset_id: str, color, hover: tuple, budget: int, highlight,
            faith_id: str | None = None, clustering: tuple | None = None, density: bool = False,
            names: bool = True):
    """The map figure, cached per display choice: reruns (selections) don't rebuild it."""
    data = load_artifact_table(c, art_id, "projection.parquet").merge(
        load_table(c, dataset_id), on="_row", how="left")
    if clustering is not None:
        data["cluster"] = cluster_column(c, clustering, len(data)).to_numpy()
    if faith_id is not None:
        pp = load_artifact_table(c, faith_id, "per_point.parquet")
        pp = pp[["_row", *[k for k in PER_POINT if k in pp.columns]]].rename(columns=PER_POINT)
        data = data.merge(pp, on="_row", how="left")
    drawn_rows = draw_sample(len(data), budget)
    fig, note = scatter_figure(data.iloc[drawn_rows], color=color, hover=list(hover),
                               highlight=None if highlight is None else np.asarray(highlight),
                               all_values=data[color] if color in data.columns else None)
    if density and "z" not in data.columns:
        add_density(fig, c.density(art_id))
    if names and clustering is not None and "z" not in data.columns:
        add_cluster_names(fig, cluster_centres(data["x"], data["y"], c.cluster_labels(*clustering)),
                          c.cluster_names(*clustering))
    return fig, note


jobs = st.session_state.setdefault("map_jobs", {})
last_done = st.session_state.setdefault("map_done", {})
spec = projection_form()
if view.get("projection") and info.id not in last_done:
    last_done[info.id] = view["projection"]  # the link's map
if spec is None and info.id not in jobs and info.id not in last_done:
    spec = default_map_spec(info.n_rows)
if spec is not None:
    try:
        jobs[info.id] = c.submit(JobSpec(spec[0], info.id, spec[1]))
    except LatentLensError as e:
        st.error(str(e))

job_id = jobs.get(info.id)
status = job_done(c, job_id, label=f"{kind_title(c.status(job_id).kind) if job_id else 'Map'} "
                                   f"of {info.name}", key="map-job",
                  again="press **Compute map** to run it again")
if status is not None:
    last_done[info.id] = status.artifact_id
art_id, quick_note = map_to_show(c, info, job_id, last_done.get(info.id))
if art_id is None:
    st.stop()
if quick_note:
    st.info(quick_note)

art = c.artifact(art_id)
result = c.result(art_id)
faith_job = submit_once(c, JobSpec("faithfulness", info.id, {"projection": art_id}),
                        store="faith_jobs") if info.n_rows > 20 and not quick_note else None
faith = c.status(faith_job) if faith_job else None
faith_id = faith.artifact_id if faith is not None and faith.state == "done" else None
proj = map_points.projection(c, art_id)
table = map_points.dataset_table(c, info.id)
id_col = info.extra.get("id_column") if info.extra.get("id_column") in table.columns else None


def id_of(row: int) -> str:
    """The dataset's id of a row (its id column, chosen at upload)."""
    return str(table[id_col].iat[map_points.row_index(c, info.id).get_loc(int(row))])

webgl = RENDERER != "plotly" and "z" not in proj.columns
meta_cols = [col for col in table.columns if col != "_row"]
label_col = info.extra.get("label_column")

clustering = current_clustering(c, info, view)
with st.sidebar.expander("Display", expanded=True):
    options = ["(none)", *meta_cols, *(["cluster"] if clustering else []),
               *(PER_POINT.values() if faith_id else [])]
    first = view.get("color") if view.get("color") in options else label_col
    color = st.selectbox("Colour by", options,
                         index=options.index(first) if first in options else 0,
                         key=f"color-{info.id}")
    show_density = st.checkbox(
        "Density contours", key=f"density-{info.id}",
        help="Shaded regions and lines around the densest 25, 50, 75 and 90 % of the points.")
    show_names = bool(clustering) and st.checkbox(
        "Cluster names", value=True, key=f"names-{info.id}",
        help="Names at the cluster centres; zoom in to see the names of smaller clusters.")
    hover = st.multiselect("Hover shows", meta_cols, default=meta_cols[:3], key=f"hover-{info.id}")
    top = 10_000_000 if webgl else PLOTLY_BUDGET
    budget = int(st.number_input(
        "Draw budget (points)", 1_000, top, min(DRAW_BUDGET, top), 10_000,
        key="draw_budget" if webgl else "draw_budget_plotly",
        help="Points drawn in the browser; selections always cover every row."
             + ("" if webgl else " This map is drawn with plotly (3-D, or "
                "LATENT_LENS_MAP_RENDERER=plotly): at most 100,000 points.")))

if webgl:
    enc = map_points.coords(c, art_id, budget)
    n_drawn, n_nonfinite = enc.n_drawn, enc.n_nonfinite
else:
    n_drawn, n_nonfinite = min(budget, len(proj)), 0
if n_drawn + n_nonfinite < len(proj):
    st.warning(f"{n_drawn:,} of {len(proj):,} points drawn (a uniform sample; raise the draw "
               "budget to draw more). Box and lasso selections still cover every row.")
if n_nonfinite:
    st.warning(f"{n_nonfinite:,} rows have NaN or infinite map coordinates: they are not drawn "
               "and cannot be selected.")
st.caption(f"{kind_title(art.kind)} · {n_drawn:,} of {len(proj):,} points drawn · "
           + ", ".join(f"{k}={v}" for k, v in art.params.items())
           + f" · computed in {art.seconds:.1f} s on {art.device}")
for line in (getattr(result, "description", None) if not quick_note else None,
             getattr(result, "note", None)):
    if line:
        st.caption(line)
hg = result.heat_geodesic
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
    try:
        nbs = c.neighbors(info.id, int(nb_row), int(st.session_state.get("nb_k", 10)),
                          art.params.get("metric", "euclidean"))
        highlight = np.concatenate([[int(nb_row)], nbs["_row"].to_numpy()])
    except LatentLensError:
        highlight = None  # the neighbours tab says why
if search_rows is not None and len(search_rows):
    highlight = search_rows
three_d = "z" in proj.columns
geometry = None
if webgl:
    score_col = next((k for k, v in PER_POINT.items() if v == color), None)
    by_cluster = color == "cluster" and clustering is not None
    col_enc = map_points.colors(
        c, art_id, info.id, None if color == "(none)" else color, budget,
        faith_id if score_col else None, score_col, clustering if by_cluster else None,
        tuple(c.cluster_names(*clustering)["name"]) if by_cluster else ())
    if col_enc.note:
        map_area.caption(col_enc.note)
    with map_area:
        event = map_view(enc, col_enc, key=f"webmap-{info.id}", highlight_rows=highlight,
                         caption=f"{n_drawn:,} of {len(proj):,} points drawn",
                         labels=map_points.cluster_labels(c, art_id, clustering) if show_names else None,
                         density=map_points.density(c, art_id) if show_density else None,
                         hover_text=(lambda r: map_points.describe_row(
                             table, map_points.row_index(c, info.id), r, hover)) if hover else None,
                         hover_id="\x1f".join(hover))
    if event.hidden:
        map_area.caption(f"Hidden in the legend: {', '.join(event.hidden)}. Their points are "
                         "neither drawn nor selected.")
    selected = map_points.selected_rows(proj, event.selection, col_enc, event.hidden)
    geometry = event.selection or None
    if event.clicked_row is not None:
        st.session_state["map_clicked"] = (art_id, event.clicked_row)
    last = st.session_state.get("map_clicked")
    if last and last[0] == art_id and hover:
        text = map_points.describe_row(table, map_points.row_index(c, info.id), last[1], hover)
        if text:
            map_area.caption(f"Clicked row **{last[1]}**: {text}")
else:
    map_state = st.session_state.get(f"map-{art_id}") or {}
    geometry = selection_geometry(map_state.get("selection")) or view.get("selection")
    selected = rows_in_selection(proj, geometry) if geometry and not three_d else None
with st.expander("Filters", expanded=True):
    passing = filters_area(c, info, table.drop(columns="_row").dtypes.to_dict(), view, selected)
if passing is not None:
    highlight = passing
    selected = passing
if not webgl:
    fig, note = _figure(art_id, info.id, None if color == "(none)" else color, tuple(hover),
                        budget, None if highlight is None else tuple(int(h) for h in highlight),
                        faith_id if color in PER_POINT.values() else None,
                        clustering if clustering and not three_d else None, bool(show_density),
                        show_names)
    if note:
        map_area.caption(note)
    map_area.plotly_chart(fig, key=f"map-{art_id}", on_select="rerun",
                          selection_mode=("points", "box", "lasso"))
faithfulness_panel(c, faith, faith_job)

if three_d:
    st.caption("3-D maps rotate and zoom; box and lasso selection work on 2-D maps.")

tab_sel, tab_clu, tab_nb, tab_rep, tab_params = st.tabs(
    ["Selection", "Clusters", "Nearest neighbours", "Representation", "Parameters"])
shape = info.extra.get("image_shape")
with tab_sel:
    if three_d:
        st.info("Selection works on 2-D maps: choose 2 dimensions and compute the map again.")
    elif selected is None:
        st.info("Drag a box or lasso on the map (or click a point) to select points.")
    elif len(selected) == 0:
        st.info("No point lies in the selection (points of hidden legend categories are never "
                "selected). Drag another box or lasso, or press **Clear selection**.")
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
        lo = (page - 1) * SELECTION_PAGE
        rows = map_points.rows_of(table, index, selected[lo:lo + SELECTION_PAGE])
        if n_pages > 1:
            st.caption(f"Page {page} of {n_pages}: rows {lo + 1:,}–"
                       f"{min(lo + SELECTION_PAGE, len(selected)):,} of {len(selected):,}.")
        st.dataframe(rows, key="selection_table", height=260,
                     **map_points.table_options(rows.columns, id_col))
        if shape:
            show = [int(r) for r in selected[:48]]
            labels = map_points.rows_of(table, index, show)[label_col].tolist() if label_col else None
            captions = ([f"{r}: {v}" for r, v in zip(show, labels)] if labels is not None
                        else [f"row {r}" for r in show])
            image_grid(c.rows(info.id, show), show, tuple(shape), captions=captions)
            if len(selected) > 48:
                st.caption(f"First 48 of {len(selected):,} images shown.")
with tab_clu:
    clustering = clusters_tab(c, info, art_id, view)
downloads(c, info, art_id, selected, clustering)
write_view(c, info, projection=art_id, color=None if color == "(none)" else color,
           filters=view.get("filters") or None, selection=geometry,
           clustering=clustering[0] if clustering else None,
           level=clustering[1] if clustering else None)
with tab_nb:
    first = int(selected[0]) if selected is not None and len(selected) else None
    if ("nb_row" not in st.session_state or st.session_state.get("nb_dataset") != info.id
            or (first is not None and first != st.session_state.get("nb_first"))):
        st.session_state["nb_row"] = first or 0  # a new selection: its first point
        st.session_state["nb_dataset"] = info.id
    st.session_state["nb_first"] = first
    c1, c2, c3 = st.columns([1, 1, 2])
    if id_col:  # asked for by the dataset's own id (issue 17, item 24)
        first_id = id_of(st.session_state["nb_row"])
        if st.session_state.get("nb_id_for") != st.session_state["nb_row"]:
            st.session_state["nb_id"] = first_id
            st.session_state["nb_id_for"] = st.session_state["nb_row"]
        asked = c1.text_input(f"Id ({id_col})", key="nb_id")
        found = map_points.row_of_id(c, info.id, id_col, asked)
        if found is None:
            st.warning(f"No row has {id_col} = {asked!r}; showing the neighbours of "
                       f"{first_id!r}.")
        elif found != st.session_state["nb_row"]:  # the row the map's highlight reads
            st.session_state["nb_row"] = st.session_state["nb_id_for"] = found
            if st.session_state.get("nb_highlight"):
                st.rerun()
        row = st.session_state["nb_row"]
    else:
        row = c1.number_input("Row", 0, info.n_rows - 1, key="nb_row")
    k = c2.number_input("k", 1, min(100, info.n_rows - 1), min(10, info.n_rows - 1), key="nb_k")
    c3.checkbox("Highlight on the map", key="nb_highlight")
    metric = art.params.get("metric", "euclidean")
    try:
        nbs = c.neighbors(info.id, int(row), int(k), metric)
        out = nbs.merge(map_points.rows_of(table, map_points.row_index(c, info.id), nbs["_row"]),
                        on="_row", how="left")
    except LatentLensError as e:  # e.g. a zero vector under the cosine metric
        st.warning(str(e))
        out = None
    if out is not None:
        who = f"{id_col} **{id_of(row)}**" if id_col else f"row **{int(row)}**"
        st.markdown(f"The {len(out)} nearest rows to {who} in the original "
                    f"{info.n_dims}-dimensional space ({metric} distance):")
        st.dataframe(out, key="neighbors_table", height=260,
                     **map_points.table_options(out.columns, id_col))
    if shape and out is not None:
        show = [int(row), *out["_row"].astype(int).tolist()]
        caps = ["query", *[f"d={d:.1f}" for d in out["distance"]]]
        image_grid(c.rows(info.id, show), show, tuple(shape), captions=caps)
with tab_rep:
    representation_panel(c, info, meta_cols, label_col)
with tab_params:
    st.json({"kind": art.kind, "params": art.params, "seconds": art.seconds,
             "device": art.device, "device_reason": art.device_reason,
             "result": result.to_dict(), "job_id": art.id}, expanded=False)
