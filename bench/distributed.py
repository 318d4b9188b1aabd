"""In process against Ray (a local cluster), in one run: text embedding, weight spectra, and
the row-block jobs (kNN graph, sample placement, faithfulness).

Run from the repository root:

    .venv/bin/python bench/distributed.py [--texts 50000] [--layers 4]
        [--shape 1024x8192] [--filler 8192x28672] [--cpus 2] [--skip-text] [--skip-weights]
        [--rows 100000] [--dims 32] [--sample 20000] [--skip-blocks]

1. **Text embedding**: ``--texts`` short texts (the bundled ChatterBot statements,
   numbered so every text is distinct) through :class:`TextEmbedder` in process, then
   through Ray Data ``map_batches`` with one :class:`BatchEmbedder` actor per CPU; the
   largest difference between the two embeddings is printed.
2. **Weight spectra**: a synthetic checkpoint at real Llama-70B shapes written as
   ``--layers`` safetensors shards in a temporary folder. Each shard holds one layer's
   ``k_proj`` and ``v_proj`` (``--shape``, 1024 x 8192 by default: Llama-3-70B's grouped
   KV projections, bfloat16) and its ``mlp.down_proj`` (``--filler``, 8192 x 28672) which
   is listed but skipped by ``max_evals`` (its full 8192-eigenvalue spectrum needs a
   3.9 TFLOP Gram matrix: tens of minutes per matrix on a 2-core machine), so a shard
   is as large as a real one (~500 MB) while the analysed matrices stay affordable.
   In process vs Ray: time, and peak host memory of every process (the driver's and
   each Ray worker's ``ru_maxrss``), next to the shard size and the process's
   resident size after its imports.

Measured on the shared 2-core development machine (load average 9-17, 2 Ray CPUs;
2 December 2026):

* text, 50,000 texts, batch 64 (load 3-8): in process 378.6 s, Ray 435.6 s (1.15x, +15 %),
  embeddings identical, driver peak 1,070 vs 700 MiB (``bench/distributed_results.md``).
* text, 10,000 texts, batch 64 (load 9-17): in process 580.8 s, Ray 226.6 s (0.39x; the
  in-process embedder runs torch with its default thread count, which spin-waits against
  the load, while each Ray actor runs one thread), embeddings identical (max |diff| 0);
  2,000 texts: 91.7 s vs 43.3 s. Driver peak 1,016 MiB in process, 485 MiB with Ray.
* weights, 4 shards of 480 MiB (k_proj, v_proj 1024 x 8192 analysed, down_proj
  8192 x 28672 skipped by ``max_evals``): in process 19.3 s, Ray 12.8 s (0.66x; Ray's
  start-up of ~10-15 s is outside the clock in both), alphas identical. Peak: in-process
  driver 796 MiB (317 after imports: the skipped 470 MiB down_proj is still read once);
  Ray driver 391 MiB (382), each worker 616 MiB (367 after importing torch): about one
  1024 x 8192 matrix's working set per worker, far below two shards (960 MiB).
* row blocks, 100,000 x 32 (``--rows 100000 --dims 32 --sample 20000``, load 5-16): kNN
  graph (IVF, 7 blocks) 9.0 s in process, 16.1 s on Ray; placement of 80,000 rows 1.5 s vs
  1.7 s; faithfulness (2,000 rows against all) 112.3 s vs 169.6 s; every output identical;
  driver peak 1,007 MiB vs 697 MiB, worker peak 1,167 MiB (``bench/distributed_results.md``).

3. **Row blocks**: ``--rows`` seeded clustered float32 vectors of ``--dims`` dimensions:
   the kNN graph (15 neighbours, ``auto``: IVF above 20,000 rows), the placement of the
   rows outside a ``--sample``-row sample from their 10 nearest sample rows (the sample's
   "map" is two of its coordinates: the placement's cost does not depend on the map),
   and the faithfulness scores of a 2-D map (2,000 scored rows, the graph's kNN recall),
   in process and then in row blocks on Ray. Time per step, Ray / in-process ratio,
   whether the outputs are identical, and the peaks of the driver and of the workers.
   Results: ``bench/distributed_results.md``.

Every configuration runs in a fresh subprocess, so a peak belongs to one configuration
(the driver's peak is its VmHWM, reset when the subprocess starts).
Timings on a shared machine are noisy: the load average is printed beside them, and the
two engines run back to back in the same run (ratios, not absolute numbers, matter).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _rss_mb() -> float:
    """This process's peak resident size in MiB since :func:`_reset_peak` (Linux VmHWM;
    ``ru_maxrss`` would include the parent's peak, which survives fork and exec)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def _ray_engine(cpus: int):
    from backend.engines import RayEngine

    return RayEngine("local", num_cpus=cpus, object_store_mb=400)


# ------------------------------------------------------------------------------ children


def child_text(engine_name: str, n_texts: int, cpus: int, batch_size: int, out: str) -> None:
    import numpy as np

    from backend.datasets.text import load_text_dataset
    from backend.embed.text import TextEmbedder

    statements = load_text_dataset()["text"].tolist()
    texts = [f"{statements[i % len(statements)]} ({i})" for i in range(n_texts)]
    embedder = TextEmbedder(batch_size)
    engine = _ray_engine(cpus) if engine_name == "ray" else None
    try:
        base = _rss_mb()
        t0 = time.perf_counter()
        emb, report = embedder.encode_with_report(texts, engine=engine)
        seconds = time.perf_counter() - t0
        np.save(out + ".npy", emb)
        Path(out).write_text(json.dumps({"seconds": seconds, "n": report.n_embedded,
                                         "driver_base_mb": base, "driver_peak_mb": _rss_mb()}))
    finally:
        if engine is not None:
            engine.close()


def child_weights(engine_name: str, folder: str, cpus: int, max_evals: int, out: str) -> None:
    from backend.diagnostics.weights import analyze_weights
    from backend.engines import Task
    from backend.models import open_weights

    weights = open_weights(folder)
    engine = _ray_engine(cpus) if engine_name == "ray" else None
    try:
        worker_base = None
        if engine is not None:  # a worker's size after importing torch and the analysis
            worker_base = max(engine.map(_worker_base, [Task(f"warm {i}", ()) for i in range(cpus)]))
        base = _rss_mb()
        t0 = time.perf_counter()
        res = analyze_weights(weights, farms=True, mp_fit=True, max_evals=max_evals, engine=engine)
        seconds = time.perf_counter() - t0
        Path(out).write_text(json.dumps({
            "seconds": seconds, "n_layers": len(res.layers), "n_skipped": len(res.skipped),
            "driver_base_mb": base, "driver_peak_mb": _rss_mb(), "worker_base_mb": worker_base,
            "worker_peak_mb": res.timings.get("worker_peak_rss_mb"),
            "alphas": res.layers["alpha"].tolist(),
            "evals_max": [float(s.evals[-1]) for s in res.spectra.values()]}))
    finally:
        if engine is not None:
            engine.close()


def _worker_base() -> float:
    import resource

    import backend.diagnostics.weights  # noqa: F401
    import torch  # noqa: F401

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # as the tasks report


def _worker_warm() -> float:
    """:func:`_worker_base` after importing the row-block kernels (and faiss), holding the
    worker for a second so that each warm-up task starts its own worker."""
    import backend.diagnostics.projection  # noqa: F401
    import backend.project.large  # noqa: F401
    import faiss  # noqa: F401

    time.sleep(1.0)
    return _worker_base()


def _block_vectors(n: int, d: int):
    """``n`` seeded float32 rows of ``d`` dimensions around 50 centres."""
    import numpy as np

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (50, d))
    return (centres[rng.integers(0, 50, n)] + rng.normal(0, 1, (n, d))).astype(np.float32)


def child_blocks(engine_name: str, n: int, d: int, sample: int, cpus: int, out: str) -> None:
    """kNN graph, placement and faithfulness on one engine; outputs saved beside ``out``."""
    import numpy as np

    from backend.diagnostics.projection import projection_faithfulness
    from backend.engines import Task
    from backend.project.knn import knn_search
    from backend.project.large import place_rest

    X = _block_vectors(n, d)
    engine = _ray_engine(cpus) if engine_name == "ray" else None
    try:
        worker_base = None
        if engine is not None:  # every worker started, with the kernels' modules imported
            worker_base = max(engine.map(_worker_warm, [Task(f"warm {i}", ())
                                                        for i in range(cpus)]))
        base = _rss_mb()
        seconds = {}
        t0 = time.perf_counter()
        idx, dist, rep = knn_search(X, 15, engine=engine)
        seconds["knn"] = time.perf_counter() - t0
        rows = np.sort(np.random.default_rng(1).choice(n, sample, replace=False))
        rest = np.setdiff1d(np.arange(n), rows)
        t0 = time.perf_counter()
        Y_rest, place_method = place_rest(X[rows], X[rows, :2], X[rest], engine=engine)
        seconds["placement"] = time.perf_counter() - t0
        Y = X[:, :2].astype(np.float64)
        t0 = time.perf_counter()
        faith = projection_faithfulness(X, Y, n_neighbors=10, knn=(idx, dist), n_rows=2000,
                                        engine=engine)
        seconds["faithfulness"] = time.perf_counter() - t0
        worker_peak = None
        if engine is not None:
            worker_peak = max(engine.map(_worker_base, [Task(f"peak {i}", ())
                                                         for i in range(2 * cpus)]))
        np.savez(out + ".npz", idx=idx, dist=dist, place=Y_rest,
                 **{f"faith_{k}": v for k, v in faith.per_point.items()})
        Path(out).write_text(json.dumps({
            "seconds": seconds, "knn_method": rep.method, "knn_settings": rep.settings,
            "place_method": place_method, "trustworthiness": faith.trustworthiness,
            "driver_base_mb": base, "driver_peak_mb": _rss_mb(),
            "worker_base_mb": worker_base, "worker_peak_mb": worker_peak}))
    finally:
        if engine is not None:
            engine.close()


# ------------------------------------------------------------------------------ parent


def _run_child(*args: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "out.json")
        cmd = [sys.executable, __file__, "--child", *args, out]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-4000:]}")
        result = json.loads(Path(out).read_text())
        result["wall_s"] = time.perf_counter() - t0
        if Path(out + ".npy").exists():
            import numpy as np

            result["embeddings"] = np.load(out + ".npy")
        if Path(out + ".npz").exists():
            import numpy as np

            with np.load(out + ".npz") as arrays:
                result["arrays"] = {k: arrays[k] for k in arrays.files}
        return result


def write_checkpoint(folder: Path, layers: int, shape: tuple[int, int],
                     filler: tuple[int, int]) -> float:
    """``layers`` shards (k_proj, v_proj at ``shape``, down_proj at ``filler``, bfloat16);
    returns the largest shard's size in MiB."""
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(0)
    width = len(str(layers))
    for i in range(layers):
        tensors = {}
        for name in ("k_proj", "v_proj"):  # heavy-tailed rows, like trained weights
            w = torch.randn(shape, generator=g) * torch.rand(shape[0], 1, generator=g) ** -0.5
            tensors[f"model.layers.{i}.self_attn.{name}.weight"] = w.to(torch.bfloat16)
        tensors[f"model.layers.{i}.mlp.down_proj.weight"] = (
            torch.randn(filler, generator=g, dtype=torch.float32) * 0.02).to(torch.bfloat16)
        tensors[f"model.layers.{i}.input_layernorm.weight"] = torch.ones(shape[1],
                                                                         dtype=torch.bfloat16)
        save_file(tensors, folder / f"model-{i + 1:0{width}d}-of-{layers:0{width}d}.safetensors")
        del tensors
    return max(f.stat().st_size for f in folder.glob("*.safetensors")) / 2**20


def _shape(text: str) -> tuple[int, int]:
    a, b = text.lower().split("x")
    return int(a), int(b)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _reset_peak()
        what, *rest = sys.argv[2:]
        if what == "text":
            child_text(rest[0], int(rest[1]), int(rest[2]), int(rest[3]), rest[4])
        elif what == "blocks":
            child_blocks(rest[0], int(rest[1]), int(rest[2]), int(rest[3]), int(rest[4]),
                         rest[5])
        else:
            child_weights(rest[0], rest[1], int(rest[2]), int(rest[3]), rest[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--shape", default="1024x8192")
    parser.add_argument("--filler", default="8192x28672")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--skip-text", action="store_true")
    parser.add_argument("--skip-weights", action="store_true")
    parser.add_argument("--rows", type=int, default=100_000,
                        help="rows of the row-block jobs (kNN graph, placement, faithfulness)")
    parser.add_argument("--dims", type=int, default=32)
    parser.add_argument("--sample", type=int, default=20_000,
                        help="sample rows the other rows are placed from")
    parser.add_argument("--skip-blocks", action="store_true")
    args = parser.parse_args()
    if args.texts < 1 or args.rows < 100 or not 11 <= args.sample < args.rows:
        parser.error(f"need --texts >= 1, --rows >= 100 and 11 <= --sample < --rows; got "
                     f"{args.texts}, {args.rows}, {args.sample}")
    import numpy as np

    print(f"# bench/distributed.py, {args.cpus} CPUs for Ray, {_load()}")
    if not args.skip_text:
        rows = {}
        for engine in ("in-process", "ray"):
            rows[engine] = _run_child("text", engine, str(args.texts), str(args.cpus),
                                      str(args.batch_size))
            print(f"text {engine}: {rows[engine]['seconds']:.1f} s, "
                  f"{args.texts / rows[engine]['seconds']:.0f} texts/s, driver peak "
                  f"{rows[engine]['driver_peak_mb']:.0f} MiB ({_load()})", flush=True)
        diff = float(np.abs(rows["ray"]["embeddings"] - rows["in-process"]["embeddings"]).max())
        ratio = rows["ray"]["seconds"] / rows["in-process"]["seconds"]
        print(f"text: {args.texts:,} texts, batch {args.batch_size}; Ray / in-process time "
              f"{ratio:.2f} (overhead {100 * (ratio - 1):+.0f}%); max |difference| {diff:.2e}")
    if not args.skip_weights:
        shape, filler = _shape(args.shape), _shape(args.filler)
        with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
            t0 = time.perf_counter()
            shard_mb = write_checkpoint(Path(tmp), args.layers, shape, filler)
            print(f"checkpoint: {args.layers} shards of {shard_mb:.0f} MiB (k_proj, v_proj "
                  f"{args.shape}, down_proj {args.filler}, bfloat16), written in "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
            max_evals = min(shape) if min(filler) > min(shape) else 15000
            rows = {}
            for engine in ("in-process", "ray"):
                rows[engine] = _run_child("weights", engine, tmp, str(args.cpus), str(max_evals))
                r = rows[engine]
                workers = "" if r["worker_peak_mb"] is None else (
                    f", worker peak {r['worker_peak_mb']:.0f} MiB (after imports "
                    f"{r['worker_base_mb']:.0f})")
                print(f"weights {engine}: {r['seconds']:.1f} s, {r['n_layers']} layers "
                      f"({r['n_skipped']} skipped), driver peak {r['driver_peak_mb']:.0f} MiB "
                      f"(after imports {r['driver_base_mb']:.0f}){workers} ({_load()})",
                      flush=True)
            same = rows["ray"]["alphas"] == rows["in-process"]["alphas"] and \
                rows["ray"]["evals_max"] == rows["in-process"]["evals_max"]
            ratio = rows["ray"]["seconds"] / rows["in-process"]["seconds"]
            print(f"weights: Ray / in-process time {ratio:.2f} (overhead {100 * (ratio - 1):+.0f}%);"
                  f" alphas and top eigenvalues identical: {same}; shard {shard_mb:.0f} MiB")
    if not args.skip_blocks:
        bench_blocks(args)


def bench_blocks(args) -> None:
    """The row-block jobs in process, then on Ray: times, ratios, equality, peaks."""
    import numpy as np

    rows = {}
    for engine in ("in-process", "ray"):
        rows[engine] = r = _run_child("blocks", engine, str(args.rows), str(args.dims),
                                      str(args.sample), str(args.cpus))
        workers = "" if r["worker_peak_mb"] is None else (
            f", worker peak {r['worker_peak_mb']:.0f} MiB (after imports "
            f"{r['worker_base_mb']:.0f})")
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in r["seconds"].items())
        print(f"blocks {engine}: {steps}; driver peak {r['driver_peak_mb']:.0f} MiB (after "
              f"imports {r['driver_base_mb']:.0f}){workers} ({_load()})", flush=True)
    here, there = rows["in-process"], rows["ray"]
    print(f"blocks: {args.rows:,} x {args.dims} float32, kNN {there['knn_method']} "
          f"{there['knn_settings']}, placement of {args.rows - args.sample:,} rows from "
          f"{args.sample:,} ({there['place_method']})")
    for step in here["seconds"]:
        ratio = there["seconds"][step] / here["seconds"][step]
        print(f"  {step}: Ray / in-process time {ratio:.2f} ({here['seconds'][step]:.1f} s "
              f"-> {there['seconds'][step]:.1f} s)")
    same = {k: bool(np.array_equal(v, there["arrays"][k], equal_nan=True))
            for k, v in here["arrays"].items()}
    print(f"  identical outputs: {all(same.values())} "
          f"({', '.join(k for k, v in same.items() if not v) or 'every array'}"
          f"{' differ' if not all(same.values()) else ''})")


if __name__ == "__main__":
    main()
