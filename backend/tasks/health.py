"""Job kinds of model health: weight spectra of a model, diagnostics of a representation."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from backend.errors import InvalidInputError
from backend.jobs import JobContext, JobKind, register
from backend.params import Param, ParamSpec
from backend.results import Result
from backend.store import DatasetInfo

BASELINES = ("none", "random_init")

WEIGHTS_PARAMS = ParamSpec(
    Param("farms", bool, True, label="FARMS alpha",
          help="Pool fixed-aspect-ratio windows of each matrix before the power-law fit "
               "(removes the aspect-ratio bias of the plain fit)."),
    Param("mp_fit", bool, True, help="Fit the Marchenko–Pastur bulk (spikes, soft rank)."),
    Param("baseline", str, "none", choices=BASELINES,
          help="'random_init': analyse a random init of the same architecture instead."),
    Param("random_state", int, 0, low=0, high=2**32 - 1, nullable=True,
          help="Seed of the random init."),
    Param("min_evals", int, 50, low=2, high=100_000,
          help="Layers with fewer eigenvalues are skipped."),
)
REPRESENTATION_PARAMS = ParamSpec(
    Param("label_column", str, None, nullable=True, column=True, label="Label column (for DSMI)",
          help="A column of class labels for the diffusion spectral mutual information."),
    Param("pair_column", str, None, nullable=True, column=True,
          label="Pair column (partner's id, for alignment)",
          help="A column naming each row's positive partner (by id column, else row number)."),
    Param("normalize", bool, False, label="L2-normalise rows first",
          help="Measure the directions only."),
    Param("max_n", int, 2000, low=100, high=20_000,
          help="Rows sampled for the diffusion entropy (DSE grows with N: compare at equal N)."),
    Param("random_state", int, 0, low=0, high=2**32 - 1, nullable=True, help="Seed of the sample."),
)


@dataclass(frozen=True)
class WeightsResult(Result):
    """Spectra of a model's weight matrices (``layers.parquet``, ``skipped.parquet``,
    ``spectra.parquet``, ``fit_lines.parquet``, ``summary.json``)."""

    summary: dict[str, Any]
    analysis_params: dict[str, Any]
    timings: dict[str, Any]


@dataclass(frozen=True)
class RepresentationResult(Result):
    """Representation diagnostics (``representation.json``, ``covariance_spectrum.parquet``)."""

    representation: dict[str, Any]


def open_model(ctx_store, info: DatasetInfo):
    """The ModelWeights of a stored model dataset."""
    from backend.models import bundled_minilm, open_weights

    if info.extra.get("bundled_model"):
        return bundled_minilm()
    return open_weights(ctx_store.dataset_file(info.id, info.extra["weights_file"]))


def run_weights(ctx: JobContext) -> WeightsResult:
    from backend.diagnostics.weights import analyze_weights
    from backend.models import random_init_like

    p = ctx.params
    ctx.progress(0.01, "opening the weights")
    weights = open_model(ctx.store, ctx.dataset)
    if p["baseline"] == "random_init":
        weights = random_init_like(weights, random_state=p["random_state"])
    res = analyze_weights(weights, farms=p["farms"], mp_fit=p["mp_fit"], min_evals=p["min_evals"],
                          device=ctx.device, progress=lambda f, m: ctx.progress(0.02 + 0.93 * f, m),
                          engine=ctx.engine, stop=ctx.stop_event)
    if len(res.layers) == 0:
        reasons = res.skipped["reason"].value_counts().to_dict() if len(res.skipped) else {}
        raise InvalidInputError(
            f"no weight matrix of {ctx.dataset.name!r} could be analysed "
            f"(skipped: {reasons or 'no tensor with 2 or more dimensions'})."
        )
    layers = res.layers.copy()
    for col in layers.columns:  # Parquet needs one type per column
        if layers[col].dtype == object:
            layers[col] = layers[col].astype(str)
    ctx.save_parquet("layers.parquet", layers)
    ctx.save_parquet("skipped.parquet", res.skipped.astype(str) if len(res.skipped) else
                     pd.DataFrame({"name": [], "shape": [], "reason": []}))
    ctx.save_parquet("spectra.parquet", res.spectra_frame())
    lines = []
    for name, spec in res.spectra.items():
        for method in ("plain", "farms"):
            if method == "farms" and spec.farms is None:
                continue
            x, y = spec.fit_line(method)
            lines.append(pd.DataFrame({"name": name, "method": method, "x": x, "y": y}))
    ctx.save_parquet("fit_lines.parquet", pd.concat(lines, ignore_index=True) if lines else
                     pd.DataFrame({"name": [], "method": [], "x": [], "y": []}))
    summary = res.summary()
    summary["ignored"] = list(getattr(weights, "ignored", []))  # checkpoint entries left out
    ctx.save_json("summary.json", _finite(summary))
    return WeightsResult(summary=_finite(summary), analysis_params=_finite(res.params),
                         timings=res.timings)


def _finite(d: dict) -> dict:
    """JSON has no NaN: None stands for a metric that could not be computed."""
    out = {}
    for k, v in d.items():
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        elif isinstance(v, dict):
            v = _finite(v)
        out[k] = v
    return out


def run_representation(ctx: JobContext) -> RepresentationResult:
    from backend.diagnostics.representation import representation_diagnostics

    p = ctx.params
    id_col = ctx.dataset.extra.get("id_column") if p["pair_column"] else None
    cols = [c for c in (p["label_column"], p["pair_column"], id_col) if c]
    table = ctx.table(cols) if cols else None
    labels = table[p["label_column"]].to_numpy() if p["label_column"] else None
    pairs = _pairs(table, p["pair_column"], ctx.dataset) if p["pair_column"] else None
    rep = representation_diagnostics(
        np.asarray(ctx.vectors()), labels=labels, pairs=pairs, normalize=p["normalize"],
        max_n=p["max_n"], random_state=p["random_state"], device=ctx.device,
        progress=ctx.progress,
    )
    d = rep.to_dict()
    eig = np.asarray(d.pop("covariance_eigenvalues"), dtype=np.float64)
    ctx.save_parquet("covariance_spectrum.parquet",
                     pd.DataFrame({"rank": np.arange(1, len(eig) + 1), "eigenvalue": eig}))
    ctx.save_json("representation.json", _finite(d))
    return RepresentationResult(representation=_finite(d))


def _pairs(table: pd.DataFrame, col: str, info: DatasetInfo) -> np.ndarray:
    """(n_pairs, 2) row indices from a column naming each row's partner.

    The partner is named by the dataset's id column when it has one, else by row number.
    """
    partner = table[col]
    keep = partner.notna().to_numpy()
    id_col = info.extra.get("id_column")
    if id_col:
        lookup = pd.Series(np.arange(len(table)), index=table[id_col].to_numpy())
        other = partner[keep].map(lookup)
    else:
        other = pd.to_numeric(partner[keep], errors="coerce")
    bad = (other.isna() | (other < 0) | (other >= len(table))).to_numpy()
    if bad.any():
        raise InvalidInputError(
            f"{int(bad.sum()):,} value(s) of the pair column {col!r} name no row "
            f"(e.g. {partner[keep][bad].head(3).tolist()}); give the partner's "
            f"{'id' if id_col else 'row number'}."
        )
    return np.column_stack([np.flatnonzero(keep), other.to_numpy(np.int64)])


WEIGHTS = register(JobKind(
    "weights", params=WEIGHTS_PARAMS, run=run_weights, result=WeightsResult,
    files=("layers.parquet", "skipped.parquet", "spectra.parquet", "fit_lines.parquet",
           "summary.json"), dataset_kinds=("model",), title="Weight spectra"))
REPRESENTATION = register(JobKind(
    "representation", params=REPRESENTATION_PARAMS, run=run_representation,
    result=RepresentationResult, files=("representation.json", "covariance_spectrum.parquet"),
    title="Representation diagnostics", quick=True))
# No row-count check: with fewer rows than dimensions every defined measure is computed and
# the result says which was skipped and why (RepresentationReport.skipped / note).
