"""Reading an uploaded table: ``inspect_upload`` against ``pandas.read_csv`` alone, side by side.

Run from the repository root:

    .venv/bin/python bench/upload.py [--rows 1000000]

``inspect_upload`` decodes the bytes, detects the separator, decimal mark and header, reads
the table with pandas, checks the records against the lines (a separator count when every
line is one record, else Python's csv reader) and decides the vector columns. The reference
is ``pandas.read_csv`` on the same bytes with the separator given. Three files: plain CSV
(the fast record check), the same with one quoted text column (the csv reader pass), and a
semicolon file with decimal commas. Prints the best of 3 and the ratio, with the load average.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.datasets.upload import inspect_upload  # noqa: E402


def _best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    n = ap.parse_args().rows
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"label": rng.integers(0, 10, n), "x": rng.normal(size=n),
                       "y": rng.normal(size=n)})
    files = {
        "plain.csv": (df.to_csv(index=False).encode(), {"sep": ","}),
        "quoted.csv": (df.assign(note="a, b").to_csv(index=False).encode(), {"sep": ","}),
        "eu.csv": (df.to_csv(index=False, sep=";", decimal=",").encode(),
                   {"sep": ";", "decimal": ","}),
    }
    print(f"load average {os.getloadavg()[0]:.2f} (1 min); {n:,} rows, best of 3")
    print(f"{'file':<12}{'MB':>7}{'pandas s':>10}{'inspect s':>11}{'ratio':>8}")
    for name, (data, kw) in files.items():
        ref = _best(lambda: pd.read_csv(io.BytesIO(data), **kw))
        ours = _best(lambda: inspect_upload(data, name))
        print(f"{name:<12}{len(data) / 2**20:>7.0f}{ref:>10.2f}{ours:>11.2f}{ours / ref:>8.2f}")
    print(f"load average {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
