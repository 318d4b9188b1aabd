"""Job state on a page: one component for queued, running, failed, stopped and done."""

from __future__ import annotations

import streamlit as st

__all__ = ["job_progress", "job_done"]


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
        if st.button(f"Cancel: {label.strip()}", key=f"{key}-cancel"):  # several can show
            client.cancel(job_id)
            st.rerun(scope="app")

    _poll()


def job_done(client, job_id: str | None, *, label: str, key: str, again: str = "submit it again"):
    """The status of a finished job, or None while there is nothing to show yet.

    Shows, in place, what a user needs for every other state: the progress bar and Cancel
    button while the job is queued or running, the error when it failed, and what to do
    when it was cancelled or interrupted (``again`` says how to run it again).
    """
    if job_id is None:
        return None
    status = client.status(job_id)
    if status.state == "done":
        return status
    if status.state in ("queued", "running"):
        job_progress(client, job_id, label=label, key=key)
    elif status.state == "failed":
        st.error(f"{label} failed: {status.error}")
    else:
        st.info(f"{label} was {status.state}; {again}.")
    return None
