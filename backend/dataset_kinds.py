"""The kinds of dataset, declared once.

Every stored dataset has a kind; the store refuses any other, and a job kind may name only
these in its ``dataset_kinds`` (checked when it is registered). Each declaration says what the
kind holds, so the catalogue, the job layer and the pages agree on it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DatasetKind", "DATASET_KINDS", "check_dataset_kind"]


@dataclass(frozen=True)
class DatasetKind:
    """One kind of dataset.

    Parameters
    ----------
    name : str
        The ``kind`` of its :class:`~backend.store.DatasetInfo`.
    title : str
        How it is named on screen.
    vectors : bool
        Whether it holds an (n_rows, n_dims) float32 matrix (else zero-width vectors).
    rows : str
        What one row of its table is.
    files : str
        The files it keeps beside its table, if any.
    """

    name: str
    title: str
    vectors: bool
    rows: str
    files: str = ""


DATASET_KINDS: dict[str, DatasetKind] = {k.name: k for k in (
    DatasetKind("vectors", "Vectors", True, "one point (its metadata)"),
    DatasetKind("text", "Table of texts", False, "one text and its metadata"),
    DatasetKind("graph", "Graph", False, "one node (id and attributes)",
                "edges.parquet: source, target (node rows), weight"),
    DatasetKind("model", "Model weights", False, "one tensor (name, shape, dtype, parameters)",
                "the weights file (safetensors or a PyTorch state dict)"),
    DatasetKind("satclip", "SatCLIP location encoder", False, "one tensor of the encoder",
                "satclip_location.ckpt: the location encoder's weights"),
)}


def check_dataset_kind(name: str) -> DatasetKind:
    """The declaration of ``name``.

    Raises
    ------
    ValueError
        For a kind not declared here.
    """
    if name not in DATASET_KINDS:
        raise ValueError(f"unknown dataset kind {name!r}; the kinds are {sorted(DATASET_KINDS)}")
    return DATASET_KINDS[name]
