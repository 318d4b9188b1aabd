"""Execution engines: the in-process engine and a local Ray cluster (the session's ``cluster``
fixture, 2 CPUs) give the same results (weight spectra bit for bit, text embeddings within 1e-5);
cancel reaches the cluster; a killed worker's task is retried; a failed task is named; an
unreachable cluster and a missing shard are refused with a clear message."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from backend.client import LocalBackend
from backend.diagnostics.weights import ONE_D_REASON, analyze_weights
from backend.engines import (EngineUnavailableError, InProcessEngine, Task, TaskFailedError,
                             engine_from_env)
from backend.errors import InvalidInputError, JobCancelled
from backend.jobs import JobRunner, JobSpec, register, unregister
from backend.models import open_weights
from backend.store import Store
from tests import ray_support

ray = pytest.importorskip("ray")


def _checkpoint(folder: Path) -> Path:
    """A two-shard checkpoint: linear, bfloat16 and conv weights, a bias, a norm, a zero matrix."""
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    heavy = torch.distributions.StudentT(3.0).sample((160, 120))
    save_file({"layers.0.q.weight": torch.randn(192, 96, generator=g),
               "layers.0.q.bias": torch.randn(192, generator=g),
               "layers.0.mlp.weight": heavy.contiguous(),
               "layers.1.up.weight": torch.randn(128, 256, generator=g).to(torch.bfloat16)},
              folder / "model-00001-of-00002.safetensors")
    save_file({"layers.1.conv.weight": torch.randn(64, 32, 3, 3, generator=g),
               "layers.1.norm.weight": torch.randn(80, 80, generator=g),
               "layers.2.zero.weight": torch.zeros(90, 90)},
              folder / "model-00002-of-00002.safetensors")
    return folder


# ---------------------------------------------------------------------------- configuration


def test_unset_address_runs_in_process(monkeypatch):
    monkeypatch.delenv("LATENT_LENS_RAY_ADDRESS", raising=False)
    engine = engine_from_env()
    assert isinstance(engine, InProcessEngine)
    assert engine.describe()["name"] == "in-process"


@pytest.mark.parametrize("address, match", [
    ("127.0.0.1:1", r"the Ray cluster at '127.0.0.1:1' \(LATENT_LENS_RAY_ADDRESS\) cannot be "
                    r"reached: .*unset LATENT_LENS_RAY_ADDRESS to run jobs in this process"),
    ("ray://127.0.0.1:1", "the Ray cluster at 'ray://127.0.0.1:1'.* cannot be reached"),
    ("no-port", "'no-port' is not a Ray address; give host:port"),
])
def test_an_unreachable_cluster_fails_at_start(tmp_path, monkeypatch, address, match):
    monkeypatch.setenv("LATENT_LENS_RAY_ADDRESS", address)
    with pytest.raises(EngineUnavailableError, match=match):
        JobRunner(Store(tmp_path / "home"))  # never silently in process


def test_the_service_refuses_to_start_without_its_cluster(tmp_path, monkeypatch):
    from backend.service import main

    monkeypatch.setenv("LATENT_LENS_RAY_ADDRESS", "127.0.0.1:1")
    with pytest.raises(SystemExit, match=r"latent-lens service: the Ray cluster at "
                                         r"'127.0.0.1:1' .* cannot be reached"):
        main(["--home", str(tmp_path / "home")])


def test_in_process_engine_names_a_failed_task_and_stops():
    engine = InProcessEngine()
    tasks = [Task(f"block {i}", (i, 2)) for i in range(4)]
    with pytest.raises(TaskFailedError, match="task block 2 failed: ValueError: boom at 2"):
        engine.map(ray_support.fail_on, tasks)
    import threading

    stop = threading.Event()
    stop.set()
    with pytest.raises(JobCancelled):
        engine.map(ray_support.square, tasks, stop=stop)


# ----------------------------------------------------------------------------- missing shards


def test_a_missing_shard_is_named(tmp_path):
    folder = _checkpoint(tmp_path / "ckpt")
    (folder / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(InvalidInputError,
                       match=r"sharded checkpoint of 2 shards, but 1 are missing: "
                             r"model-00002-of-00002\.safetensors"):
        open_weights(folder)
    # shards named by an index (any file names)
    other = tmp_path / "indexed"
    other.mkdir()
    save_file({"a.weight": torch.ones(60, 60)}, other / "part-a.safetensors")
    (other / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"a.weight": "part-a.safetensors", "b.weight": "part-b.safetensors"}}))
    with pytest.raises(InvalidInputError, match=r"1 named in model\.safetensors\.index\.json are "
                                                r"missing: part-b\.safetensors \(holding e\.g\. "
                                                r"b\.weight\)"):
        open_weights(other)


# ------------------------------------------------------------------------------ on the cluster


def test_weight_spectra_on_ray_equal_in_process_bit_for_bit(cluster, tmp_path):
    weights = open_weights(_checkpoint(tmp_path / "ckpt"))
    here = analyze_weights(weights, mp_fit=True)
    there = analyze_weights(weights, mp_fit=True, engine=cluster)
    assert list(there.layers["name"]) == ["layers.0.mlp.weight", "layers.0.q.weight",
                                          "layers.1.up.weight", "layers.1.conv.weight"]
    pd.testing.assert_frame_equal(here.layers, there.layers, check_exact=True)
    pd.testing.assert_frame_equal(here.skipped, there.skipped, check_exact=True)
    assert there.skipped["reason"].tolist() == [ONE_D_REASON, "normalisation layer",
                                                "all weights are zero"]
    for name, spectrum in here.spectra.items():
        assert np.array_equal(spectrum.evals, there.spectra[name].evals)
        assert np.array_equal(spectrum.farms_evals, there.spectra[name].farms_evals)
        assert spectrum.plain == there.spectra[name].plain
        assert spectrum.farms == there.spectra[name].farms
    assert there.timings["worker_peak_rss_mb"] > 0

    # a shard lost after the checkpoint was opened: the failed task names it
    (tmp_path / "ckpt" / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(InvalidInputError, match=r"the shard model-00002-of-00002\.safetensors "
                                                r"holding layers\.1\.conv\.weight is missing"):
        analyze_weights(weights, engine=cluster)


def test_weights_job_on_ray_and_its_sidecar(cluster, tmp_path):
    from backend.datasets import ingest
    from backend.datasets.upload import UploadLimits

    folder = _checkpoint(tmp_path / "ckpt")
    data = (folder / "model-00001-of-00002.safetensors").read_bytes()
    artifacts = {}
    for engine in (InProcessEngine(), cluster):
        b = LocalBackend(tmp_path / engine.name, engine=engine)
        try:
            info = ingest.add_model(b.store, UploadLimits(), data, "m.safetensors")
            job = b.submit(JobSpec("weights", info.id, {"mp_fit": False}))
            status = b.wait(job, 60)
            assert status.state == "done", status.error
            artifacts[engine.name] = (b.artifact(job).meta,
                                      b.artifact_table(job, "layers.parquet"),
                                      b.artifact_table(job, "spectra.parquet"))
        finally:
            b.runner.shutdown()
    (meta_here, layers_here, spectra_here), (meta_ray, layers_ray, spectra_ray) = (
        artifacts["in-process"], artifacts["ray"])
    pd.testing.assert_frame_equal(layers_here, layers_ray, check_exact=True)
    pd.testing.assert_frame_equal(spectra_here, spectra_ray, check_exact=True)
    assert meta_here["engine"]["name"] == "in-process"
    assert meta_ray["engine"]["name"] == "ray" and meta_ray["engine"]["address"] == "local"
    assert meta_ray["engine"]["resources"]["CPU"] == 2.0
    assert meta_ray["engine"]["nodes"] == 1


@pytest.mark.slow  # 17-23 s of loading the sentence model in a worker; the engine and the
# embedder each keep their default-run tests (the rest of this file; tests/unit/test_text.py)
def test_text_embeddings_on_ray_match_in_process(cluster):
    from backend.embed.text import TextEmbedder

    texts = ["a cat sleeps on the sofa", None, "kittens chase a ball of wool", "  ", 3,
             "the stock market fell today", "interest rates are rising " * 80]
    embedder = TextEmbedder(batch_size=2)
    here, report_here = embedder.encode_with_report(texts)
    there, report_there = embedder.encode_with_report(texts, engine=cluster)
    np.testing.assert_allclose(there, here, atol=1e-5, rtol=0)
    assert np.abs(np.linalg.norm(there[[0, 2, 5, 6]], axis=1) - 1).max() < 1e-6
    assert not there[[1, 3, 4]].any()  # no text: zero rows, as in process
    for field in ("truncated_rows", "empty_rows", "missing_rows", "non_text_rows", "n_embedded"):
        assert getattr(report_there, field) == getattr(report_here, field)
    assert report_there.truncated_rows == [6] and report_there.device == "cpu"


@pytest.mark.slow
def test_text_embedding_job_on_ray_matches_in_process(cluster, tmp_path):
    texts = ["a cat sleeps on the sofa", "kittens chase a ball of wool", None, "   ",
             "the stock market fell today", "interest rates are rising " * 80,  # truncated
             "fresh bread from the bakery", "a bowl of hot soup", "I paid my taxes"]
    csv = pd.DataFrame({"message": texts, "n": np.arange(len(texts))}).to_csv(index=False).encode()
    out = {}
    for engine in (InProcessEngine(), cluster):
        b = LocalBackend(tmp_path / engine.name, engine=engine)
        try:
            info, _ = b.add_text_upload(csv, "t.csv", text_column="message")
            job = b.submit(JobSpec("text_embed", info.id, {"batch_size": 3}))
            status = b.wait(job, 80)
            assert status.state == "done", status.error
            result = b.result(job)
            out[engine.name] = (result, np.asarray(b.store.vectors(result.derived_dataset)),
                                b.artifact_table(job, "cells.parquet"), b.artifact(job).meta)
        finally:
            b.runner.shutdown()
    (r1, v1, c1, _), (r2, v2, c2, meta) = out["in-process"], out["ray"]
    assert v1.shape == v2.shape == (7, 384)
    np.testing.assert_allclose(v2, v1, atol=1e-5, rtol=0)
    pd.testing.assert_frame_equal(c1, c2)
    assert c2["status"].tolist() == ["missing", "empty", "truncated"]
    assert (r2.n_embedded, r2.n_truncated, r2.n_left_out) == (7, 1, 2)
    assert meta["engine"]["name"] == "ray"


def test_a_failed_ray_task_is_named(cluster):
    tasks = [Task(f"block {i}", (i, 1)) for i in range(3)]
    with pytest.raises(TaskFailedError, match="task block 1 failed: ValueError: boom at 1"):
        cluster.map(ray_support.fail_on, tasks)
    assert cluster.map(ray_support.square, [Task(f"b{i}", (i,)) for i in range(5)]) == \
        [0, 1, 4, 9, 16]


def test_a_killed_worker_is_retried_by_ray(cluster, tmp_path):
    from backend.engines import RayEngine

    marker = tmp_path / "died"
    assert cluster.map(ray_support.die_once, [Task("block 0", (str(marker),))]) == [42]
    assert marker.exists()  # the first attempt killed its worker
    no_retry = RayEngine("local", max_retries=0)  # the same cluster, no retries
    with pytest.raises(TaskFailedError, match=r"task block 7 failed: its worker died 1 time"):
        no_retry.map(ray_support.die_once, [Task("block 7", (str(tmp_path / "again"),))])


def test_cancel_stops_the_tasks_on_the_cluster(cluster, tmp_path):
    register(ray_support.SLEEPY)
    b = LocalBackend(tmp_path / "home", engine=cluster)
    try:
        store = b.store
        info = store.add_dataset(pd.DataFrame({"a": [1]}), np.ones((1, 2)), name="x", source="t")
        job = b.submit(JobSpec("ray_sleepy", info.id, {"folder": str(tmp_path)}))
        ray_support.wait_for(lambda: len(list(tmp_path.glob("started-*"))) == 2, 60,
                             "2 tasks to start")
        t0 = time.monotonic()
        b.cancel(job)
        status = ray_support.wait_for(lambda: (s := b.status(job)).finished and s, 2.0,
                                      "the cancel")
        assert status.state == "cancelled" and time.monotonic() - t0 < 2.0
        # the sleepers were killed (their CPUs are free again), and none finished
        ray_support.wait_for(lambda: ray.available_resources().get("CPU", 0) == 2.0, 20,
                             "free CPUs")
        assert not list(tmp_path.glob("finished-*"))
        assert len(list(tmp_path.glob("started-*"))) == 2  # the rest never started
    finally:
        b.runner.shutdown()
        unregister(ray_support.SLEEPY.name)


@pytest.mark.slow
def test_cancel_stops_a_ray_data_embedding(cluster):
    import threading

    from backend.embed.text import TextEmbedder

    stop = threading.Event()
    seen = []

    def progress(fraction, message):
        seen.append(fraction)
        stop.set()  # cancel once the first batch is back

    texts = [f"sentence {i} about cats and dogs" for i in range(400)]
    t0 = time.monotonic()
    with pytest.raises(JobCancelled):
        TextEmbedder(batch_size=8).encode_with_report(texts, progress=progress, engine=cluster,
                                                      stop=stop)
    assert seen and seen[0] < 0.5
    ray_support.wait_for(lambda: ray.available_resources().get("CPU", 0) == 2.0, 30,
                         "free CPUs")
    assert time.monotonic() - t0 < 120
