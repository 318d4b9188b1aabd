"""Datasets: everything in the workspace, the bundled examples, and past jobs."""

import pandas as pd
import streamlit as st

from app.common import client, current_dataset, select_dataset
from backend.kinds import BUNDLED
from backend.errors import LatentLensError

c = client()
current_dataset()
st.title("Datasets")

datasets = c.datasets()
st.markdown(f"**{len(datasets)}** dataset(s) in the workspace.")
if datasets:
    st.dataframe(pd.DataFrame([{
        "name": d.name, "rows": d.n_rows, "dims": d.n_dims, "kind": d.kind, "source": d.source,
        "id": d.id, "added": pd.Timestamp(d.created, unit="s").strftime("%Y-%m-%d %H:%M"),
    } for d in datasets]), hide_index=True, key="datasets_table")

st.subheader("Add a bundled dataset")
key = st.selectbox("Bundled dataset", list(BUNDLED), key="bundled_key")
if st.button("Add", key="bundled_add"):
    try:
        info = c.add_bundled(key)
    except LatentLensError as e:
        st.error(str(e))
        st.stop()
    select_dataset(info.id)
    st.success(f"Added {info.name}.")
    st.rerun()

st.subheader("Jobs")
jobs = c.jobs()
if jobs:
    names = {d.id: d.name for d in datasets}
    st.dataframe(pd.DataFrame([{
        "kind": j.kind, "dataset": names.get(j.dataset_id, j.dataset_id), "state": j.state,
        "progress": j.progress, "message": j.message, "params": str(j.params), "id": j.id,
    } for j in jobs]), hide_index=True, key="jobs_table")
else:
    st.caption("No jobs yet.")
