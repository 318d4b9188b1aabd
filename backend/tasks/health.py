"""Job kinds of model health: weight spectra of a model, diagnostics of a representation."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from backend.errors import InvalidInputError, InvalidParameterError
from backend.jobs import JobContext, register
from backend.store import DatasetInfo
from backend.tasks._params import reject_unknown, take_choice, take_int, take_seed

BASELINES = ("none", "random_init")


def _take_bool(p: dict[str, Any], name: str, default: bool) -> bool:
    v = p.get(name, default)
    if not isinstance(v, bool):
        raise InvalidParameterError(f"{name} must be true or false; got {v!r}.")
    return v


def open_model(ctx_store, info: DatasetInfo):
    """The ModelWeights of a stored model dataset."""
    from backend.models import bundled_minilm, open_weights

    if info.extra.get("bundled_model"):
        return bundled_minilm()
    return open_weights(ctx_store.dataset_file(info.id, info.extra["weights_file"]))


def validate_weights(p: dict[str, Any], info: DatasetInfo) -> dict[str, Any]:
    reject_unknown(p, {"farms", "mp_fit", "baseline", "random_state", "min_evals"}, "weights")
    return {
        "farms": _take_bool(p, "farms", True),
        "mp_fit": _take_bool(p, "mp_fit", True),
        "baseline": take_choice(p, "baseline", "none", BASELINES),
        "random_state": take_seed(p, default=0),
        "min_evals": take_int(p, "min_evals", 50, 2, 100_000),
    }


@register("weights", validate=validate_weights, dataset_kinds=("model",))
def run_weights(ctx: JobContext) -> dict[str, Any]:
    from backend.diagnostics.weights import analyze_weights
    from backend.models import random_init_like

    p = ctx.params
    ctx.progress(0.01, "opening the weights")
    weights = open_model(ctx.store, ctx.dataset)
    if p["baseline"] == "random_init":
        weights = random_init_like(weights, random_state=p["random_state"])
    res = analyze_weights(weights, farms=p["farms"], mp_fit=p["mp_fit"], min_evals=p["min_evals"],
                          device=ctx.device, progress=lambda f, m: ctx.progress(0.02 + 0.93 * f, m))
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
    return {"summary": _finite(summary), "analysis_params": _finite(res.params),
            "timings": res.timings}


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


def validate_representation(p: dict[str, Any], info: DatasetInfo) -> dict[str, Any]:
    reject_unknown(p, {"label_column", "pair_column", "normalize", "max_n", "random_state"},
                   "representation")
    for col in ("label_column", "pair_column"):
        v = p.get(col)
        if v is not None and v not in info.columns:
            raise InvalidParameterError(
                f"{col} {v!r} is not a column of {info.name!r}; columns: {info.columns}.")
    return {
        "label_column": p.get("label_column"),
        "pair_column": p.get("pair_column"),
        "normalize": _take_bool(p, "normalize", False),
        "max_n": take_int(p, "max_n", 2000, 100, 20_000),
        "random_state": take_seed(p, default=0),
    }


@register("representation", validate=validate_representation)
def run_representation(ctx: JobContext) -> dict[str, Any]:
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
    return {"representation": _finite(d)}


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
