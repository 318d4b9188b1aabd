"""The map to show while the full projection runs: full if done, else the quick map.

Kept apart from the Map page's drawing so the page calls one function (issue 14, item 1).
"""

from __future__ import annotations

from backend.kinds import JobSpec

__all__ = ["QUICK_MIN_ROWS", "map_to_show", "pick_map"]

#: Below this many rows the full map takes seconds: no quick map is made.
QUICK_MIN_ROWS = 20_000


def pick_map(full_done: str | None, full_state: str | None, quick_state: str | None,
             quick_done: str | None) -> tuple[str | None, str]:
    """Pure choice: ``(artifact id, "full" | "quick" | "none")``.

    The full map whenever one is done; the quick map only while the full one is queued
    or running and the quick one is done; otherwise nothing.
    """
    if full_done is not None:
        return full_done, "full"
    if full_state in ("queued", "running") and quick_state == "done" and quick_done:
        return quick_done, "quick"
    return None, "none"


def map_to_show(c, info, full_job_id: str | None, full_done: str | None,
                *, min_rows: int | None = None) -> tuple[str | None, str | None]:
    """The artifact to draw and, for a quick map, the sentence saying which map it is.

    Submits the ``quick_map`` job (quick lane) once the full map is queued or running on a
    dataset of at least ``min_rows`` rows, shows its progress, and returns it when done.
    """
    import streamlit as st

    from app.common import submit_once
    from components.jobs import job_progress

    min_rows = QUICK_MIN_ROWS if min_rows is None else min_rows
    full_state = c.status(full_job_id).state if full_job_id else None
    quick_state = quick_done = None
    if full_done is None and full_state in ("queued", "running") and info.n_rows >= min_rows:
        quick_id = submit_once(c, JobSpec("quick_map", info.id, {}), store="quick_map_jobs")
        if quick_id is not None:
            qs = c.status(quick_id)
            quick_state, quick_done = qs.state, qs.artifact_id
            if qs.state in ("queued", "running"):
                job_progress(c, quick_id, label="Quick first map", key="quick-map-job")
    art_id, which = pick_map(full_done, full_state, quick_state, quick_done)
    if which != "quick":
        return art_id, None
    desc = c.result(art_id).description or "Quick map."
    return art_id, f"{desc} The full map replaces it when it is done."
