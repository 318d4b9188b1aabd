"""What the app may read of the backend besides the client: kind declarations.

Pages (``app/views/``) import only :mod:`backend.client`, :mod:`backend.errors` and this
module (see ``../shared/DESIGN.md``, "the walls"). It re-exports the declarations that the
job layer, the service and the forms share — never an algorithm:

* ``JobSpec`` and ``params_of(kind)``: a kind's :class:`~backend.params.ParamSpec`, which the
  generic form renders;
* the default map (one spec, so the Map, Globe and Graph pages share one job);
* small pure helpers about dataset kinds that pages need to choose widgets (the coordinate
  columns of a geo dataset, the task a target column implies, the upload formats, an
  upload's preview and reading options, an edge list's columns).
"""

from __future__ import annotations

from backend.datasets.bundled import BUNDLED, DEFAULT_DATASET
from backend.datasets.geo import validate_lat_lon
from backend.datasets.delimited import DECIMALS, ENCODINGS, SEPARATORS
from backend.datasets.graph import edge_list_columns
from backend.datasets.upload import FORMATS, describe_roles, inspect_upload, max_upload_bytes
from backend.jobs import JobSpec, JobStatus, job_kinds
from backend.params import AUTO, Param, ParamSpec
from backend.project.knn import KNN_METRICS
from backend.tasks.geo import GRID_STEPS, geo_columns, resolve_task
from backend.tasks.projection import DEFAULT_MAP, default_map_spec

__all__ = [
    "AUTO",
    "BUNDLED",
    "DEFAULT_DATASET",
    "DECIMALS",
    "DEFAULT_MAP",
    "ENCODINGS",
    "FORMATS",
    "GRID_STEPS",
    "KNN_METRICS",
    "JobSpec",
    "JobStatus",
    "Param",
    "ParamSpec",
    "SEPARATORS",
    "default_map_spec",
    "describe_roles",
    "edge_list_columns",
    "geo_columns",
    "inspect_upload",
    "kind_title",
    "max_upload_bytes",
    "params_of",
    "resolve_task",
    "validate_lat_lon",
]


def params_of(kind: str) -> ParamSpec:
    """The declared parameters of a job kind.

    Raises
    ------
    KeyError
        If no kind of that name is registered.
    """
    return job_kinds()[kind].params


def kind_title(kind: str) -> str:
    """How a job kind is named on screen (its declared title, else its name)."""
    k = job_kinds().get(kind)
    return (k.title if k is not None and k.title else kind.replace("_", " "))
