"""Benchmark of clusters, names, density and linked filters at 10^5 and 10^6 rows.

Data: a synthetic 2-D map shaped like a real one (the bundled ChatterBot corpus's
21 topics as 21 Gaussian blobs of unequal size and spread, plus 2 % uniform
background), each point carrying a text drawn from its topic, a category, a
number and an id column with 100,000 distinct values.

Each stage runs in a fresh process (spawned), warmed on 2,000 rows first (imports,
numba JIT), so its time and peak memory (max RSS above the RSS before the timed
run) are its own. Every stage is printed beside a
reference measured in the same run, as a ratio:

- HDBSCAN levels (our ladder on one spanning tree) vs ONE plain
  ``fast_hdbscan.HDBSCAN`` fit: the ratio is what the extra levels cost;
- KMeans levels vs one scikit-learn ``MiniBatchKMeans`` fit;
- c-TF-IDF names vs scikit-learn ``CountVectorizer.fit_transform`` of the same texts;
- density vs ``numpy.histogram2d`` of the same points;
- the linked-filter round trip (3 charts + the passing row ids in one call, with a category
  filter, a range filter and a map selection of 30 % of the rows) vs pandas
  reading the same Parquet columns and counting them (``value_counts``).

Run from the repository root (about 5 minutes on 2 cores, 3 GB of memory):

    python bench/clusters.py            # 10^5 and 10^6 rows
    python bench/clusters.py --quick    # 10^5 rows only
    python bench/clusters.py --sizes 1000000 --stages hdbscan_levels facets
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_data(n: int, folder: Path, seed: int = 0) -> None:
    """Write xy.npy, texts.parquet and table.parquet for ``n`` points into ``folder``."""
    from backend.datasets import load_text_dataset

    corpus = load_text_dataset()
    rng = np.random.default_rng(seed)
    cats = corpus["category"].cat.categories
    k = len(cats)
    weights = rng.dirichlet(np.ones(k) * 2)
    topic = rng.choice(k, size=n, p=weights)
    centres = rng.uniform(-20, 20, (k, 2))
    spread = rng.uniform(0.5, 2.0, k)
    xy = centres[topic] + rng.normal(size=(n, 2)) * spread[topic, None]
    noise = rng.random(n) < 0.02
    xy[noise] = rng.uniform(-25, 25, (int(noise.sum()), 2))
    pools = [corpus.loc[corpus["category"] == c, "text"].to_numpy() for c in cats]
    texts = np.empty(n, dtype=object)
    for t in range(k):
        idx = np.flatnonzero(topic == t)
        texts[idx] = pools[t][rng.integers(len(pools[t]), size=len(idx))]
    np.save(folder / "xy.npy", xy.astype(np.float32))
    pd.DataFrame({"text": texts}).to_parquet(folder / "texts.parquet", index=False)
    pd.DataFrame({
        "topic": pd.Categorical(cats[topic]),
        "value": rng.gamma(2.0, 3.0, n),
        "id": np.char.add("u", rng.integers(0, 100_000, n).astype(str)),
        "_row": np.arange(n, dtype=np.int64),
    }).to_parquet(folder / "table.parquet", index=False)


def _work(name: str, folder: Path, n: int | None) -> str:
    """One stage on the first ``n`` rows (all when None); returns a note."""
    xy = np.load(folder / "xy.npy")[:n]
    if name == "hdbscan_levels":
        from backend.clusters import cluster_levels

        lv = cluster_levels(xy)
        if n is None:
            np.save(folder / "labels.npy", lv.labels)
        return (f"{lv.n_levels} levels, clusters {lv.n_clusters}, default {lv.default_level}, "
                f"unclustered {lv.noise_fraction[lv.default_level]:.1%}")
    if name == "hdbscan_one_fit":
        from fast_hdbscan import HDBSCAN

        lab = HDBSCAN(min_cluster_size=max(5, round(len(xy) ** 0.5)), min_samples=10).fit(xy).labels_
        return f"{lab.max() + 1} clusters"
    if name == "kmeans_levels":
        from backend.clusters import cluster_levels

        return f"clusters {cluster_levels(xy, method='kmeans', n_clusters=32).n_clusters}"
    if name == "minibatch_one_fit":
        from sklearn.cluster import MiniBatchKMeans

        MiniBatchKMeans(32, random_state=42, n_init=3).fit(xy)
        return ""
    if name in ("names", "count_vectorizer"):
        texts = pd.read_parquet(folder / "texts.parquet")["text"][:n]
        if name == "count_vectorizer":
            from sklearn.feature_extraction.text import CountVectorizer

            CountVectorizer(token_pattern=r"(?u)\b\w\w+\b", stop_words="english").fit_transform(texts)
            return ""
        from backend.clusters import keyword_names

        labels = np.load(folder / "labels.npy")[:, :n]
        names = keyword_names(texts, labels)
        return f"{len(labels)} levels; e.g. {list(names[-1].values())[:3]}"
    if name == "density":
        from backend.clusters import density_grid

        g = density_grid(xy, grid_size=256)
        return f"grid 256x256, bandwidth {g.bandwidth[0]:.3f}"
    if name == "histogram2d":
        np.histogram2d(xy[:, 0], xy[:, 1], bins=256)
        return ""
    path = folder / "table.parquet"
    if name == "facets":
        from backend.clusters import facet_counts

        rows = np.flatnonzero(xy[:, 0] < np.quantile(xy[:, 0], 0.3))
        flt = [{"kind": "category", "column": "topic", "values": ["food", "sports", "money"]},
               {"kind": "range", "column": "value", "low": 1.0, "high": 12.0}]
        fc = facet_counts(path, ["topic", "value", "id"], filters=flt, rows=rows, return_rows=True)
        return (f"{fc.n_selected:,} of {fc.n_rows:,} pass; id chart: "
                f"{fc.facets['id'].n_distinct:,} distinct -> {len(fc.facets['id'].counts)} bars")
    if name == "pandas_counts":
        df = pd.read_parquet(path, columns=["topic", "value", "id"])
        df["topic"].value_counts()
        np.histogram(df["value"], bins=30)
        df["id"].value_counts().head(20)
        return ""
    raise KeyError(name)


def _stage(name: str, folder: str, queue) -> None:
    """Run one stage in this (fresh) process after a warm-up on 2,000 rows (imports, JIT)."""
    folder = Path(folder)
    if name != "facets" and name != "pandas_counts":
        _work(name, folder, 2000)
    else:
        _work(name, folder, None)  # the Parquet file is whole; a full warm run reads it once
    rss0 = _rss_mib()
    t0 = time.perf_counter()
    info = _work(name, folder, None)
    queue.put((time.perf_counter() - t0, _rss_mib() - rss0, info))


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_stage(name: str, folder: Path) -> tuple[float, float, str]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_stage, args=(name, str(folder), q))
    p.start()
    out = q.get()
    p.join()
    return out


PAIRS = [("hdbscan_levels", "hdbscan_one_fit"), ("kmeans_levels", "minibatch_one_fit"),
         ("names", "count_vectorizer"), ("density", "histogram2d"), ("facets", "pandas_counts")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10^5 rows only")
    ap.add_argument("--sizes", type=int, nargs="*", default=None, help="row counts")
    ap.add_argument("--stages", nargs="*", default=None, choices=[o for o, _ in PAIRS],
                    help="only these stages (each with its reference)")
    args = ap.parse_args()
    sizes = args.sizes or ([100_000] if args.quick else [100_000, 1_000_000])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            folder = Path(tmp) / str(n)
            folder.mkdir()
            make_data(n, folder)
            for ours, ref in PAIRS:
                if args.stages and ours not in args.stages:
                    continue
                t, mem, info = run_stage(ours, folder)
                rt, rmem, _ = run_stage(ref, folder)
                rows.append({"rows": n, "stage": ours, "seconds": round(t, 3),
                             "peak_MiB": round(mem), "reference": ref, "ref_seconds": round(rt, 3),
                             "ratio": round(t / rt, 2) if rt > 0 else float("nan"), "note": info})
                print(rows[-1], f"load {os.getloadavg()[0]:.2f}", flush=True)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_colwidth", 90)
    print(pd.DataFrame(rows).to_string(index=False))
    print(f"load average (1, 5, 15 min): {os.getloadavg()}")


if __name__ == "__main__":
    main()
