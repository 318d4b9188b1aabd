"""What every page shares: the backend client, the dataset picker, cached loads."""

from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from backend.client import get_backend
from backend.errors import LatentLensError
from backend.kinds import DEFAULT_DATASET, JobSpec

__all__ = ["client", "current_dataset", "select_dataset", "load_table", "load_artifact_table",
           "submit_once"]


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
    """Make ``dataset_id`` the current dataset of the next page that can show it."""
    st.session_state["pending_dataset_id"] = dataset_id


@st.cache_data(show_spinner=False, max_entries=8)
def load_table(_client, dataset_id: str) -> pd.DataFrame:
    return _client.table(dataset_id)


@st.cache_data(show_spinner=False, max_entries=16)
def load_artifact_table(_client, artifact_id: str, name: str) -> pd.DataFrame:
    return _client.artifact_table(artifact_id, name)


def submit_once(c, spec: JobSpec, *, store: str = "jobs") -> str | None:
    """Submit a job once per session (the same spec returns the same id); None on a bad spec,
    whose message is shown."""
    jobs = st.session_state.setdefault(store, {})
    key = (spec.kind, spec.dataset_id, repr(sorted(spec.params.items())))
    if key not in jobs:
        try:
            jobs[key] = c.submit(spec)
        except LatentLensError as e:
            st.error(str(e))
            return None
    return jobs[key]


def current_dataset(kinds: tuple[str, ...] = ("vectors",), *, label: str = "Dataset",
                    key: str = "dataset_id"):
    """The dataset chosen in the sidebar among those of ``kinds``, kept in the page URL
    (``?dataset=<id>``), so a reload or a copied link shows the same one.

    The bundled digits are added on the first visit of a page of vectors. Returns None when
    the workspace has no dataset of these kinds (the page offers to add one).
    """
    c = client()
    datasets = [d for d in c.datasets() if d.kind in kinds]
    if not datasets and "vectors" in kinds:
        with st.spinner("Adding the bundled digits dataset…"):
            c.add_bundled(DEFAULT_DATASET)
        datasets = [d for d in c.datasets() if d.kind in kinds]
    if not datasets:
        return None
    by_id = {d.id: d for d in datasets}
    state = st.session_state
    remembered = f"_{key}"  # survives pages without the picker (Streamlit drops widget state)
    linked = st.query_params.get("dataset")
    pending = state.pop("pending_dataset_id", None) if state.get("pending_dataset_id") in by_id else None
    # The picker on each page is a widget of its own: its value from another page is not
    # carried over by Streamlit, so the choice is set explicitly before the widget is drawn.
    # Precedence: a dataset just added, the picker's current value, the link, the last choice.
    chosen = next((i for i in (pending, state.get(key), linked, state.get(remembered)) if i in by_id),
                  None)
    if chosen is None:
        if linked and not state.get(f"{remembered}-warned"):
            st.warning(f"The dataset in this link ({linked}) is not in this workspace (deleted, "
                       "or the link is from another workspace); showing the default instead.")
            state[f"{remembered}-warned"] = True
        chosen = next((d.id for d in datasets if d.extra.get("bundled") == DEFAULT_DATASET),
                      datasets[-1].id if "vectors" not in kinds else datasets[0].id)
    state[key] = chosen
    st.sidebar.selectbox(
        label, list(by_id), key=key,
        format_func=lambda i: (f"{by_id[i].name} — {by_id[i].n_rows:,} × {by_id[i].n_dims}"
                               if by_id[i].kind == "vectors" else
                               f"{by_id[i].name} — {by_id[i].n_rows:,} rows"),
    )
    state[remembered] = state[key]
    if linked != state[key]:
        if linked:  # the rest of the link (the Map's view) described the dataset left behind
            for other in [k for k in st.query_params if k != "dataset"]:
                del st.query_params[other]
        st.query_params["dataset"] = state[key]
    return by_id[state[key]]
