"""What every page shares: the backend client, the current dataset, cached loads."""

from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from backend.client import get_backend
from backend.datasets.bundled import DEFAULT_DATASET
from backend.errors import LatentLensError

__all__ = ["client", "current_dataset", "select_dataset", "load_table", "load_artifact_table"]


@st.cache_resource(show_spinner=False)
def _client(home: str, url: str):
    return get_backend(home or None)


def client():
    """The backend for this process (one per workspace and service URL)."""
    try:
        return _client(os.environ.get("LATENT_LENS_HOME", ""),
                       os.environ.get("LATENT_LENS_BACKEND_URL", ""))
    except LatentLensError as e:
        st.error(str(e))
        st.stop()


def select_dataset(dataset_id: str) -> None:
    """Make ``dataset_id`` the current dataset from the next run on."""
    st.session_state["pending_dataset_id"] = dataset_id


@st.cache_data(show_spinner=False, max_entries=8)
def load_table(_client, dataset_id: str) -> pd.DataFrame:
    return _client.table(dataset_id)


@st.cache_data(show_spinner=False, max_entries=16)
def load_artifact_table(_client, artifact_id: str, name: str) -> pd.DataFrame:
    return _client.artifact_table(artifact_id, name)


def current_dataset(kinds: tuple[str, ...] = ("vectors",)):
    """The dataset chosen in the sidebar (the bundled default on first visit)."""
    c = client()
    datasets = [d for d in c.datasets() if d.kind in kinds]
    if not datasets:
        with st.spinner("Adding the bundled digits dataset…"):
            c.add_bundled(DEFAULT_DATASET)
        datasets = [d for d in c.datasets() if d.kind in kinds]
    ids = [d.id for d in datasets]
    by_id = {d.id: d for d in datasets}
    pending = st.session_state.pop("pending_dataset_id", None)
    if pending in by_id:
        st.session_state["dataset_id"] = pending
    elif "dataset_id" not in st.session_state and st.session_state.get("_dataset_id") in by_id:
        # a page without the picker was shown in between: Streamlit dropped the widget's state
        st.session_state["dataset_id"] = st.session_state["_dataset_id"]
    if st.session_state.get("dataset_id") not in by_id:
        default = next((d.id for d in datasets if d.extra.get("bundled") == DEFAULT_DATASET), ids[0])
        st.session_state["dataset_id"] = default
    st.sidebar.selectbox(
        "Dataset", ids, key="dataset_id",
        format_func=lambda i: f"{by_id[i].name} — {by_id[i].n_rows:,} × {by_id[i].n_dims} · {i[:6]}",
    )
    st.session_state["_dataset_id"] = st.session_state["dataset_id"]
    return by_id[st.session_state["dataset_id"]]
