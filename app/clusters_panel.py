"""The Map page's clusters, linked filters, downloads and shareable URL (Streamlit glue).

Everything here reaches computation through the backend client; drawing is in
``components/clusters.py``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import streamlit as st

from app.common import submit_once
from backend.errors import LatentLensError
from backend.kinds import JobSpec, params_of
from components.clusters import facet_figure
from components.form import param_form
from components.jobs import job_done

__all__ = ["restore_view", "current_clustering", "clusters_tab", "filters_area", "downloads", "write_view",
           "selection_geometry", "cluster_column"]

_SHOWN = {"hdbscan": ("min_cluster_size", "min_samples"), "kmeans": ("n_clusters", "random_state")}
_VIEW = "map_view"


# ----------------------------------------------------------------------------- URL state


def restore_view(c, info) -> dict:
    """Read the link's view once per dataset (``?proj=…&clu=…&level=…&filters=…&sel=…``).

    Returns the restored fields (projection, clustering, level, color, filters,
    selection) and shows what could not be restored.
    """
    views = st.session_state.setdefault(_VIEW, {})
    if info.id not in views:
        state, messages = c.open_view(dict(st.query_params), default_dataset=info.id)
        same = state.dataset == info.id
        views[info.id] = {k: getattr(state, k) if same else None
                          for k in ("projection", "clustering", "level", "color", "selection")}
        views[info.id]["filters"] = list(state.filters) if same else []
        views[info.id]["messages"] = messages
    for m in views[info.id].get("messages", ()):  # until the page leaves this dataset
        st.warning(m)
    return views[info.id]


def write_view(c, info, **fields) -> None:
    """Put the current view in the page URL, so a copied link reopens it."""
    query = c.view_query(dataset=info.id, **{k: v for k, v in fields.items() if v is not None})
    for key in ("proj", "color", "filters", "sel", "clu", "level"):
        if key not in query and key in st.query_params:
            del st.query_params[key]
    for key, value in query.items():
        if st.query_params.get(key) != value:
            st.query_params[key] = value


# ----------------------------------------------------------------------------- clusters


def current_clustering(c, info, view: dict) -> tuple[str, int] | None:
    """The clustering and level shown, known before the tab is drawn (for the map's colours)."""
    job = st.session_state.get("cluster_jobs", {}).get(info.id)
    status = c.status(job) if job else None
    if status is not None and status.state == "done":
        view["clustering"] = status.artifact_id
    clu = view.get("clustering")
    if clu is None:
        return None
    level = st.session_state.get(f"clu_level-{clu}", view.get("level"))
    return clu, c.result(clu).default_level if level is None else int(level)


def clusters_tab(c, info, projection: str, view: dict) -> tuple[str, int] | None:
    """Compute clusters, slide through their levels, rename them.

    Returns ``(clustering artifact id, level)`` once a clustering is done, else None.
    """
    st.caption("Clusters of the map you see (space 'projection') or of the original vectors. "
               "Points HDBSCAN finds in no dense group are the explicit **Unclustered** group.")
    decl = params_of("cluster")
    with st.form(f"cluster-form-{info.id}"):
        col1, col2 = st.columns(2)
        method = col1.selectbox("Method", decl["method"].choices, key="clu_method")
        space = col2.radio("Space", decl["space"].choices, key="clu_space", horizontal=True,
                           format_func={"projection": "map coordinates",
                                        "vectors": "original vectors"}.get)
        params = param_form(decl, key="clu", only=_SHOWN[method])
        go = st.form_submit_button("Compute clusters")
    jobs = st.session_state.setdefault("cluster_jobs", {})
    if go:
        spec = JobSpec("cluster", info.id, {"method": method, "space": space, **params,
                                            "projection": projection if space == "projection"
                                            else None})
        job = submit_once(c, spec, store="cluster_submits")
        if job is not None:
            jobs[info.id] = job
    clustering = None
    status = job_done(c, jobs.get(info.id), label="Clusters", key="clu-job",
                      again="press **Compute clusters** again")
    if status is not None:
        clustering = status.artifact_id
    elif view.get("clustering"):
        clustering = view["clustering"]
    if clustering is None:
        st.info("Press **Compute clusters** to cluster this map.")
        return None
    if clustering != view.get("clustering"):  # finished since the map was drawn: redraw it
        view["clustering"] = clustering
        st.rerun()
    res = c.result(clustering)
    level = view.get("level")
    if level is None or not 0 <= level < res.n_levels:
        level = res.default_level
    if res.n_levels > 1:
        level = st.select_slider(
            "Granularity (coarse → fine)", options=list(range(res.n_levels)), value=level,
            format_func=lambda i: f"{res.n_clusters[i]} clusters", key=f"clu_level-{clustering}")
    view["level"] = level
    noise = res.noise_fraction[level]
    space_words = "map coordinates" if res.space == "projection" else "original vectors"
    st.markdown(f"**{res.n_clusters[level]} clusters** ({res.method} on the {space_words}) · "
                f"**Unclustered: {noise:.1%}** of the points · names: {res.named_by}")
    if res.note:
        st.info(res.note)
    names = c.cluster_names(clustering, level)
    edited = st.data_editor(
        names[["cluster", "name", "n_rows", "share"]], key=f"clu_names-{clustering}-{level}",
        disabled=["cluster", "n_rows", "share"], hide_index=True, height=240,
        column_config={"share": st.column_config.NumberColumn("share", format="percent")})
    changes = {int(cl): str(new or "") for cl, old, new in
               zip(names["cluster"], names["name"], edited["name"]) if new != old}
    if changes:
        try:
            c.rename_clusters(clustering, level, changes)
        except LatentLensError as e:
            st.error(str(e))
        else:
            st.rerun()
    st.download_button("Download assignments + names (Parquet)",
                       c.assignments_bytes(clustering, level), file_name="clusters.parquet",
                       key="dl_clusters")
    return clustering, level


# ----------------------------------------------------------------------------- filters


def _chart_filter(kind: str, column: str, selection) -> dict | None:
    """The filter a chart's selection means: clicked/boxed categories, or a number range."""
    points = (selection or {}).get("points") or []
    if kind == "category":
        values = sorted({str(p["x"]) for p in points if "x" in p})
        return {"kind": "category", "column": column, "values": values} if values else None
    xs = [x for b in (selection or {}).get("box") or [] for x in b.get("x", [])]
    xs += [v for p in points for v in (p.get("customdata") or [])]  # a clicked bin: its edges
    if not xs:
        return None
    return {"kind": "range", "column": column, "low": float(min(xs)), "high": float(max(xs))}


def filters_area(c, info, dtypes: dict, view: dict, selected) -> np.ndarray | None:
    """Charts of metadata columns, linked: selecting bars filters the other charts and the
    map; a map selection narrows every chart. A chart's filter (brushed, or from a link)
    stays until cleared, or until a new brush on that chart replaces it.

    Returns the row ids passing the chart filters and the selection (None: no filter).
    """
    gen = st.session_state.setdefault(f"filters_gen-{info.id}", 0)
    pinned = view.setdefault("pinned", {f["column"]: f for f in view.get("filters") or []})
    columns = list(dtypes)
    default = list(dict.fromkeys([col for col in (info.extra.get("label_column"), *pinned)
                                  if col in columns])) or columns[:1]
    chosen = st.multiselect("Charts of", columns, default=default, key=f"facet_cols-{info.id}")
    kinds = {col: "numeric" if pd.api.types.is_numeric_dtype(dtypes[col])
             and not pd.api.types.is_bool_dtype(dtypes[col]) else "category" for col in chosen}
    for col in chosen:
        state = st.session_state.get(f"facet-{info.id}-{gen}-{col}") or {}
        flt = _chart_filter(kinds[col], col, state.get("selection"))
        if flt:  # kept until cleared: a redrawn chart forgets its brush
            pinned[col] = flt
    active = {col: f for col, f in pinned.items() if col in chosen}
    view["filters"] = list(active.values())
    try:
        fc = c.facets(info.id, chosen, filters=view["filters"], kinds=kinds,
                      rows=None if selected is None else np.asarray(selected), return_rows=True)
    except LatentLensError as e:
        st.error(str(e))
        return None
    if active:
        st.markdown("**Active filters:** " + "; ".join(_describe(f) for f in active.values())
                    + f" · **{fc.n_selected:,} of {fc.n_rows:,} rows pass**")
        if st.button("Clear filters", key=f"clear_filters-{info.id}"):
            view["filters"], view["pinned"] = [], {}
            st.session_state[f"filters_gen-{info.id}"] = gen + 1
            st.rerun()
    for col in chosen:
        facet = fc.facets[col]
        values = active[col].get("values", ()) if col in active else ()
        st.plotly_chart(facet_figure(facet, values), key=f"facet-{info.id}-{gen}-{col}",
                        on_select="rerun", selection_mode=("points", "box"))
        if facet.kind == "category" and facet.n_distinct > 20:
            st.caption(f"{col}: the 20 most frequent of {facet.n_distinct:,} values; the rest "
                       "are summed as '(other)'.")
    return fc.rows if active else None


def _describe(f: dict) -> str:
    if f["kind"] == "category":
        vals = ", ".join(map(str, f["values"][:5])) + (" …" if len(f["values"]) > 5 else "")
        return f"{f['column']} ∈ {{{vals}}}"
    return f"{f['low']:.3g} ≤ {f['column']} ≤ {f['high']:.3g}"


# ----------------------------------------------------------------------------- downloads


def downloads(c, info, projection: str, rows, clustering: tuple[str, int] | None) -> None:
    """Download the selected rows (CSV / Parquet) and an offline HTML map."""
    col1, col2, col3 = st.columns(3)
    sel = None if rows is None else np.asarray(rows)
    label = "all rows" if sel is None else f"{len(sel):,} selected rows"
    col1.download_button(f"{label} (CSV)", c.selection_bytes(info.id, rows=sel, fmt="csv"),
                         file_name=f"{info.name[:40]}-rows.csv", key="dl_rows_csv")
    col2.download_button(f"{label} (Parquet)", c.selection_bytes(info.id, rows=sel, fmt="parquet"),
                         file_name=f"{info.name[:40]}-rows.parquet", key="dl_rows_parquet")
    clu, level = clustering if clustering else (None, None)
    col3.download_button("Offline HTML map", c.map_html(projection, clustering=clu, level=level),
                         file_name="map.html", mime="text/html", key="dl_html")


def selection_geometry(selection) -> dict | None:
    """The box/lasso part of a plotly selection (what a link stores), or None."""
    if not selection:
        return None
    geo = {k: json.loads(json.dumps(selection.get(k))) for k in ("box", "lasso") if selection.get(k)}
    return geo or None


def cluster_column(c, clustering: tuple[str, int], n_rows: int) -> pd.Series:
    """Each row's cluster name at the chosen level (for colouring the map)."""
    clu, level = clustering
    names = c.cluster_names(clu, level)
    lut = dict(zip(names["cluster"].tolist(), names["name"].tolist()))
    labels = c.cluster_labels(clu, level)
    return pd.Series([lut[int(v)] for v in labels], name="cluster") if len(labels) == n_rows \
        else pd.Series([], dtype=str)
