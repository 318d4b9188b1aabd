"""The view state of the Map page, to and from a URL query (``st.query_params``).

A link holds: dataset id, projection artifact id, colour column, chart filters,
the selection geometry, the clustering artifact id and its level. Parsing is
strict per field and lenient overall: a malformed or stale field is dropped
with a message saying so, and the rest of the view is kept; a dataset that no
longer exists gives the default view and a message.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from backend.errors import InvalidParameterError
from backend.search import filter_from_dict

__all__ = ["ViewState", "OpenedView", "view_to_query", "view_from_query", "resolve_view", "QUERY_KEYS"]

QUERY_KEYS = {"dataset": "dataset", "projection": "proj", "color": "color", "filters": "filters",
              "selection": "sel", "clustering": "clu", "level": "level"}


@dataclass(frozen=True)
class ViewState:
    """What a shared link reopens.

    Attributes
    ----------
    dataset : str or None
        Dataset id.
    projection, clustering : str or None
        Artifact ids (of that dataset).
    color : str or None
        Colour column, or ``"cluster"``.
    filters : list of dict
        Chart filters in :func:`backend.search.filter_from_dict` form.
    selection : dict or None
        Map selection geometry: ``{"box": [{"x": [x0, x1], "y": [y0, y1]}],
        "lasso": [{"x": [...], "y": [...]}]}`` in map coordinates.
    level : int or None
        Clustering level shown.
    """

    dataset: str | None = None
    projection: str | None = None
    color: str | None = None
    filters: list[dict] = field(default_factory=list)
    selection: dict | None = None
    clustering: str | None = None
    level: int | None = None


class OpenedView(NamedTuple):
    """A link's view checked against the workspace, and what was dropped and why."""

    view: ViewState
    messages: list[str]


def view_to_query(state: ViewState) -> dict[str, str]:
    """Query parameters (all strings) of a view; empty fields are left out."""
    out: dict[str, str] = {}
    for name, key in QUERY_KEYS.items():
        v = getattr(state, name)
        if v is None or v == [] or v == {}:
            continue
        out[key] = json.dumps(v, separators=(",", ":")) if isinstance(v, (list, dict)) else str(v)
    return out


def view_from_query(query: Mapping[str, Any]) -> tuple[ViewState, list[str]]:
    """Read a view from query parameters.

    Parameters
    ----------
    query : mapping of str -> str (or list of str; the last value counts)

    Returns
    -------
    state : ViewState
    messages : list of str
        One per field that was malformed and ignored.
    """
    def get(name: str) -> str | None:
        v = query.get(QUERY_KEYS[name])
        if isinstance(v, (list, tuple)):
            v = v[-1] if v else None
        return None if v in (None, "") else str(v)

    fields: dict[str, Any] = {}
    messages: list[str] = []
    for name in ("dataset", "projection", "clustering", "color"):
        if (v := get(name)) is not None:
            fields[name] = v
    if (v := get("level")) is not None:
        try:
            fields["level"] = int(v)
        except ValueError:
            messages.append(f"the link's clustering level {v!r} is not a whole number; ignored.")
    if (v := get("filters")) is not None:
        try:
            items = json.loads(v)
            if not isinstance(items, list):
                raise InvalidParameterError("filters must be a list")
            fields["filters"] = [filter_from_dict(f).to_dict() for f in items]
        except (ValueError, InvalidParameterError) as exc:
            messages.append(f"the link's filters could not be read ({exc}); showing no filters.")
    if (v := get("selection")) is not None:
        try:
            sel = json.loads(v)
            if not isinstance(sel, dict) or not set(sel) <= {"box", "lasso"}:
                raise ValueError("expected an object with 'box' and/or 'lasso'")
            fields["selection"] = sel
        except ValueError as exc:
            messages.append(f"the link's selection could not be read ({exc}); nothing selected.")
    return ViewState(**fields), messages


def resolve_view(
    state: ViewState,
    datasets: Iterable[str],
    artifact_dataset: Callable[[str], str | None],
    default: ViewState | None = None,
) -> tuple[ViewState, list[str]]:
    """Check a view against the workspace.

    Parameters
    ----------
    state : ViewState
    datasets : iterable of str
        Ids of the datasets that exist.
    artifact_dataset : callable
        ``artifact_dataset(artifact_id)`` -> the id of the artifact's dataset, or None if unknown.
    default : ViewState, optional
        The view shown when the link's dataset is gone (default: empty view).

    Returns
    -------
    state : ViewState
        The view to show.
    messages : list of str
        What was dropped and why.
    """
    default = default or ViewState()
    if state.dataset is None:
        return state, []
    if state.dataset not in set(datasets):
        return default, [f"The link's dataset {state.dataset} no longer exists in this workspace; "
                         "showing the default view. Add the dataset again to reopen the link."]
    messages = []
    for name in ("projection", "clustering"):
        aid = getattr(state, name)
        if aid is not None and artifact_dataset(aid) != state.dataset:
            messages.append(f"The link's {name} {aid} no longer exists for this dataset; "
                            f"it was left out. Compute it again on this page.")
            state = replace(state, **{name: None}, **({"level": None} if name == "clustering" else {}))
    return state, messages
