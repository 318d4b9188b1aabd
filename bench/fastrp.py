"""FastRP speed, memory and quality: ours against the reference pipeline, side by side.

Run from the repository root:

    .venv/bin/python bench/fastrp.py [--edges 10000000] [--probe] [--skip-synthetic]
                                     [--reference-synthetic] [--threads 2]

Every configuration runs in a fresh subprocess; its peak memory is read from
the kernel: VmHWM is reset (``/proc/self/clear_refs``) after the graph is
loaded, and the table shows VmHWM minus the resident size at that moment, so
graph, interpreter and imports are excluded. Linux only.

Rows
----
- BlogCatalog (10,312 nodes, 333,983 edges) at d = 128 and 512, the paper's
  setting: iteration weights (0, 0, 1, 6.67), beta = -0.64, k = 4 products.
- A synthetic graph with ``--edges`` undirected edges (default 10^7) between
  uniformly random endpoints on 10^6 nodes, d = 128.
- "reference" is the GTmac/FastRP pipeline re-expressed here (not copied):
  scikit-learn's ``SparseRandomProjection`` (density 1/sqrt(n), i.e. s = sqrt(n))
  applied to the transition matrix with the degree scaling folded into the
  projection, float64, sparse first product, per-power L2 row normalisation,
  weighted sum, ``sklearn.preprocessing.scale``.

Columns
-------
time (best of 3 on BlogCatalog, one run on the synthetic graph), peak memory,
the bandwidth floor — k sparse products each touch nnz·d float32 values,
floor = k·nnz·d·4 B / (streaming bandwidth measured here by a large array
copy) — and time / floor. ``--probe`` adds the node-classification check
(one-vs-rest logistic regression, C = 0.1, 5 shuffles) at 10/50/90 % training
for d = 512, ours (s = 3 and s = sqrt(n)) and reference, next to the
published 0.372/0.228, 0.412/0.275, 0.426/0.280.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BLOG = ROOT.parent / "shared" / "data" / "graphs" / "blogcatalog"
WEIGHTS = (0.0, 0.0, 1.0, 6.67)
BETA = -0.64
PUBLISHED = {0.1: (0.372, 0.228), 0.5: (0.412, 0.275), 0.9: (0.426, 0.280)}


# ---------------------------------------------------------------------------- worker side


def _rss_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _blogcatalog():
    from backend.datasets.graph import load_edge_list

    g, _ = load_edge_list(BLOG / "edges.csv")
    return g.adjacency


def _synthetic(n_edges: int, n_nodes: int = 1_000_000):
    """Symmetric 0/1 adjacency with ``n_edges`` uniformly random edges (self-pairs dropped)."""
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    u = rng.integers(0, n_nodes, n_edges)
    v = rng.integers(0, n_nodes, n_edges)
    keep = u != v
    u, v = u[keep], v[keep]
    S = sp.csr_matrix(
        (np.ones(2 * len(u), dtype=np.float32), (np.r_[u, v], np.r_[v, u])),
        shape=(n_nodes, n_nodes),
    )
    S.sum_duplicates()
    S.data[:] = 1.0
    return S


def _reference_fastrp(S, d: int, weights, beta: float, seed: int = 42) -> np.ndarray:
    """The GTmac/FastRP procedure (fastrp_projection + fastrp_merge), written for this bench."""
    import scipy.sparse as sp
    from sklearn.preprocessing import normalize, scale
    from sklearn.random_projection import SparseRandomProjection

    S = sp.csr_matrix(S, dtype=np.float64)
    deg = np.asarray(S.sum(axis=1)).ravel()
    M = sp.diags(1.0 / deg) @ S
    proj = SparseRandomProjection(n_components=d, random_state=seed).fit(M)
    proj.components_ = proj.components_ @ sp.diags(deg**beta)
    cur = proj.transform(M)
    powers = [cur]
    for _ in range(len(weights) - 1):
        cur = M @ cur
        powers.append(cur)
    dense = [p.toarray() if sp.issparse(p) else np.asarray(p) for p in powers]
    E = sum(w * normalize(p, norm="l2", axis=1) for w, p in zip(weights, dense))
    return scale(E)


def worker(cfg: dict) -> dict:
    import torch

    torch.set_num_threads(cfg["threads"])
    import pandas as pd
    import scipy.sparse as sp

    from backend.datasets.graph import Graph
    from backend.embed.graph import FastRP

    S = sp.load_npz(cfg["npz"]).tocsr()
    ids = np.arange(S.shape[0])
    g = Graph(adjacency=S, node_ids=ids, nodes=pd.DataFrame({"id": ids}), directed=False,
              name=cfg["graph"])
    n, nnz = S.shape[0], S.nnz
    # warm-up on a tiny graph so imports and first-call costs are not timed
    FastRP(8).fit(S[:50, :50].tocsr() + S[:50, :50].T.tocsr())
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _rss_mib("VmRSS")
    times = []
    E = None
    for _ in range(cfg["repeats"]):
        t0 = time.perf_counter()
        if cfg["impl"] == "ours":
            E = FastRP(cfg["d"], iteration_weights=WEIGHTS, beta=BETA,
                       sparsity=cfg["sparsity"]).fit_transform(g)
        else:
            E = _reference_fastrp(S, cfg["d"], WEIGHTS, BETA)
        times.append(time.perf_counter() - t0)
        if cfg["repeats"] > 1:
            del E
            E = None
    peak = _rss_mib("VmHWM") - before
    out = {"n": n, "nnz": nnz, "time": min(times), "peak_mib": peak}
    if cfg.get("probe"):
        from backend.datasets.graph import node_label_matrix
        from backend.diagnostics.graph import node_classification_probe

        Y, _ = node_label_matrix(g, pd.read_csv(BLOG / "labels.csv"))  # ids are 0..n-1
        res = node_classification_probe(E, Y, train_fractions=(0.1, 0.5, 0.9), n_repeats=5, C=0.1)
        out["f1"] = res.table[["train_fraction", "micro_f1", "macro_f1"]].to_dict("records")
    return out


# ---------------------------------------------------------------------------- driver side


def _bandwidth_gbs() -> float:
    a = np.ones(64 * 1024 * 1024 // 4 * 8, dtype=np.float32)  # 512 MiB
    b = np.empty_like(a)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t0)
    return 2 * a.nbytes / best / 1e9  # read + write


def _run(cfg: dict) -> dict:
    # a fixed mmap threshold returns freed large blocks to the OS, so RSS tracks live memory
    env = dict(os.environ, OMP_NUM_THREADS=str(cfg["threads"]), PYTHONPATH=str(ROOT),
               MALLOC_MMAP_THRESHOLD_="65536")
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(cfg)],
        capture_output=True, text=True, env=env, check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"worker failed for {cfg}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--edges", type=int, default=10_000_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--probe", action="store_true")
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--reference-synthetic", action="store_true",
                    help="also time the reference pipeline on the synthetic graph (slow, GBs)")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return

    import scipy.sparse as sp

    tmp = tempfile.TemporaryDirectory()
    blog_npz = str(Path(tmp.name) / "blogcatalog.npz")
    sp.save_npz(blog_npz, _blogcatalog())
    bw = _bandwidth_gbs()
    k = len(WEIGHTS)
    base = {"threads": args.threads, "sparsity": 3.0, "npz": blog_npz}
    configs = []
    for d in (128, 512):
        configs.append(("BlogCatalog", d, "ours s=3", dict(base, graph="blogcatalog", d=d,
                                                           impl="ours", repeats=3)))
        configs.append(("BlogCatalog", d, "ours s=sqrt(n)", dict(base, graph="blogcatalog", d=d,
                                                                 impl="ours", repeats=3,
                                                                 sparsity="sqrt_n")))
        configs.append(("BlogCatalog", d, "reference", dict(base, graph="blogcatalog", d=d,
                                                            impl="reference", repeats=3)))
    if not args.skip_synthetic:
        synth_npz = str(Path(tmp.name) / "synthetic.npz")
        sp.save_npz(synth_npz, _synthetic(args.edges), compressed=False)
        base = dict(base, npz=synth_npz)
        configs.append((f"synthetic {args.edges:.0e} edges", 128, "ours s=3",
                        dict(base, graph="synthetic", d=128, impl="ours", repeats=1)))
        if args.reference_synthetic:
            configs.append((f"synthetic {args.edges:.0e} edges", 128, "reference",
                            dict(base, graph="synthetic", d=128, impl="reference", repeats=1)))

    print(f"FastRP, k = {k} products, weights {WEIGHTS}, beta = {BETA}, {args.threads} threads; "
          f"streaming bandwidth {bw:.1f} GB/s (copy), load average {os.getloadavg()[0]:.1f}")
    header = (f"{'graph':<24} {'d':>4} {'impl':<15} {'n':>9} {'nnz':>10} {'time s':>8} "
              f"{'peak MiB':>9} {'floor s':>8} {'t/floor':>8} {'vs ref':>7}")
    print(header)
    print("-" * len(header))
    ref_time = {}
    results = []
    for graph, d, impl, cfg in configs:
        r = _run(cfg)
        floor = k * r["nnz"] * d * 4 / (bw * 1e9)
        results.append((graph, d, impl, cfg, r, floor))
        if impl == "reference":
            ref_time[(graph, d)] = r["time"]
    for graph, d, impl, cfg, r, floor in results:
        ref = ref_time.get((graph, d))
        ratio = f"{r['time'] / ref:7.2f}" if ref else "    n/a"
        print(f"{graph:<24} {d:>4} {impl:<15} {r['n']:>9} {r['nnz']:>10} {r['time']:>8.3f} "
              f"{r['peak_mib']:>9.0f} {floor:>8.3f} {r['time'] / floor:>8.1f} {ratio}")
    print("time: best of 3 (BlogCatalog) or one run (synthetic); peak: VmHWM growth during the "
          "fit; vs ref: time / reference time on the same graph and d.")

    if args.probe:
        print("\nBlogCatalog d = 512, one-vs-rest LR C = 0.1, 5 shuffles: Micro-F1 / Macro-F1")
        print(f"{'impl':<15} " + " ".join(f"{f'{int(f * 100)}%':>15}" for f in PUBLISHED))
        print(f"{'published':<15} " + " ".join(f"{m:.3f} / {M:.3f}".rjust(15)
                                              for m, M in PUBLISHED.values()))
        for impl, extra in (("ours s=3", {}), ("ours s=sqrt(n)", {"sparsity": "sqrt_n"}),
                            ("reference", {"impl": "reference"})):
            cfg = dict(base, graph="blogcatalog", d=512, impl="ours", repeats=1, probe=True,
                       npz=blog_npz)
            cfg.update(extra)
            r = _run(cfg)
            cells = [f"{row['micro_f1']:.3f} / {row['macro_f1']:.3f}" for row in r["f1"]]
            print(f"{impl:<15} " + " ".join(c.rjust(15) for c in cells))


if __name__ == "__main__":
    main()
