"""Test data: an AnnData ``.h5ad`` file written with h5py (anndata itself needs pandas < 3)."""

from __future__ import annotations

import numpy as np


def h5ad_bytes(path, *, sparse: bool = False):
    """A small AnnData file (30 cells × 6 genes, ``obsm/X_pca`` of width 3, ``obs`` with a
    categorical and a numeric column) written with h5py after the AnnData on-disk
    specification; returns its bytes, ``X`` and the embedding."""
    import h5py
    import scipy.sparse as sp

    rng = np.random.default_rng(3)
    X = rng.poisson(1.0, size=(30, 6)).astype(np.float32)
    pca = rng.normal(size=(30, 3)).astype(np.float32)
    str_dt = h5py.string_dtype()
    with h5py.File(path, "w") as f:
        f.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})
        if sparse:
            m = sp.csr_matrix(X)
            g = f.create_group("X")
            g.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0",
                            "shape": np.array(X.shape)})
            g["data"], g["indices"], g["indptr"] = m.data, m.indices, m.indptr
        else:
            f["X"] = X
            f["X"].attrs.update({"encoding-type": "array", "encoding-version": "0.2.0"})
        obs = f.create_group("obs")
        obs.attrs.update({"encoding-type": "dataframe", "encoding-version": "0.2.0",
                          "_index": "_index", "column-order": np.array(["cell_type", "n_counts"],
                                                                       dtype=object)})
        obs.create_dataset("_index", data=np.array([f"cell{i}" for i in range(30)], dtype=object),
                           dtype=str_dt)
        cat = obs.create_group("cell_type")
        cat.attrs.update({"encoding-type": "categorical", "encoding-version": "0.2.0",
                          "ordered": False})
        cat["codes"] = (np.arange(30) % 3).astype(np.int8)
        cat.create_dataset("categories", data=np.array(["B", "NK", "T"], dtype=object),
                           dtype=str_dt)
        obs["n_counts"] = X.sum(axis=1)
        var = f.create_group("var")
        var.attrs.update({"encoding-type": "dataframe", "encoding-version": "0.2.0",
                          "_index": "_index"})
        var.attrs.create("column-order", data=[], shape=(0,), dtype=str_dt)
        var.create_dataset("_index", data=np.array([f"G{j}" for j in range(6)], dtype=object),
                           dtype=str_dt)
        obsm = f.create_group("obsm")
        obsm.attrs.update({"encoding-type": "dict", "encoding-version": "0.1.0"})
        obsm["X_pca"] = pca
    return path.read_bytes(), X, pca
