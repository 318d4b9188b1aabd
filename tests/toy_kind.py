"""A toy job kind, declared in one file as every kind is: two parameters, a typed result, one
artifact file. ``tests/unit/test_toy_kind.py`` registers it and finds it everywhere."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.jobs import JobContext, JobKind
from backend.params import Param, ParamSpec
from backend.results import Result

PARAMS = ParamSpec(
    Param("scale", float, 2.0, low=0.0, high=10.0, low_open=True, unit="×",
          help="Multiplies every value."),
    Param("norm", str, "l2", choices=("l1", "l2"), help="Norm of the scaled rows."),
)


@dataclass(frozen=True)
class ToyResult(Result):
    mean_norm: float
    n_rows: int


def run(ctx: JobContext) -> ToyResult:
    X = np.asarray(ctx.vectors(), dtype=np.float64) * ctx.params["scale"]
    ord_ = 1 if ctx.params["norm"] == "l1" else 2
    norms = np.linalg.norm(X, ord=ord_, axis=1)
    ctx.save_npy("norms.npy", norms)
    return ToyResult(mean_norm=float(norms.mean()), n_rows=len(X))


TOY = JobKind("toy_norms", params=PARAMS, run=run, result=ToyResult, files=("norms.npy",),
              title="Toy norms", quick=True)
