"""Model health: weight spectra of a model's layers, heavy-tail metrics, side-by-side comparison."""

import pandas as pd
import streamlit as st

from app.common import client, current_dataset, load_artifact_table, select_dataset
from backend.errors import LatentLensError
from backend.kinds import JobSpec
from components.jobs import job_done
from components.spectra import alpha_bars, esd_figure

c = client()
st.title("Model health")
st.caption("Eigenvalue spectra of every weight matrix (WeightWatcher's conventions): the power-law "
           "exponent alpha of each layer's spectral density, its Marchenko–Pastur bulk and spikes.")

if not any(d.kind == "model" for d in c.datasets()):
    with st.spinner("Adding the bundled all-MiniLM-L6-v2…"):
        c.add_bundled_model()

with st.sidebar.expander("Add model weights", expanded=False):
    up = st.file_uploader("safetensors or PyTorch state dict", key="model_upload",
                          type=["safetensors", "pt", "pth", "bin", "ckpt"])
    if up is not None and st.button("Add model", key="model_add"):
        try:
            added = c.add_model(up.getvalue(), up.name)
        except LatentLensError as e:
            st.error(str(e))
        else:
            select_dataset(added.id)
            st.success(f"Added {added.name} ({added.n_rows} tensors).")
            st.rerun()

model = current_dataset(("model",), label="Model", key="health_model")
model_id = model.id
by_id = {m.id: m for m in c.datasets() if m.kind == "model"}
compare_options = ["(none)", "random_init", *[m for m in by_id if m != model_id]]
compare = st.sidebar.selectbox(
    "Compare with", compare_options, key="health_compare",
    format_func=lambda i: {"(none)": "(nothing)", "random_init": "a random init of the same architecture"}
    .get(i, by_id[i].name if i in by_id else i))
farms = st.sidebar.toggle("FARMS alpha (default) — off: plain fit", True, key="health_farms",
                          help="FARMS pools fixed-aspect-ratio windows of each matrix before the fit, "
                               "removing the aspect-ratio bias of the plain power-law fit.")

runs = {by_id[model_id].name: (model_id, {})}
if compare == "random_init":
    runs["random init (baseline)"] = (model_id, {"baseline": "random_init"})
elif compare in by_id:
    runs[by_id[compare].name] = (compare, {})

results = {}
for label, (mid, params) in runs.items():
    try:
        job_id = c.submit(JobSpec("weights", mid, params))
    except LatentLensError as e:
        st.error(str(e))
        st.stop()
    status = job_done(c, job_id, label=f"Spectra of {label}", key=f"w-{job_id}",
                      again="reload the page to run it again")
    if status is not None:
        results[label] = status.artifact_id
if not results:
    st.stop()

method = "farms" if farms else "plain"
shown = "FARMS" if farms else "plain"
column = f"alpha_{method}"
layers = {label: load_artifact_table(c, aid, "layers.parquet") for label, aid in results.items()}
cols = st.columns(len(results))
for col, (label, aid) in zip(cols, results.items()):
    s = c.result(aid).summary
    col.markdown(f"**{label}**")
    a, b, d = col.columns(3)
    mean = s.get(column)
    a.metric(f"mean alpha ({shown})", "–" if mean is None else f"{mean:.2f}")
    count_help = (f"Counted on the {shown} alphas shown"
                  + ("; WeightWatcher calibrated the 2 and 6 thresholds on the plain fit."
                     if farms else ", the scale WeightWatcher calibrated the thresholds on."))
    b.metric(f"layers, {shown} alpha < 2", s.get(f"n_over_trained_{method}", "–"),
             help=count_help)
    d.metric(f"layers, {shown} alpha > 6", s.get(f"n_under_trained_{method}", "–"),
             help=count_help)
    col.caption(f"{s['n_layers']} layers analysed, {s['n_skipped']} skipped · mean stable rank "
                f"{s['stable_rank']:.1f} · mean MP soft rank {s['mp_softrank']:.2f}")

st.subheader("Alpha per layer")
st.plotly_chart(alpha_bars({k: v for k, v in layers.items()}, column), key="health_bars")
st.caption(f"Bars: {shown} alpha. Bands from WeightWatcher: below 2 over-fit risk, 2–6 typical "
           "of well-trained layers, above 6 under-trained or random-like; the counters above "
           f"count the {shown} alphas in them."
           + (" WeightWatcher calibrated the bands on the plain fit, so against FARMS alphas "
              "they are a guide; switch FARMS off to see the plain alphas and their counts."
              if farms else ""))

st.subheader("Spectral density of one layer")
first_label, first_aid = next(iter(results.items()))
names = layers[first_label]["name"].tolist()
layer = st.selectbox("Layer", names, key="health_layer")
esd_cols = st.columns(len(results))
for col, (label, aid) in zip(esd_cols, results.items()):
    spectra = load_artifact_table(c, aid, "spectra.parquet")
    lines = load_artifact_table(c, aid, "fit_lines.parquet")
    row = layers[label][layers[label]["name"] == layer]
    if row.empty:
        col.info(f"{label} has no layer {layer}.")
        continue
    row = row.iloc[0]
    method = "farms" if farms and row.get("farms_windows", 0) else "plain"
    spectrum = "farms" if method == "farms" else "full"
    ev = spectra[(spectra["name"] == layer) & (spectra["spectrum"] == spectrum)]["eigenvalue"].to_numpy()
    line = lines[(lines["name"] == layer) & (lines["method"] == method)]
    xmin = row.get(f"xmin_{method}")
    fig = esd_figure(ev, fit_x=line["x"].to_numpy(), fit_y=line["y"].to_numpy(),
                     xmin=float(xmin) if pd.notna(xmin) else None,
                     bulk_max=float(row["bulk_max"]) if method == "plain" and pd.notna(row.get("bulk_max")) else None,
                     alpha=float(row[f"alpha_{method}"]) if pd.notna(row[f"alpha_{method}"]) else None,
                     title=f"{label} · {row['shape']} · {method}")
    col.plotly_chart(fig, key=f"esd-{aid}")
    col.caption(f"{len(ev):,} eigenvalues · alpha {row[f'alpha_{method}']:.2f} · "
                f"MP spikes {row['num_spikes'] if pd.notna(row['num_spikes']) else '–'}")

st.subheader("Per-layer metrics")
label_tab = st.tabs(list(results))
for tab, (label, aid) in zip(label_tab, results.items()):
    with tab:
        show = ["name", "shape", "alpha", "alpha_plain", "alpha_farms", "alpha_weighted", "log_norm",
                "log_spectral_norm", "stable_rank", "num_spikes", "mp_softrank", "warning"]
        df = layers[label]
        st.dataframe(df[[c_ for c_ in show if c_ in df.columns]], hide_index=True)
        skipped = load_artifact_table(c, aid, "skipped.parquet")
        if len(skipped):
            one_d = skipped["reason"].str.startswith("1-D").to_numpy()
            parts = ([f"{int(one_d.sum())} 1-D tensors (biases, norm scales: no matrix)"]
                     if one_d.any() else [])
            parts += [f"{r['name']} ({r['reason']})" for _, r in skipped[~one_d].head(5).iterrows()]
            st.caption(f"{len(skipped)} tensor(s) not analysed: " + "; ".join(parts)
                       + (" …" if (~one_d).sum() > 5 else ""))
            with st.expander(f"All {len(skipped)} tensors not analysed"):
                st.dataframe(skipped, hide_index=True, key=f"skipped-{aid}")
        ignored = c.result(aid).summary.get("ignored") or []
        if ignored:
            st.caption("Left out of the checkpoint (not tensors; no code from the file was "
                       "run): " + "; ".join(ignored[:10]) + (" …" if len(ignored) > 10 else ""))
