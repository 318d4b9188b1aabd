"""AnnData ``.h5ad`` files read with h5py, following the AnnData on-disk format.

The ``anndata`` package is not used (its releases for Python 3.11 need pandas < 3);
the format is plain HDF5 (https://anndata.readthedocs.io/en/stable/fileformat-prose.html):

- ``X``: a dense 2-D dataset, or a group with ``encoding-type`` ``csr_matrix`` /
  ``csc_matrix``, an attribute ``shape`` and datasets ``data``, ``indices``, ``indptr``;
- ``obsm/<name>``: per-cell embeddings (``X_pca``, ``X_umap``), dense 2-D datasets;
- ``obs`` / ``var``: dataframes (``encoding-type`` ``dataframe``): attribute ``_index``
  names the dataset of row names, ``column-order`` lists the columns; a column is a
  dataset (numbers or strings) or a group: ``categorical`` (``codes``, ``categories``),
  ``nullable-integer`` / ``nullable-boolean`` / ``nullable-string-array`` (``values``,
  ``mask``).

The vectors are ``X`` or one ``obsm`` embedding, chosen by name (``"X"``,
``"obsm/X_pca"``); ``obs`` becomes the metadata table with the row names as its first
column ``obs_names``.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from backend.errors import InvalidInputError

__all__ = ["MAX_DENSE_BYTES", "h5ad_matrices", "read_h5ad"]

#: The largest ``X`` made dense as float32 (bytes): 4 GiB.
MAX_DENSE_BYTES = 4 * 2**30
_OBS_NAMES = "obs_names"


def h5ad_matrices(data: bytes, filename: str) -> tuple[dict[str, tuple[int, int]], pd.DataFrame]:
    """The matrices an ``.h5ad`` offers as vectors, and its ``obs`` table.

    Returns
    -------
    matrices : dict of str -> (n_rows, n_dims)
        ``"X"`` (when present) first, then ``"obsm/<name>"`` for every 2-D embedding.
    obs : pandas.DataFrame
        One row per cell: ``obs_names`` and the ``obs`` columns.

    Raises
    ------
    InvalidInputError
        If the file is not HDF5, has neither ``X`` nor an ``obsm`` embedding, or its
        ``obs`` is not in the dataframe encoding.
    """
    with _open(data, filename) as f:
        matrices = {}
        if "X" in f:
            matrices["X"] = _shape(f["X"], filename, "X")
        if "obsm" in f:
            for key, node in f["obsm"].items():
                if _is_dataset(node) and node.ndim == 2:
                    matrices[f"obsm/{key}"] = tuple(int(s) for s in node.shape)
        if not matrices:
            raise InvalidInputError(
                f"{filename!r} has neither X nor a 2-D embedding in obsm; there are no vectors.")
        obs = _dataframe(f["obs"], filename, "obs") if "obs" in f else pd.DataFrame()
    return matrices, obs


def read_h5ad(
    data: bytes, filename: str, matrix: str | None = None
) -> tuple[np.ndarray, pd.DataFrame, str, list[str], list[str]]:
    """Read the vectors and the ``obs`` table of an ``.h5ad`` file.

    Parameters
    ----------
    data : bytes
        The file's content.
    filename : str
        For messages.
    matrix : str, optional
        ``"X"`` or ``"obsm/<name>"``; default ``X`` when present, else the only
        ``obsm`` embedding.

    Returns
    -------
    vectors : ndarray of shape (n_cells, n_dims), float64
    obs : pandas.DataFrame of shape (n_cells, n_columns)
    matrix : str
        The matrix read.
    names : list of str
        Names of the dimensions: ``var`` names for ``X``, ``<name>_<i>`` for an embedding.
    notes : list of str
        What was read, and ``obs`` columns that were skipped (unknown encodings).

    Raises
    ------
    InvalidInputError
        Not an HDF5 file, an unknown matrix, a sparse ``X`` too large to make dense
        (over :data:`MAX_DENSE_BYTES` as float32), or ``obs`` of another length.
    """
    matrices, _ = h5ad_matrices(data, filename)
    if matrix is None:
        embeddings = [k for k in matrices if k != "X"]
        if "X" in matrices:
            matrix = "X"
        elif len(embeddings) == 1:
            matrix = embeddings[0]
        else:
            raise InvalidInputError(
                f"{filename!r} has no X and {len(embeddings)} embeddings in obsm "
                f"({', '.join(embeddings)}); choose the one holding the vectors.")
    if matrix not in matrices:
        raise InvalidInputError(
            f"{filename!r} has no matrix {matrix!r}; it has {', '.join(matrices)}.")
    notes: list[str] = []
    with _open(data, filename) as f:
        node = f[matrix]
        n, d = matrices[matrix]
        if _is_dataset(node):
            vectors = np.asarray(node[()])
            kind = "dense"
        else:
            if n * d * 4 > MAX_DENSE_BYTES:
                raise InvalidInputError(
                    f"{filename!r}: {matrix} is a sparse {n:,} × {d:,} matrix; as dense float32 "
                    f"vectors it would take {n * d * 4 / 2**30:,.1f} GiB, over the "
                    f"{MAX_DENSE_BYTES / 2**30:.0f} GiB limit. Choose an embedding from obsm "
                    "(e.g. X_pca) instead.")
            vectors = _sparse(node, (n, d)).toarray()
            kind = f"sparse ({_attr(node, 'encoding-type')}), made dense"
        obs, skipped = (_dataframe(f["obs"], filename, "obs", with_skipped=True)
                        if "obs" in f else (pd.DataFrame(index=range(n)), []))
        names = [f"{matrix.rsplit('/', 1)[-1]}_{i}" for i in range(d)]
        if matrix == "X" and "var" in f:
            var = _dataframe(f["var"], filename, "var")
            if len(var) == d:
                names = [str(v) for v in var.iloc[:, 0]]
    if len(obs) != n:
        raise InvalidInputError(
            f"{filename!r}: obs has {len(obs):,} rows but {matrix} has {n:,}; they must match.")
    notes.append(f"vectors from {matrix} ({n:,} × {d:,}, {kind}); metadata from obs "
                 f"({len(obs.columns)} columns).")
    if skipped:
        notes.append(f"obs columns not read (unknown encoding): {', '.join(skipped)}.")
    return vectors.astype(np.float64, copy=False), obs, matrix, names, notes


# ---------------------------------------------------------------------------- private


def _open(data: bytes, filename: str):
    import h5py

    try:
        return h5py.File(io.BytesIO(data), "r")
    except OSError:
        raise InvalidInputError(
            f"{filename!r} is not a readable .h5ad file (not HDF5, or truncated).") from None


def _is_dataset(node) -> bool:
    import h5py

    return isinstance(node, h5py.Dataset)


def _attr(node, key: str, default=None):
    value = node.attrs.get(key, default)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return [v.decode() if isinstance(v, bytes) else str(v) for v in value.tolist()]
    return value


def _shape(node, filename: str, where: str) -> tuple[int, int]:
    if _is_dataset(node):
        shape = tuple(int(s) for s in node.shape)
    elif _attr(node, "encoding-type") in ("csr_matrix", "csc_matrix"):
        shape = tuple(int(s) for s in node.attrs["shape"])
    else:
        raise InvalidInputError(
            f"{filename!r}: {where} is stored as {_attr(node, 'encoding-type')!r}, which is not "
            "read; X must be a dense array or a CSR/CSC sparse matrix.")
    if len(shape) != 2:
        raise InvalidInputError(f"{filename!r}: {where} has shape {shape}; it must be 2-D.")
    return shape


def _sparse(node, shape: tuple[int, int]):
    import scipy.sparse as sp

    cls = sp.csr_matrix if _attr(node, "encoding-type") == "csr_matrix" else sp.csc_matrix
    return cls((node["data"][()], node["indices"][()], node["indptr"][()]), shape=shape)


def _column(node):
    """One dataframe column as a 1-D array or pandas extension array, or None if unknown."""
    import h5py

    if _is_dataset(node):
        if h5py.check_string_dtype(node.dtype) is not None:
            return np.asarray(node.asstr()[()], dtype=object)
        return node[()]
    enc = _attr(node, "encoding-type")
    if enc == "categorical":
        categories = _column(node["categories"])
        return pd.Categorical.from_codes(node["codes"][()], categories,
                                         ordered=bool(node.attrs.get("ordered", False)))
    if enc in ("nullable-integer", "nullable-boolean", "nullable-string-array"):
        values, mask = _column(node["values"]), node["mask"][()].astype(bool)
        dtype = {"nullable-integer": "Int64", "nullable-boolean": "boolean",
                 "nullable-string-array": "string"}[enc]
        return pd.Series(values).astype(dtype).mask(mask).array
    return None


def _dataframe(group, filename: str, where: str, with_skipped: bool = False):
    if _attr(group, "encoding-type") != "dataframe":
        raise InvalidInputError(
            f"{filename!r}: {where} is not stored in AnnData's dataframe encoding (found "
            f"{_attr(group, 'encoding-type')!r}); write the file with anndata 0.7 or newer.")
    index_key = _attr(group, "_index", "_index")
    columns = {_OBS_NAMES if where == "obs" else "var_names": _column(group[index_key])}
    skipped = []
    for name in _attr(group, "column-order", []) or []:
        values = _column(group[name])
        if values is None:
            skipped.append(name)
        else:
            columns[name if name not in columns else f"{name}_column"] = values
    df = pd.DataFrame(columns)
    return (df, skipped) if with_skipped else df
