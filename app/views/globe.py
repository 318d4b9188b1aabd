"""Globe: where on Earth (a GlobeView) next to where in embedding space (the map), selections
shared; train a location encoder and see its output as a heat map on the globe."""

import contextlib

import numpy as np
import pandas as pd
import streamlit as st

from app import map_points
from app.common import (
    client,
    current_dataset,
    load_artifact_table,
    load_table,
    select_dataset,
    submit_once,
)
from backend.errors import LatentLensError
from backend.kinds import (
    JobSpec,
    default_map_spec,
    geo_columns,
    params_of,
    resolve_task,
    validate_lat_lon,
)
from components.form import param_form
from components.globe import (
    OTHER_COLOR,
    categorical_colors,
    continuous_colors,
    embedding_rgb,
    globe_deck,
    legend_html,
    point_sizes,
)
from components.jobs import job_done
from components.map.component import map_view
from components.map.encode import DRAW_BUDGET, encode_rgb
from components.scatter import category_labels, is_categorical
from components.selection import draw_sample

EMBEDDING = "(embedding: first 3 principal components → RGB)"
NONE = "(none)"
GEO_BUNDLED = {"airports": "US airports (3,376)",
               "world_cities": "World cities, population ≥ 15,000 (34,006)"}
GLOBE_BUDGET = 40_000

c = client()
info = current_dataset()
st.title("Globe")


def offer_geo_datasets(reason: str) -> None:
    """The current dataset has no usable coordinates: say why and offer geo datasets."""
    st.info(reason)
    geo = []
    for d in c.datasets():
        if d.kind == "vectors":
            try:
                geo_columns(d)
                geo.append(d)
            except LatentLensError:
                pass
    cols = st.columns(3)
    for i, d in enumerate(geo[:6]):
        if cols[i % 3].button(f"Show {d.name}", key=f"globe_pick_{d.id}"):
            select_dataset(d.id)
            st.rerun()
    st.markdown("Or add a bundled geo dataset (from PyPI packages; nothing is downloaded):")
    cols = st.columns(len(GEO_BUNDLED))
    for col, (key, label) in zip(cols, GEO_BUNDLED.items()):
        if col.button(label, key=f"globe_add_{key}"):
            try:
                with st.spinner(f"Adding {label}…"):
                    added = c.add_bundled(key)
            except LatentLensError as e:
                st.error(str(e))
                st.stop()
            select_dataset(added.id)
            st.rerun()
    st.stop()


try:
    lat_col, lon_col = geo_columns(info)
except LatentLensError as e:
    offer_geo_datasets(
        f"**{info.name}** has no latitude/longitude columns to show. The globe needs a table "
        "with latitude and longitude columns in degrees: upload one on the Upload page (its "
        f"Coordinates section lets you choose the two columns), or pick one.\n\nDetails: {e}")

table = load_table(c, info.id)
try:
    geo_table, report = validate_lat_lon(table, latitude=lat_col, longitude=lon_col)
except LatentLensError as e:
    st.error(f"The coordinates of **{info.name}** cannot be shown: {e}")
    st.stop()
for w in report.warnings:
    st.warning(w)
st.caption(f"**{info.name}** · {info.n_rows:,} rows × {info.n_dims} dimensions · coordinates "
           f"{lat_col!r}, {lon_col!r}" + (f" · {report.n_longitudes_wrapped:,} longitudes wrapped "
                                          "into [-180, 180)" if report.n_longitudes_wrapped else ""))
meta_cols = [col for col in table.columns if col != "_row"]
numeric_cols = [col for col in meta_cols if pd.api.types.is_numeric_dtype(table[col])
                and not pd.api.types.is_bool_dtype(table[col])]

# -- sidebar: display ------------------------------------------------------------------------
with st.sidebar.expander("Globe display", expanded=True):
    label_col = info.extra.get("label_column")
    color_opts = [NONE, *([EMBEDDING] if info.n_dims >= 2 else []), *meta_cols]
    default_color = (EMBEDDING if info.extra.get("derived_from") and EMBEDDING in color_opts
                     else label_col if label_col in color_opts else NONE)
    color = st.selectbox("Colour by", color_opts, index=color_opts.index(default_color),
                         key=f"globe_color-{info.id}")
    size_col = st.selectbox("Size by", [NONE, *numeric_cols], key=f"globe_size-{info.id}")
    tip_default = [col for col in meta_cols if col not in (lat_col, lon_col)][:3]
    tip_cols = st.multiselect("Tooltip shows", meta_cols, default=tip_default,
                              key=f"globe_tips-{info.id}")
    budget = int(st.number_input("Points on the globe", 1_000, 500_000, GLOBE_BUDGET, 5_000,
                                 key="globe_budget",
                                 help="A uniform sample when the dataset has more rows."))
    map_page_art = st.session_state.get("map_done", {}).get(info.id)  # the Map page's projection
    proj_names = {"map": "as on the Map page", "umap": "UMAP", "pca": "PCA"}
    proj_kind = st.selectbox("Map beside it", ["map", "umap", "pca"] if map_page_art else
                             ["umap", "pca"], key="globe_proj", format_func=proj_names.get)

# -- jobs: the map's projection, the embedding colours, the location encoder -------------------
def _job_artifact(job_id: str | None, label: str, key: str, where=None) -> str | None:
    """The artifact of a finished job (progress, error or what to do shown otherwise)."""
    with where if where is not None else contextlib.nullcontext():
        status = job_done(c, job_id, label=label, key=key, again="reload the page to run it again")
    return status.artifact_id if status is not None else None


if proj_kind == "umap":  # the Map page's default: the same job, computed once
    proj_spec = JobSpec(*default_map_spec(info.n_rows)[:1], info.id, default_map_spec(info.n_rows)[1])
elif proj_kind == "pca":
    proj_spec = JobSpec("pca", info.id, {"n_components": 2})

enc_jobs = st.session_state.setdefault("globe_enc_jobs", {})
enc_job = enc_jobs.get(info.id)
enc_status = c.status(enc_job) if enc_job else None
enc_art = enc_status.artifact_id if enc_status is not None and enc_status.state == "done" else None
enc_meta = c.result(enc_art) if enc_art else None
enc_params = c.artifact(enc_art).params if enc_art else None

left, right = st.columns(2)
globe_key = f"globe-{info.id}"
globe_state = st.session_state.get(globe_key)
globe_sel = np.array([], dtype=np.int64)
if globe_state is not None:
    objs = (globe_state.get("selection") or {}).get("objects", {}).get("points", [])
    globe_sel = np.array(sorted({int(o["_row"]) for o in objs if o and "_row" in o}), dtype=np.int64)

row_rgb = None  # the embedding's colour of every row, when colouring by it
if color == EMBEDDING:
    pca_art = _job_artifact(submit_once(c, JobSpec(
        "pca", info.id, {"n_components": min(3, info.n_dims)}), store="globe_pca_jobs"),
        "Embedding colours (PCA)",
        "globe-pca-job", where=left)
    if pca_art is not None:
        pcs = load_artifact_table(c, pca_art, "projection.parquet").sort_values("_row")
        row_rgb = embedding_rgb(pcs[[a for a in "xyz" if a in pcs]].to_numpy())

# -- the map (right) -------------------------------------------------------------------------
map_sel = np.array([], dtype=np.int64)
with right:
    proj_label = (c.artifact(map_page_art).kind.replace("_", " ").upper() if proj_kind == "map"
                  else proj_names[proj_kind])
    st.markdown(f"**Where in embedding space** — {proj_label} of the {info.n_dims}-D vectors")
    proj_art = map_page_art if proj_kind == "map" else _job_artifact(
        submit_once(c, proj_spec, store="globe_proj_jobs"), f"{proj_label} of {info.name}",
        "globe-proj-job")
    if proj_art is not None:
        proj = map_points.projection(c, proj_art)
        enc = map_points.coords(c, proj_art, DRAW_BUDGET)
        if row_rgb is not None:  # colour it like the globe
            col_enc = encode_rgb(row_rgb[proj["_row"].to_numpy()], enc.positions,
                                 label="embedding colour")
        else:
            col_enc = map_points.colors(c, proj_art, info.id,
                                        None if color in (NONE, EMBEDDING) else color, DRAW_BUDGET)
        event = map_view(enc, col_enc, key=f"globe-map-{info.id}", height=540,
                         highlight_rows=globe_sel if len(globe_sel) else None,
                         caption=f"{enc.n_drawn:,} of {len(proj):,} points drawn",
                         hover_text=(lambda r: map_points.describe_row(
                             map_points.dataset_table(c, info.id), map_points.row_index(c, info.id),
                             r, tip_cols)) if tip_cols else None,
                         hover_id="\x1f".join(tip_cols))
        got = map_points.selected_rows(proj, event.selection, col_enc, event.hidden)
        if got is not None:
            map_sel = got
        st.caption("Drag a box or lasso here: those points light up on the globe."
                   + (f" {col_enc.note}" if col_enc.note else ""))

# -- colours, sizes, heat map ---------------------------------------------------------------
drawn = draw_sample(len(geo_table), budget)
points = geo_table.iloc[drawn]
legend: list[tuple[str, tuple[int, int, int]]] = []
color_note = None
if color == EMBEDDING:
    if row_rgb is not None:
        rgb = row_rgb[points["_row"].to_numpy()]
        color_note = ("Colour (globe and map) = the embedding's first principal components "
                      "(PC1 red, PC2 green, PC3 blue).")
    else:
        rgb = np.tile(np.array(OTHER_COLOR, np.uint8), (len(points), 1))
elif color == NONE:
    rgb = np.tile(np.array((242, 142, 43), np.uint8), (len(points), 1))
elif is_categorical(table[color]):
    cmap, color_note = categorical_colors(table[color])
    rgb = np.array([cmap.get(v, OTHER_COLOR) for v in category_labels(points[color])],
                   dtype=np.uint8)
    legend = list(cmap.items())
else:
    rgb = continuous_colors(points[color])
    vals = pd.to_numeric(table[color], errors="coerce")
    color_note = (f"Colour = {color!r} on a viridis scale ({np.nanpercentile(vals, 2):.3g} → "
                  f"{np.nanpercentile(vals, 98):.3g}).")
n_pts = len(points)
radii = (point_sizes(points[size_col]) if size_col != NONE
         else 5.0 if n_pts < 2_000 else 3.0 if n_pts < 20_000 else 2.0)

heat = heat_colors = None
show_heat = False
if enc_meta is not None:
    show_heat = st.sidebar.toggle("Show the encoder's heat map", True, key=f"globe_heat-{info.id}")
if show_heat:
    heat = load_artifact_table(c, enc_art, "grid.parquet")
    target = enc_params["target_column"]
    if enc_meta.task == "classification":
        cmap, _ = categorical_colors(table[target])
        hrgb = np.array([cmap.get(v, OTHER_COLOR) for v in heat["predicted"].astype(str)], np.uint8)
        n_cls = max(2, len(enc_meta.classes or []))
        conf = np.clip((heat["confidence"].to_numpy() - 1 / n_cls) / (1 - 1 / n_cls), 0, 1)
        alpha = (40 + 160 * conf).astype(np.uint8)
        if color != target:
            legend = list(cmap.items())
    else:
        lo, hi = enc_meta.target_range
        hrgb = continuous_colors(heat["predicted"], lo, hi)
        alpha = np.full(len(heat), 150, np.uint8)
    heat_colors = np.column_stack([hrgb, alpha])

highlight = np.union1d(map_sel, globe_sel)
with left:
    st.markdown("**Where on Earth**" + (f" — with the {enc_params['encoder']} encoder's "
                                         f"{enc_params['target_column']!r} over a "
                                         f"{enc_meta.grid_step:g}° grid" if show_heat else ""))
    deck = globe_deck(
        points, latitude=lat_col, longitude=lon_col, colors=rgb, radii=radii,
        tooltip_columns=tip_cols, highlight=highlight if len(highlight) else None,
        heat=heat, heat_step=float(enc_meta.grid_step) if show_heat else 2.0,
        heat_colors=heat_colors, zoom=1.4, dim_unselected=len(map_sel) > 0,
    )
    st.pydeck_chart(deck, key=globe_key, on_select="rerun", selection_mode="multi-object",
                    height=540)
    notes = [f"{len(points):,} of {len(geo_table):,} points drawn"]
    if color_note:
        notes.append(color_note)
    if show_heat:
        notes.append("Heat map: the trained encoder's output on a regular grid"
                     + (" (opacity = confidence)." if enc_meta.task == "classification" else "."))
    notes.append("Drag to rotate, scroll to zoom; click points to ring them on the map.")
    st.caption(" · ".join(notes))
    if legend:
        st.markdown(legend_html(legend), unsafe_allow_html=True)

# -- below: selection, location encoder, SatCLIP ---------------------------------------------
tab_sel, tab_enc, tab_sat = st.tabs(["Selection", "Location encoder", "SatCLIP"])
with tab_sel:
    if len(highlight) == 0:
        st.info("Select points with a box or lasso on the map (they light up on the globe), or "
                "click points on the globe (they are ringed on the map).")
    else:
        parts = []
        if len(map_sel):
            parts.append(f"{len(map_sel):,} selected on the map")
        if len(globe_sel):
            parts.append(f"{len(globe_sel):,} clicked on the globe")
        st.markdown(f"**{len(highlight):,} selected points** ({', '.join(parts)})")
        st.dataframe(table.set_index("_row").loc[highlight].reset_index(), hide_index=True,
                     height=260, key="globe_selection_table")

with tab_enc:
    st.caption("Train a location encoder (Rußwurm et al., ICLR 2024): a positional encoding of "
               "latitude/longitude — spherical harmonics or a double-Fourier-sphere baseline — "
               "then a SIREN, on a column of this dataset. Its last hidden layer is the location "
               "embedding of every row (stored as a new dataset); its output over the whole "
               "globe is drawn as a heat map.")
    targets = [col for col in meta_cols if col not in (lat_col, lon_col)] or meta_cols
    with st.form(f"globe-enc-form-{info.id}"):
        decl = params_of("location_encoder")
        params: dict = {}
        rows = (("target_column", "task", "encoder"),
                ("degree", "max_epochs", "hidden", "random_state"), ("grid_step",))
        for names in rows:
            for where, name in zip(st.columns(len(names)), names):
                params.update(param_form(decl, key="enc", where=where, only=[name],
                                         columns=targets, overrides={"target_column": {
                                             "default": label_col if label_col in targets
                                             else targets[0]}}))
        if st.form_submit_button("Train the location encoder", type="primary"):
            try:
                enc_jobs[info.id] = c.submit(JobSpec("location_encoder", info.id, params))
            except LatentLensError as e:
                st.error(str(e))
            else:
                st.rerun()
    target, task = params["target_column"], params["task"]
    if task == "auto":
        st.caption(f"{target!r} will be a **{resolve_task(table[target])}** target.")
    if enc_status is not None and enc_status.state != "done":
        _job_artifact(enc_job, "Location encoder", "globe-enc-job")
    if enc_meta is not None:
        m = enc_meta.metrics
        p = enc_params
        cols = st.columns(4)
        if enc_meta.task == "classification":
            cols[0].metric("Accuracy (all labelled rows)", f"{m['accuracy']:.1%}",
                           help=f"majority class alone: {m['majority_baseline']:.1%}")
            cols[1].metric("Classes", m["n_classes"])
        else:
            cols[0].metric("R² (all labelled rows)", f"{m['r2']:.3f}" if m["r2"] is not None else "–")
            cols[1].metric("RMSE", f"{m['rmse']:.4g}")
        cols[2].metric("Epochs", f"{enc_meta.n_iter}", help=f"best epoch {enc_meta.best_epoch}")
        cols[3].metric("Training time", f"{enc_meta.fit_seconds:.1f} s")
        st.caption(f"{p['encoder']}, L = {p['degree']} "
                   f"({enc_meta.n_features_in} features) → SIREN {p['n_layers']}×{p['hidden']}, "
                   f"trained on {enc_meta.n_train:,} rows of {p['target_column']!r} "
                   f"({enc_meta.task}) on {c.artifact(enc_art).device}.")
        st.line_chart(pd.DataFrame({"training loss": enc_meta.loss_curve,
                                    **({"validation loss": enc_meta.validation_loss_curve}
                                       if enc_meta.validation_loss_curve else {})}),
                      height=180, x_label="epoch")
        derived = enc_meta.derived_dataset
        if st.button("Show the location embedding (globe and map)", key="enc_show_derived"):
            select_dataset(derived)
            st.rerun()

with tab_sat:
    st.caption("SatCLIP (Klemmer et al.) location embeddings from a pretrained checkpoint: only its "
               "location encoder is loaded (weights-only, no vision backbone, nothing downloaded).")
    sat = [d for d in c.datasets() if d.kind == "satclip"]
    up = st.file_uploader("SatCLIP checkpoint (.ckpt)", type=["ckpt"], key="satclip_upload")
    if up is not None and st.button("Add checkpoint", key="satclip_add"):
        try:
            with st.spinner("Reading the checkpoint…"):
                added = c.add_satclip(up.getvalue(), up.name)
        except LatentLensError as e:
            st.error(str(e))
        else:
            st.success(f"Added {added.name}: L = {added.extra['satclip']['degree']}, "
                       f"{added.extra['satclip']['embed_dim']}-D embeddings.")
            sat = [d for d in c.datasets() if d.kind == "satclip"]
    if not sat:
        st.info("No SatCLIP checkpoint in the workspace yet. To embed these points with SatCLIP, "
                "supply a SatCLIP checkpoint file here, e.g. `satclip-resnet50-l40.ckpt` from the "
                "Hugging Face repository `microsoft/SatCLIP-ResNet50-L40` (or the ResNet18/ViT16, "
                "L10/L40 variants), downloaded on a machine with internet access. Only its location "
                "encoder is kept.")
    else:
        by_id = {d.id: d for d in sat}
        ck = st.selectbox("Checkpoint", list(by_id), key="satclip_ckpt",
                          format_func=lambda i: (f"{by_id[i].name} "
                                                 f"(L = {by_id[i].extra['satclip']['degree']})"))
        sat_jobs = st.session_state.setdefault("globe_sat_jobs", {})
        if st.button("Embed every row with SatCLIP", key="satclip_run"):
            try:
                sat_jobs[(info.id, ck)] = c.submit(JobSpec("satclip_embed", info.id, {"checkpoint": ck}))
            except LatentLensError as e:
                st.error(str(e))
        sat_art = _job_artifact(sat_jobs.get((info.id, ck)), "SatCLIP embedding", "globe-sat-job")
        if sat_art is not None:
            sat_meta = c.result(sat_art)
            st.success(f"SatCLIP embedding of {info.n_rows:,} rows: "
                       f"{sat_meta.satclip['embed_dim']} dimensions.")
            if st.button("Show the SatCLIP embedding (globe and map)", key="satclip_show"):
                select_dataset(sat_meta.derived_dataset)
                st.rerun()
