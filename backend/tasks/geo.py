"""Job kinds of the globe: train a location encoder on a geo dataset, embed with SatCLIP.

Both store the location embedding of every row as a NEW dataset of kind ``"vectors"``
(``extra["derived_from"]``, with the source's latitude/longitude column names), so the Map
page projects it and the Globe page shows it, and return ``{"derived_dataset": id}``.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backend.errors import InvalidInputError, InvalidParameterError, LatentLensError
from backend.embed.location import PARAMS as ENCODER_PARAMS
from backend.jobs import JobContext, JobKind, register
from backend.params import Param, ParamSpec
from backend.results import Result
from backend.store import DatasetInfo
from backend.threads import cpu_threads

__all__ = [
    "GRID_STEPS",
    "TASKS",
    "MAX_CLASSES",
    "SATCLIP_FILE",
    "geo_columns",
    "resolve_task",
    "satclip_dataset_parts",
]

#: Cell sizes (degrees) of the regular grid the trained encoder is evaluated on.
GRID_STEPS = (1.0, 2.0, 3.0, 5.0, 10.0)
TASKS = ("auto", "classification", "regression")
MAX_CLASSES = 500
SATCLIP_FILE = "satclip_location.ckpt"
_EMBED_CHUNK = 20_000


def geo_columns(info: DatasetInfo, params: dict[str, Any] | None = None) -> tuple[str, str]:
    """The latitude and longitude column names of a dataset.

    ``params["latitude"]``/``["longitude"]`` win, then the dataset's ``extra`` (set for
    bundled, uploaded and derived geo datasets), then the column names (latitude/longitude,
    lat/lon/lng and words like ``start_lat``; never an x/y pair).

    Raises
    ------
    InvalidInputError
        If the dataset has no such columns.
    InvalidParameterError
        If a named column does not exist.
    """
    from backend.datasets.geo import detect_lat_lon_columns

    params = params or {}
    lat = params.get("latitude") or info.extra.get("latitude")
    lon = params.get("longitude") or info.extra.get("longitude")
    if not (lat and lon):
        try:
            found = detect_lat_lon_columns(pd.DataFrame(columns=info.columns))
        except InvalidInputError as exc:
            raise InvalidInputError(f"dataset {info.name!r}: {exc}") from None
        if found.reason == "x/y pair":
            raise InvalidInputError(
                f"dataset {info.name!r} has no latitude/longitude columns (only x and y, which "
                "are not read as coordinates); choose its latitude and longitude columns."
            )
        lat, lon = lat or found.latitude, lon or found.longitude
    for role, col in (("latitude", lat), ("longitude", lon)):
        if not isinstance(col, str) or col not in info.columns:
            raise InvalidParameterError(
                f"{role} column {col!r} is not a column of {info.name!r}; columns: "
                f"{info.columns[:30]}."
            )
    return lat, lon


def resolve_task(values: pd.Series) -> str:
    """``"classification"`` for labels (text, booleans, integers with <= 12 values), else
    ``"regression"`` (the Map page's rule for a categorical colour)."""
    if isinstance(values.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(values):
        return "classification"
    if pd.api.types.is_numeric_dtype(values):
        if pd.api.types.is_integer_dtype(values) and values.nunique() <= 12:
            return "classification"
        return "regression"
    return "classification"


def _load_coordinates(ctx: JobContext, lat_col: str, lon_col: str, extra_cols: list[str]):
    """The table with validated coordinates (longitudes wrapped into [-180, 180)) and the
    number of longitudes wrapped (reported in the sidecar)."""
    from backend.datasets.geo import validate_lat_lon

    table = ctx.table(list(dict.fromkeys([lat_col, lon_col, *extra_cols])))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table, report = validate_lat_lon(table, latitude=lat_col, longitude=lon_col)
    return table, report.n_longitudes_wrapped


def _derived_dataset(ctx: JobContext, vectors: np.ndarray, lat_col: str, lon_col: str,
                     table: pd.DataFrame, *, name: str, source: str,
                     extra: dict[str, Any]) -> DatasetInfo:
    """Store an embedding of every row as a new vectors dataset with the source's table."""
    full = ctx.table().drop(columns=["_row"])
    full[lat_col] = table[lat_col].to_numpy()  # wrapped longitudes
    full[lon_col] = table[lon_col].to_numpy()
    for col in table.columns:
        if col not in full.columns and col != "_row":
            full[col] = table[col].to_numpy()
    src = ctx.dataset
    return ctx.store.add_dataset(
        full, vectors, name=name, source=source,
        extra={"derived_from": src.id, "job_id": ctx.job_id, "latitude": lat_col, "longitude": lon_col,
               "feature_names": [f"e{i}" for i in range(vectors.shape[1])], **extra},
    )


# ---------------------------------------------------------------------------------------
# location_encoder


LOCATION_ENCODER_PARAMS = ParamSpec(
    Param("target_column", str, None, column=True, label="Target column",
          help="The column the encoder learns to predict from the coordinates."),
    Param("task", str, "auto", choices=TASKS,
          help="auto: classification for labels (text, or integers with at most 12 values), "
               "regression for numbers."),
    *ENCODER_PARAMS.only("encoder", "degree", "hidden", "n_layers", "max_epochs",
                         "learning_rate", "random_state"),
    Param("grid_step", float, 2.0, choices=GRID_STEPS, unit="degrees",
          label="Heat-map grid (degrees)", help="Cell size of the grid the encoder is drawn on."),
    Param("latitude", str, None, nullable=True, column=True,
          help="Latitude column (degrees); found by name when null."),
    Param("longitude", str, None, nullable=True, column=True,
          help="Longitude column (degrees); found by name when null."),
)
SATCLIP_PARAMS = ParamSpec(
    Param("checkpoint", str, None, store_id=True,
          help="Id of a SatCLIP checkpoint added to the workspace."),
    Param("latitude", str, None, nullable=True, column=True,
          help="Latitude column (degrees); found by name when null."),
    Param("longitude", str, None, nullable=True, column=True,
          help="Longitude column (degrees); found by name when null."),
)


@dataclass(frozen=True)
class LocationEncoderResult(Result):
    """A trained location encoder (``model.safetensors``, ``grid.parquet``,
    ``predictions.parquet``) and the location embedding stored as ``derived_dataset``."""

    derived_dataset: str
    task: str
    metrics: dict[str, Any]
    n_train: int
    n_rows: int
    n_features_in: int
    n_iter: int
    best_epoch: int
    fit_seconds: float
    loss_curve: list[float]
    validation_loss_curve: list[float]
    grid_step: float
    n_grid: int
    n_longitudes_wrapped: int
    classes: list[str] | None = None
    target_range: list[float] | None = None


@dataclass(frozen=True)
class SatclipResult(Result):
    """SatCLIP embedding of every row, stored as ``derived_dataset``."""

    derived_dataset: str
    satclip: dict[str, Any]
    n_longitudes_wrapped: int


def _check_geo(p: dict[str, Any], info: DatasetInfo) -> dict[str, Any]:
    lat, lon = geo_columns(info, p)
    return {**p, "latitude": lat, "longitude": lon}


def _check_location_encoder(p: dict[str, Any], info: DatasetInfo) -> dict[str, Any]:
    if p["target_column"] is None:
        raise InvalidParameterError(
            f"target_column must name a column of {info.name!r} (one of {info.columns[:30]}); "
            "got None.")
    return _check_geo(p, info)


def run_location_encoder(ctx: JobContext) -> LocationEncoderResult:
    """Train a SIREN location encoder on a target column; store the model, its predictions
    on a regular grid and on every row, and the location embedding as a new dataset."""
    from backend.datasets.geo import regular_grid
    from backend.embed.location import LocationEncoder

    p = ctx.params
    lat_col, lon_col, target = p["latitude"], p["longitude"], p["target_column"]
    ctx.progress(0.01, "reading the coordinates")
    table, n_wrapped = _load_coordinates(ctx, lat_col, lon_col, [target])
    lat = table[lat_col].to_numpy(np.float64)
    lon = table[lon_col].to_numpy(np.float64)
    y = table[target]
    task = resolve_task(y) if p["task"] == "auto" else p["task"]
    labelled = y.notna().to_numpy()
    if task == "regression":
        values = pd.to_numeric(y, errors="coerce")
        if (values.isna() & y.notna()).any():
            raise InvalidInputError(
                f"regression needs a numeric target; {target!r} has values like "
                f"{y[values.isna() & y.notna()].head(3).tolist()}. Choose classification."
            )
        labelled = labelled & np.isfinite(values.to_numpy(np.float64, na_value=np.nan))
        y_fit = values.to_numpy(np.float64)[labelled]
    else:
        y_fit = y[labelled].astype(str).to_numpy()
        n_classes = len(np.unique(y_fit))
        if n_classes > MAX_CLASSES:
            raise InvalidInputError(
                f"{target!r} has {n_classes:,} distinct values, too many classes (at most "
                f"{MAX_CLASSES}); choose another target column, or regression for a number."
            )
    if labelled.sum() < 10:
        raise InvalidInputError(
            f"only {int(labelled.sum())} rows have a {target!r} value; training needs at least 10."
        )
    model = LocationEncoder(
        p["encoder"], p["degree"], hidden=p["hidden"], n_layers=p["n_layers"],
        learning_rate=p["learning_rate"], max_epochs=p["max_epochs"],
        random_state=p["random_state"], device=ctx.device,
    )
    with cpu_threads(ctx.device):  # tiny networks: one thread, see backend/threads.py
        model._fit(lat[labelled], lon[labelled], y_fit, task=task,  # validated by the job layer
                   progress=lambda f, m: ctx.progress(0.03 + 0.82 * f, f"training: {m}"))
        model.save(ctx.out / "model.safetensors")
        ctx.progress(0.87, "evaluating on the grid")
        grid = regular_grid(p["grid_step"])
        rows_out = _predictions(model, lat, lon, task)
        grid_out = _predictions(model, grid["latitude"].to_numpy(), grid["longitude"].to_numpy(),
                                task)
        ctx.progress(0.93, "location embedding of every row")
        emb = model.transform(lat, lon).astype(np.float32)
    ctx.save_parquet("grid.parquet", pd.concat([grid, grid_out], axis=1))
    rows_frame = pd.concat([pd.DataFrame({"_row": table["_row"].to_numpy()}), rows_out], axis=1)
    ctx.save_parquet("predictions.parquet", rows_frame)
    metrics = _metrics(task, y_fit, rows_out, labelled)

    derived_table = table.copy()
    derived_table["encoder_prediction"] = rows_out["predicted"].to_numpy()
    if "confidence" in rows_out:
        derived_table["encoder_confidence"] = rows_out["confidence"].to_numpy()
    src = ctx.dataset
    derived = _derived_dataset(
        ctx, emb, lat_col, lon_col, derived_table,
        name=f"{src.name} → location embedding ({p['encoder']}, L={p['degree']}, {target})",
        source=f"location encoder ({p['encoder']}) trained on {src.name!r}",
        extra={"label_column": (target if task == "classification"
                                else src.extra.get("label_column")),
               "location_encoder": {**p, "task": task}},
    )
    ctx.progress(1.0, "done")
    extra: dict[str, Any] = {}
    if task == "classification":
        extra["classes"] = [str(c) for c in model.classes_.tolist()]
    else:
        extra["target_range"] = [float(np.min(y_fit)), float(np.max(y_fit))]
    return LocationEncoderResult(
        derived_dataset=derived.id, task=task, metrics=metrics,
        n_train=int(labelled.sum()), n_rows=int(len(table)),
        n_features_in=int(model.n_features_in_), n_iter=int(model.n_iter_),
        best_epoch=int(model.best_epoch_), fit_seconds=round(float(model.fit_time_s_), 3),
        loss_curve=[round(float(v), 6) for v in model.loss_curve_],
        validation_loss_curve=[round(float(v), 6) for v in model.validation_loss_curve_],
        grid_step=p["grid_step"], n_grid=int(len(grid)), n_longitudes_wrapped=n_wrapped, **extra)


def _predictions(model, lat: np.ndarray, lon: np.ndarray, task: str) -> pd.DataFrame:
    if task == "classification":
        proba = model.predict_proba(lat, lon)
        best = proba.argmax(axis=1)
        return pd.DataFrame({"predicted": model.classes_[best].astype(str),
                             "confidence": proba[np.arange(len(best)), best].astype(np.float32)})
    return pd.DataFrame({"predicted": np.asarray(model.predict(lat, lon), dtype=np.float64)})


def _metrics(task: str, y_fit: np.ndarray, rows_out: pd.DataFrame, labelled: np.ndarray) -> dict:
    pred = rows_out["predicted"].to_numpy()[labelled]
    if task == "classification":
        values, counts = np.unique(y_fit, return_counts=True)
        return {"accuracy": float(np.mean(pred == y_fit)),
                "majority_baseline": float(counts.max() / counts.sum()),
                "n_classes": int(values.size)}
    pred = pred.astype(np.float64)
    resid = y_fit - pred
    total = float(np.sum((y_fit - y_fit.mean()) ** 2))
    return {"r2": float(1.0 - np.sum(resid**2) / total) if total > 0 else None,
            "rmse": float(np.sqrt(np.mean(resid**2)))}


# ---------------------------------------------------------------------------------------
# SatCLIP


def satclip_dataset_parts(
    path: str | Path, display_name: str | None = None
) -> tuple[pd.DataFrame, dict[str, Any], bytes]:
    """What a SatCLIP dataset stores: a table of its tensors, its facts, a small checkpoint.

    ``display_name`` (the uploaded file's name) replaces the path in error messages.
    The checkpoint is read with :func:`backend.embed.location.load_satclip_location_encoder`
    (weights-only loading); only the location encoder is kept, as a Lightning-shaped file
    of a few tensors that the same loader reads back.

    Raises
    ------
    InvalidInputError
        If the file is not a usable SatCLIP checkpoint.
    """
    import torch

    from backend.embed.location import load_satclip_location_encoder

    shown = repr(display_name) if display_name else str(path)
    try:
        enc = load_satclip_location_encoder(path, device="cpu")
    except LatentLensError as exc:
        raise type(exc)(str(exc).replace(str(path), shown)) from None
    except Exception as exc:  # a malformed file can fail anywhere inside torch.load
        raise InvalidInputError(
            f"{shown} is not a usable SatCLIP checkpoint ({type(exc).__name__}). Supply "
            "a SatCLIP .ckpt file, e.g. satclip-resnet50-l40.ckpt (Hugging Face "
            "microsoft/SatCLIP-ResNet50-L40), unchanged."
        ) from None
    state = {f"model.location.nnet.{k}": v.detach().cpu().contiguous()
             for k, v in enc.network.state_dict().items()}
    hp = dict(enc.hyper_parameters)
    hp["harmonics_calculation"] = enc.harmonics_calculation
    buf = io.BytesIO()
    torch.save({"hyper_parameters": hp, "state_dict": state}, buf)
    table = pd.DataFrame({
        "tensor": list(state),
        "shape": ["x".join(map(str, v.shape)) for v in state.values()],
        "parameters": [int(v.numel()) for v in state.values()],
    })
    return table, {"satclip_file": SATCLIP_FILE, "satclip": enc.to_dict()}, buf.getvalue()


def run_satclip_embed(ctx: JobContext) -> SatclipResult:
    """SatCLIP location embedding of every row, stored as a new dataset."""
    from backend.embed.location import load_satclip_location_encoder

    p = ctx.params
    ckpt = ctx.store.dataset(p["checkpoint"])
    if ckpt.kind != "satclip":
        raise InvalidInputError(
            f"dataset {ckpt.name!r} is of kind {ckpt.kind!r}, not a SatCLIP checkpoint; "
            "upload a SatCLIP .ckpt file on the Globe page."
        )
    ctx.progress(0.02, "loading the SatCLIP location encoder")
    enc = load_satclip_location_encoder(ctx.store.dataset_file(ckpt.id, ckpt.extra["satclip_file"]),
                                        device=ctx.device)
    lat_col, lon_col = p["latitude"], p["longitude"]
    table, n_wrapped = _load_coordinates(ctx, lat_col, lon_col, [])
    lat = table[lat_col].to_numpy(np.float64)
    lon = table[lon_col].to_numpy(np.float64)
    parts = []
    n_chunks = max(1, math.ceil(len(lat) / _EMBED_CHUNK))
    for i in range(n_chunks):
        rows = slice(i * _EMBED_CHUNK, (i + 1) * _EMBED_CHUNK)
        parts.append(enc.transform(lat[rows], lon[rows]))
        done = min(len(lat), (i + 1) * _EMBED_CHUNK)
        ctx.progress(0.05 + 0.85 * (i + 1) / n_chunks, f"SatCLIP: {done:,} of {len(lat):,} points")
    emb = np.concatenate(parts).astype(np.float32)
    src = ctx.dataset
    derived = _derived_dataset(
        ctx, emb, lat_col, lon_col, table,
        name=f"{src.name} → SatCLIP embedding ({ckpt.name}, L={enc.degree})",
        source=f"SatCLIP checkpoint {ckpt.name!r} on the coordinates of {src.name!r}",
        extra={"label_column": src.extra.get("label_column"), "satclip": enc.to_dict()},
    )
    ctx.progress(1.0, "done")
    return SatclipResult(derived_dataset=derived.id, satclip=enc.to_dict(),
                         n_longitudes_wrapped=n_wrapped)


LOCATION_ENCODER = register(JobKind(
    "location_encoder", params=LOCATION_ENCODER_PARAMS, run=run_location_encoder,
    result=LocationEncoderResult, files=("model.safetensors", "grid.parquet", "predictions.parquet"),
    check=_check_location_encoder, version=2, title="Location encoder"))
SATCLIP_EMBED = register(JobKind(
    "satclip_embed", params=SATCLIP_PARAMS, run=run_satclip_embed, result=SatclipResult,
    check=_check_geo, title="SatCLIP embedding"))
