"""Tests for backend.models: weight loaders, the bundled model, the random baseline."""

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from backend.errors import InvalidInputError, InvalidParameterError
from backend.models import bundled_minilm, open_weights, random_init_like


def _state_dict():
    generator = torch.Generator().manual_seed(0)
    return {
        "encoder.dense.weight": torch.randn(96, 64, generator=generator),
        "encoder.dense.bias": torch.randn(96, generator=generator),
        "encoder.LayerNorm.weight": torch.ones(64),
        "head.weight": torch.randn(10, 96, generator=generator),
    }


class _WritesAFile:
    """A pickle payload that would create a file when unpickled."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_bundled_minilm_shapes_without_reading():
    weights = bundled_minilm()
    assert weights.format == "bundled"
    assert len(weights) == 104
    assert weights.n_parameters == 22_713_728
    assert weights.shapes["embeddings.word_embeddings.weight"] == (30522, 384)
    assert weights.shapes["encoder.layer.5.output.dense.weight"] == (384, 1536)
    assert weights.dtypes["embeddings.position_ids"] == "int64"
    assert weights.config["model_type"] == "bert"
    # natural order: layer 5 after layer 4, pooler last
    names = weights.names
    assert names.index("encoder.layer.4.output.dense.weight") < names.index(
        "encoder.layer.5.attention.self.key.weight"
    )
    assert weights.to_dict()["n_tensors"] == 104


def test_bundled_minilm_reads_tensor_values():
    weights = bundled_minilm()
    query = weights.get("encoder.layer.0.attention.self.query.weight")
    assert query.shape == (384, 384) and query.dtype == torch.float32
    # log10 of the squared Frobenius norm, as WeightWatcher reports it (3.12828)
    assert np.log10(float((query.double() ** 2).sum())) == pytest.approx(3.12828, abs=1e-5)
    with pytest.raises(InvalidParameterError, match="not a tensor of this model"):
        weights.get("encoder.layer.9.weight")


def test_open_safetensors_file_lazily(tmp_path):
    state = _state_dict()
    path = tmp_path / "model.safetensors"
    save_file(state, str(path))
    weights = open_weights(path)
    assert weights.format == "safetensors"
    assert weights.shapes == {name: tuple(t.shape) for name, t in sorted(state.items())}
    pairs = dict(weights)
    for name, tensor in state.items():
        assert torch.equal(pairs[name], tensor)


def test_open_torch_state_dict_and_checkpoints(tmp_path):
    state = _state_dict()
    plain = tmp_path / "weights.pt"
    torch.save(state, plain)
    assert set(open_weights(plain).names) == set(state)

    lightning = tmp_path / "last.ckpt"
    torch.save(
        {"epoch": 3, "global_step": 120, "state_dict": state, "optimizer_states": [{"lr": 0.1}]},
        lightning,
    )
    loaded = open_weights(lightning)
    assert set(loaded.names) == set(state)
    assert torch.equal(loaded.get("head.weight"), state["head.weight"])

    nested = tmp_path / "ckpt.pth"
    torch.save({"model": state, "optimizer": {"state": {}}}, nested)
    assert set(open_weights(nested).names) == set(state)


def test_open_hugging_face_folder_with_shards(tmp_path):
    state = _state_dict()
    names = sorted(state)
    save_file({n: state[n] for n in names[:2]}, str(tmp_path / "model-00001-of-00002.safetensors"))
    save_file({n: state[n] for n in names[2:]}, str(tmp_path / "model-00002-of-00002.safetensors"))
    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "toy", "initializer_range": 0.05})
    )
    weights = open_weights(tmp_path)
    assert weights.format == "hf_folder"
    assert weights.config["model_type"] == "toy"
    assert set(weights.names) == set(state)
    assert torch.equal(dict(weights)["encoder.dense.weight"], state["encoder.dense.weight"])


def test_open_folder_with_pytorch_bin(tmp_path):
    torch.save(_state_dict(), tmp_path / "pytorch_model.bin")
    assert open_weights(tmp_path).format == "hf_folder"


def test_file_that_is_not_weights_is_refused(tmp_path):
    csv = tmp_path / "table.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(InvalidInputError, match="table.csv is not a weights file"):
        open_weights(csv)
    npy = tmp_path / "array.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(InvalidInputError, match="not a weights file"):
        open_weights(npy)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(InvalidInputError, match="is empty"):
        open_weights(empty)
    with pytest.raises(InvalidInputError, match="does not exist"):
        open_weights(tmp_path / "missing.safetensors")


def test_pickle_carrying_code_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    zipped = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2, 2), "payload": _WritesAFile(marker)}, zipped)
    with pytest.raises(
        InvalidInputError, match="refused: loading it needs arbitrary unpickling"
    ) as info:
        open_weights(zipped)
    assert "system" in str(info.value)  # names the global it would have called
    assert not marker.exists()

    legacy = tmp_path / "evil_legacy.bin"
    legacy.write_bytes(pickle.dumps({"payload": _WritesAFile(marker)}, protocol=2))
    with pytest.raises(InvalidInputError, match="refused"):
        open_weights(legacy)
    assert not marker.exists()


def test_empty_state_dict_is_refused(tmp_path):
    path = tmp_path / "empty_state.pt"
    torch.save({}, path)
    with pytest.raises(InvalidInputError, match="holds no tensors"):
        open_weights(path)
    only_meta = tmp_path / "meta.pt"
    torch.save({"epoch": 3, "state_dict": {}}, only_meta)
    with pytest.raises(InvalidInputError, match="holds no tensors"):
        open_weights(only_meta)


def test_corrupt_safetensors_and_empty_folder_are_refused(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file(_state_dict(), str(path))
    data = path.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    half = len(data) // 2
    with pytest.raises(InvalidInputError, match=f"truncated: its header says {len(data):,} bytes, "
                                                f"the file has {half:,} \\({len(data) - half:,} "
                                                "missing\\)"):
        open_weights(truncated)
    folder = tmp_path / "no_weights"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    with pytest.raises(InvalidInputError, match="holds no \\*.safetensors or pytorch_model.bin"):
        open_weights(folder)


def test_random_init_like_follows_hf_init_and_is_reproducible():
    source = bundled_minilm()
    baseline = random_init_like(source, random_state=3)
    assert baseline.shapes == source.shapes and baseline.dtypes == source.dtypes
    dense = baseline.get("encoder.layer.0.intermediate.dense.weight")
    assert dense.shape == (1536, 384)
    # config initializer_range = 0.02; 589,824 draws give the std to ~0.1 %
    assert float(dense.std()) == pytest.approx(0.02, rel=0.01)
    assert float(dense.mean()) == pytest.approx(0.0, abs=1e-4)
    assert torch.equal(baseline.get("encoder.layer.0.output.LayerNorm.weight"), torch.ones(384))
    assert torch.equal(baseline.get("encoder.layer.0.output.LayerNorm.bias"), torch.zeros(384))
    assert torch.equal(baseline.get("pooler.dense.bias"), torch.zeros(384))
    assert torch.equal(
        baseline.get("embeddings.position_ids"), source.get("embeddings.position_ids")
    )
    again = random_init_like(source, random_state=3)
    assert torch.equal(dict(again)["pooler.dense.weight"], baseline.get("pooler.dense.weight"))
    other = random_init_like(source, random_state=4)
    assert not torch.equal(other.get("pooler.dense.weight"), baseline.get("pooler.dense.weight"))


def test_random_init_torch_default_bounds(tmp_path):
    path = tmp_path / "w.safetensors"
    save_file(_state_dict(), str(path))
    baseline = random_init_like(open_weights(path), init="torch_default")
    head = baseline.get("head.weight")  # fan_in 96
    bound = 1 / np.sqrt(96)
    assert float(head.abs().max()) <= bound
    assert float(head.abs().max()) > 0.95 * bound
    with pytest.raises(InvalidParameterError, match="init must be one of"):
        random_init_like(open_weights(path), init="xavier")
    with pytest.raises(InvalidParameterError, match="std must be a positive number"):
        random_init_like(open_weights(path), std=0.0)


def test_git_lfs_pointer_is_named_as_such(tmp_path):
    """Issue 17 item 22: a Git LFS pointer is not "not a weights file" but named."""
    pointer = tmp_path / "model.safetensors"
    pointer.write_text("version https://git-lfs.github.com/spec/v1\n"
                       "oid sha256:53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db\n"
                       "size 90868376\n")
    with pytest.raises(InvalidInputError, match=r"model.safetensors is a Git LFS pointer file "
                                                r"\(\d+ bytes\), not the weights.*90,868,376 bytes"
                                                r".*git lfs pull"):
        open_weights(pointer)


def test_truncated_torch_files_say_the_sizes(tmp_path):
    zipped = tmp_path / "model.pt"
    torch.save(_state_dict(), zipped)
    data = zipped.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidInputError, match=f"cut.pt is truncated: it has {len(data) // 2:,} "
                                                "bytes and its end-of-archive record is missing"):
        open_weights(cut)
    legacy = tmp_path / "legacy.pt"
    torch.save(_state_dict(), legacy, _use_new_zipfile_serialization=False)
    data = legacy.read_bytes()
    legacy.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidInputError, match=f"legacy.pt is truncated: its data needs at "
                                                f"least [0-9,]+ bytes, the file has "
                                                f"{len(data) // 2:,} \\([0-9,]+ missing\\)"):
        open_weights(legacy)


class Config:
    """A small config object a training script saves beside its tensors."""

    def __init__(self, marker):
        self.lr = 0.1
        self.marker = str(marker)

    def __setstate__(self, state):  # would run if the class were ever rebuilt
        Path(state["marker"]).write_text("constructed")


def test_checkpoint_with_numpy_scalars_and_a_config_loads_its_tensors(tmp_path):
    """Issue 17 item 22: numpy scalars and a config object do not refuse the file: the
    tensors load through an allow-list, the config class never runs, both are reported."""
    import argparse

    marker = tmp_path / "constructed"
    state = _state_dict()
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": state, "epoch": np.int64(7), "best_loss": np.float32(0.25),
                "args": argparse.Namespace(lr=0.1), "config": Config(marker)}, path)
    w = open_weights(path)
    assert set(w.names) == set(state)
    for name, tensor in state.items():
        assert torch.equal(w.get(name), tensor)
    assert not marker.exists()  # Config.__setstate__ never ran
    assert w.ignored == ["epoch (numpy int64 scalar)", "best_loss (numpy float32 scalar)",
                         "args (argparse.Namespace)",
                         f"config (a {__name__}.Config object, not loaded)"]
    # still refused: a file that calls a function (see test_pickle_carrying_code_...)
