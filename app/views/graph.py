"""Graph: a network's node embedding, the graph drawn with its edges, and how much of the graph
the embedding keeps (reconstruction mAP, a label probe, the Laplacian spectrum)."""

import json

import numpy as np
import pandas as pd
import streamlit as st

from app import map_points
from app.common import client, current_dataset, load_artifact_table, load_table, select_dataset
from backend.errors import LatentLensError
from backend.kinds import JobSpec, default_map_spec, edge_list_columns, params_of
from components.form import param_form
from components.graph_view import EDGE_BUDGET, neighbours_of, spectrum_figure
from components.jobs import job_done
from components.map.component import map_view
from components.map.encode import EncodedCoords, EncodedEdges, encode_color, encode_coords, encode_edges
from components.selection import rows_in_selection

BUNDLED_GRAPHS = {"karate_club": "Karate club (34 nodes)",
                  "les_miserables": "Les Misérables (77 nodes)",
                  "florentine_families": "Florentine families (15 nodes)"}
PLACEMENTS = {"force": "Force layout", "pca": "PCA of the embedding",
              "umap": "UMAP of the embedding", "heat_geodesic": "Heat geodesic of the embedding"}
EMBEDDERS = {"fastrp": "FastRP", "eigenmaps": "Laplacian eigenmaps"}
FORCE_MAX = 3000
AUTO_DIAGNOSTICS_MAX = 5000

c = client()
st.title("Graph")
state = st.session_state
jobs = state.setdefault("graph_jobs", {})  # (what, graph id, ...) -> job id


def _submit(key, spec: JobSpec) -> str | None:
    try:
        jobs[key] = c.submit(spec)
        return jobs[key]
    except LatentLensError as e:
        st.error(str(e))
        return None


@st.cache_resource(show_spinner=False, max_entries=4)
def _drawn(key: str, _nodes: pd.DataFrame, _edges: pd.DataFrame,
           budget: int) -> tuple[EncodedCoords, EncodedEdges]:
    """The nodes and edges of one placement (``key``: graph, positions artifact), encoded once."""
    enc = encode_coords(key, _nodes["_row"].to_numpy(), _nodes["x"].to_numpy(), _nodes["y"].to_numpy())
    return enc, encode_edges(_edges["source"].to_numpy(), _edges["target"].to_numpy(), enc, budget)


def _added(info, notes) -> None:
    select_dataset(info.id)
    state["graph_added_notes"] = (info.id, list(notes))
    st.rerun()


def add_graph_section(expanded: bool) -> None:
    with st.expander("Add a graph", expanded=expanded):
        st.markdown("A bundled example (networkx, nothing downloaded):")
        cols = st.columns(len(BUNDLED_GRAPHS))
        for col, (key, label) in zip(cols, BUNDLED_GRAPHS.items()):
            if col.button(label, key=f"graph_add_{key}"):
                try:
                    with st.spinner(f"Adding {label}…"):
                        info, notes = c.add_bundled_graph(key)
                except LatentLensError as e:
                    st.error(str(e))
                    st.stop()
                _added(info, notes)
        st.markdown("Or upload an edge list (CSV/TSV with two endpoint columns and an optional "
                    "`weight` column; string or integer ids) and an optional node table "
                    "(an `id` column plus attributes or labels):")
        a, b = st.columns(2)
        # no extension filter: a refused file's message is shown as text, not a red icon
        edges_file = a.file_uploader("Edge list", key="graph_edges_file")
        nodes_file = b.file_uploader("Node table (optional)", key="graph_nodes_file")
        endpoints = {}
        if edges_file is not None:  # the endpoint columns, proposed from their names
            try:
                cols, src, dst = edge_list_columns(edges_file.getvalue(), edges_file.name)
            except LatentLensError as e:
                st.error(str(e))
                cols, src, dst = [], None, None
            if len(cols) >= 2:
                s_col, t_col = st.columns(2)
                endpoints["source"] = s_col.selectbox(
                    "Source column", cols, index=cols.index(src) if src else 0,
                    key="graph_source_col")
                endpoints["target"] = t_col.selectbox(
                    "Target column", cols, index=cols.index(dst) if dst else 1,
                    key="graph_target_col")
                if src is None:
                    st.info(f"No endpoint columns named like source/target, src/dst, from/to or "
                            f"u/v; choose them among {', '.join(cols)}. If the first line is "
                            "already an edge, add a header line (source,target) to the file.")
        directed = st.checkbox("Directed (an edge a,b goes only from a to b)", key="graph_directed")
        if st.button("Add the graph", key="graph_upload_add", disabled=edges_file is None):
            try:
                with st.spinner("Reading the graph…"):
                    info, notes = c.add_graph(
                        edges_file.getvalue(), edges_file.name,
                        nodes=None if nodes_file is None else nodes_file.getvalue(),
                        nodes_filename=None if nodes_file is None else nodes_file.name,
                        directed=directed, **endpoints)
            except LatentLensError as e:
                st.error(str(e))
                st.stop()
            _added(info, notes)


add_graph_section(expanded=not any(d.kind == "graph" for d in c.datasets()))
info = current_dataset(("graph",), label="Graph", key="graph_id")
if info is None:
    st.info("No graph yet: add a bundled example or upload an edge list above.")
    st.stop()
gid = info.id
report = info.extra.get("graph_report", {})
st.caption(
    f"**{info.name}** · {info.n_rows:,} nodes · {info.extra.get('n_edges', 0):,} edges · "
    f"{'directed' if info.extra.get('directed') else 'undirected'} · "
    f"{'weighted' if info.extra.get('weighted') else 'unweighted'} · "
    f"{report.get('n_components', '?')} connected component(s) · {info.source}")
added = state.get("graph_added_notes")
if added and added[0] == gid:
    st.success(f"Stored **{info.name}**: {info.n_rows:,} nodes, {info.extra.get('n_edges', 0):,} edges.")
findings = report.get("findings", [])
if findings:
    with st.expander(f"What the loader found ({len(findings)})", expanded=True):
        for f in findings:
            st.info(f["message"])

# -- sidebar: the embedding and the placement ----------------------------------------------
n = info.n_rows
n_comp = int(report.get("n_components", 1))
st.sidebar.subheader("Node embedding")
method = st.sidebar.selectbox("Method", list(EMBEDDERS), format_func=EMBEDDERS.get,
                              key="graph_method")
EMBED_SHOWN = {"fastrp": ("n_components", "iteration_weights", "beta", "sparsity", "random_state"),
               "eigenmaps": ("n_components", "laplacian")}
with st.sidebar.form(f"graph-embed-{gid}"):
    hi = max(1, n - n_comp) if method == "eigenmaps" else 1024
    params = {"method": method, **param_form(
        params_of("graph_embed"), key=f"graph-{method}", only=EMBED_SHOWN[method],
        overrides={"n_components": {"high": hi, "default": min(16 if method == "eigenmaps"
                                                               else 64, hi)}})}
    submitted = st.form_submit_button("Embed the graph", type="primary")
if submitted or ("embed", gid) not in jobs:
    if not submitted:
        params = {"method": "fastrp", "n_components": 64}
    _submit(("embed", gid), JobSpec("graph_embed", gid, params))

placements = [p for p in PLACEMENTS if p != "force" or n <= FORCE_MAX]
placement = st.sidebar.radio("Place the nodes by", placements, format_func=PLACEMENTS.get,
                             key="graph_placement")
edge_budget = int(st.sidebar.number_input("Edge draw budget", 1_000, 1_000_000, EDGE_BUDGET, 5_000,
                                          key="graph_edge_budget"))

# -- jobs: layout + communities, embedding, projection ---------------------------------------
if ("layout", gid) not in jobs:
    _submit(("layout", gid), JobSpec("graph_layout", gid, {"force": n <= FORCE_MAX}))


def _finished(key, label: str):
    """The job's status when done; shows progress or the error otherwise (None)."""
    return job_done(c, jobs.get(key), label=label, key=f"graph-job-{key[0]}")


layout_st = _finished(("layout", gid), "Layout and communities")
embed_st = _finished(("embed", gid), "Node embedding")
embed_result = c.result(embed_st.artifact_id) if embed_st else None
emb_id = embed_result.derived_dataset if embed_result else None
emb_info = c.dataset(emb_id) if emb_id else None
if embed_result is not None and embed_result.embedding_report.get("note"):
    st.caption(f"Laplacian eigenmaps: {embed_result.embedding_report['note']}")

proj_st = None
if placement != "force" and emb_id is not None:
    pkey = ("proj", emb_id, placement)
    if pkey not in jobs:
        if placement == "umap":  # the Map page's default map of the embedding: one job
            pp = default_map_spec(n)[1]
        else:
            pp = {"n_components": 2}
            if placement == "heat_geodesic":
                pp["n_neighbors"] = min(params_of("heat_geodesic")["n_neighbors"].default, n - 2)
        _submit(pkey, JobSpec(placement, emb_id, pp))
    proj_st = _finished(pkey, PLACEMENTS[placement])

if layout_st is None or (placement != "force" and proj_st is None):
    st.stop()

# -- the view -------------------------------------------------------------------------------
table = load_table(c, gid)
layout = load_artifact_table(c, layout_st.artifact_id, "layout.parquet")
nodes = table.merge(layout[["_row", "community"]], on="_row", how="left")
nodes["community"] = nodes["community"].astype("Int64").astype(str)
if placement == "force":
    pos = layout[["_row", "x", "y"]]
else:
    pos = load_artifact_table(c, proj_st.artifact_id, "projection.parquet")[["_row", "x", "y"]]
nodes = nodes.merge(pos, on="_row", how="left").sort_values("_row").reset_index(drop=True)
edges = c.graph_edges(gid)
layout_meta = c.result(layout_st.artifact_id)

attr_cols = [col for col in table.columns if col not in ("_row", "id")]
label_col = info.extra.get("label_column")
color_opts = [*([label_col] if label_col in attr_cols else []), "community", "degree",
              *[col for col in attr_cols if col not in (label_col, "degree")], "(none)"]
with st.sidebar.expander("Display", expanded=True):
    color = st.selectbox("Colour nodes by", color_opts, key=f"graph_color-{gid}")
    hover = st.multiselect("Hover shows", attr_cols, default=attr_cols[:3], key=f"graph_hover-{gid}")

id_labels = nodes["id"].astype(str).tolist() if "id" in nodes.columns else [str(i) for i in range(n)]
left, right = st.columns([3, 2], gap="medium")
with left:
    picked = st.selectbox("Select a node (or click / box-select on the graph)",
                          [-1, *range(n)], key=f"graph_pick-{gid}",
                          format_func=lambda r: "(none)" if r < 0 else f"{id_labels[r]} (node {r})")
    sel_key = f"graph_sel-{gid}-{placement}"
    selected = state.get(sel_key)
    if selected is None and picked >= 0:
        selected = np.array([picked])
    pos_id = layout_st.artifact_id if placement == "force" else proj_st.artifact_id
    enc, edges_enc = _drawn(f"{gid}:{pos_id}", nodes, edges, edge_budget)
    col_enc = encode_color(None if color == "(none)" else nodes[color], enc.positions,
                           label="" if color == "(none)" else color)
    where = PLACEMENTS[placement] + ("" if placement == "force" else f" ({emb_info.name})")
    st.caption(f"{n:,} nodes and {edges_enc.caption} · "
               f"placed by {where} · {layout_meta.n_communities} Louvain communities "
               f"(modularity {layout_meta.modularity:.3f})")
    if col_enc.note:
        st.caption(col_enc.note)
    event = map_view(enc, col_enc, key=f"graph-{gid}-{placement}", highlight_rows=selected,
                     context_rows=None if selected is None else neighbours_of(edges, selected),
                     caption=f"{n:,} nodes · {edges_enc.n_drawn:,} edges", edges=edges_enc,
                     hover_text=lambda r: map_points.describe_row(
                         nodes, pd.Index(nodes["_row"]), r, ["id", *hover] if "id" in nodes else hover),
                     hover_id="\x1f".join(hover))
    rows, geom = None, json.dumps(event.selection, sort_keys=True)
    if event.clicked_row is not None:
        rows = np.array([event.clicked_row])
    elif event.selection and geom != state.get(f"{sel_key}-geom"):  # a new box or lasso
        rows = rows_in_selection(nodes[["_row", "x", "y"]], event.selection)
    state[f"{sel_key}-geom"] = geom
    if rows is not None and len(rows) and (selected is None or not np.array_equal(rows, selected)):
        state[sel_key] = rows
        st.rerun()
    if state.get(sel_key) is not None and st.button("Clear the selection", key="graph_clear"):
        state.pop(sel_key, None)
        st.rerun()
    if selected is None or len(selected) == 0:
        st.info("Click a node or drag a box to highlight it and its neighbours.")
    else:
        nb = neighbours_of(edges, selected)
        shown = [col for col in ("id", label_col, "community", "degree") if col and col in nodes]
        names = ", ".join(id_labels[r] for r in selected[:10]) + ("…" if len(selected) > 10 else "")
        st.markdown(f"**{len(selected):,} selected** ({names}) · **{len(nb):,} neighbours**:")
        st.dataframe(nodes.loc[nb, ["_row", *dict.fromkeys(shown)]], hide_index=True,
                     key="graph_neighbours", height=240)

# -- diagnostics ----------------------------------------------------------------------------
with right:
    st.subheader("How much of the graph does the embedding keep?")
    if emb_info is None:
        st.caption("Waiting for the node embedding…")
        st.stop()
    st.caption(f"Embedding: **{emb_info.name}** ({emb_info.n_dims} dimensions).")
    if st.button("Open this embedding on the Map page", key="graph_open_map"):
        select_dataset(emb_id)
        st.switch_page("views/map.py")
    numeric = [col for col in attr_cols if pd.api.types.is_numeric_dtype(table[col])]
    with st.form(f"graph-diag-{gid}"):
        a, b = st.columns(2)
        opts = ["(none)", *attr_cols]
        lab = a.selectbox("Label column (probe)", opts,
                          index=opts.index(label_col) if label_col in opts else 0,
                          key=f"graph_diag_label-{gid}")
        attr = b.selectbox("Attribute (Rayleigh quotient)", ["(none)", *numeric],
                           key=f"graph_diag_attr-{gid}")
        run_diag = st.form_submit_button("Compute diagnostics")
    dkey = ("diag", gid, emb_id)
    if run_diag or (dkey not in jobs and n <= AUTO_DIAGNOSTICS_MAX):
        dp = {"embedding": emb_id, "label_column": None if lab == "(none)" else lab}
        if attr != "(none)":
            dp["attribute"] = attr
        _submit(dkey, JobSpec("graph_diagnostics", gid, dp))
    diag_st = _finished(dkey, "Diagnostics")
    if diag_st is not None:
        d = c.artifact_json(diag_st.artifact_id, "graph_diagnostics.json")
        rec = pd.DataFrame(d["reconstruction"]["table"])
        rnd = pd.DataFrame(d.get("reconstruction_random", {}).get("table", []))
        m = st.columns(len(rec))
        for i, row in rec.iterrows():
            base = rnd.loc[i, "map"] if len(rnd) else None
            m[i].metric(f"mAP, {int(row['hop'])} hop{'s' if row['hop'] > 1 else ''}",
                        f"{row['map']:.3f}",
                        delta=None if base is None else f"{row['map'] - base:+.3f}",
                        help="RESTORE: rank every node by embedding similarity; mean average "
                             "precision of the true neighbours within this many hops.")
        r = d["reconstruction"]
        st.caption(f"{r['metric']} similarity, {r['n_queries']:,} query nodes"
                   f"{' (a random sample)' if r['sampled'] else ''}; the delta is against a random "
                   "embedding of the same shape.")
        with st.expander("Reconstruction table (mAP@k)"):
            st.dataframe(rec, hide_index=True, key="graph_rec_table")
        if d.get("probe"):
            pr = pd.DataFrame(d["probe"]["table"])
            st.markdown(f"**Node classification** of `{d['probe_label']}` "
                        f"({d['probe']['n_classes']} classes, {d['probe']['n_labelled']} labelled "
                        "nodes; one-vs-rest logistic regression):")
            st.dataframe(pr[["train_fraction", "n_train", "micro_f1", "micro_f1_std", "macro_f1",
                             "macro_f1_std"]].round(3), hide_index=True, key="graph_probe_table")
            if d["probe"].get("note"):
                st.caption(d["probe"]["note"])
        elif d.get("probe_note"):
            st.caption(d["probe_note"])
        if d.get("spectrum"):
            ev = c.artifact_array(diag_st.artifact_id, "spectrum.npy")
            sp_ = d["spectrum"]
            st.plotly_chart(spectrum_figure(ev, laplacian=sp_["laplacian"]),
                            key=f"graph-spectrum-{diag_st.artifact_id}")
            st.caption(f"{len(ev):,} {'(all)' if sp_['complete'] else 'smallest'} eigenvalues; "
                       f"{sp_['n_connected_components']} zero(s) = connected components.")
        elif d.get("spectrum_note"):
            st.caption(d["spectrum_note"])
        if d.get("rayleigh"):
            ry = d["rayleigh"]
            st.metric(f"Rayleigh quotient of {d['rayleigh_attribute']}", f"{ry['value']:.3g}",
                      delta=f"{ry['ratio']:.2f}× chance (p = {ry['p_value']:.3f})",
                      delta_color="off",
                      help="Spectral energy xᵀLx/xᵀx: small when neighbours carry similar values; "
                           "below 1× chance the attribute is smoother over the graph than random.")
        elif d.get("rayleigh_note"):
            st.caption(d["rayleigh_note"])
