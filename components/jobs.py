"""Job progress: a fragment that polls the backend and reruns the page when the job ends."""

from __future__ import annotations

import streamlit as st

__all__ = ["job_progress"]


def job_progress(client, job_id: str, *, label: str, key: str, interval: float = 0.7) -> None:
    """Show a job's progress bar with a Cancel button until it finishes.

    Polls ``client.status(job_id)`` every ``interval`` seconds in a fragment, so the
    rest of the page stays responsive; when the job ends, the whole app reruns.
    """

    @st.fragment(run_every=interval)
    def _poll() -> None:
        status = client.status(job_id)
        if status.finished:
            st.rerun(scope="app")
        st.progress(min(max(status.progress, 0.0), 1.0), text=f"{label}: {status.message}")
        if st.button("Cancel", key=f"{key}-cancel"):
            client.cancel(job_id)
            st.rerun(scope="app")

    _poll()
