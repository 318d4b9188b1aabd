"""Nearest neighbours in the original space (``Backend.neighbors``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backend.errors import InvalidInputError


def _store(backend, X):
    table = pd.DataFrame({"name": [f"r{i}" for i in range(len(X))]})
    return backend.store.add_dataset(table, np.asarray(X, np.float32), name="z", source="test")


def test_zero_vector_has_undefined_cosine_distances(backend):
    """Issue 17 item 21: a zero vector is not at cosine distance 1.0 from everything."""
    X = np.array([[0, 0, 0], [1, 0, 0], [0, 2, 0], [1, 1, 0], [3, 0, 1]], float)
    info = _store(backend, X)
    with pytest.raises(InvalidInputError, match="row 0 is the zero vector.*cosine distances "
                                                "are undefined"):
        backend.neighbors(info.id, 0, 3, "cosine")
    # from another row the zero vector is never listed (its distance is undefined)
    nb = backend.neighbors(info.id, 1, 4, "cosine")
    assert 0 not in nb["_row"].tolist() and len(nb) == 3
    np.testing.assert_allclose(nb["distance"], [1 - 3 / np.sqrt(10), 1 - 1 / np.sqrt(2), 1.0],
                               rtol=1e-6)
    # euclidean is defined for it
    nb = backend.neighbors(info.id, 0, 2, "euclidean")
    np.testing.assert_allclose(nb["distance"], [1.0, np.sqrt(2)])
    with pytest.raises(InvalidInputError, match="constant.*correlation distances are undefined"):
        backend.neighbors(info.id, 0, 2, "correlation")
