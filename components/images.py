"""Small image grids for datasets whose vectors are images (e.g. digits)."""

from __future__ import annotations

import numpy as np
import streamlit as st

__all__ = ["image_grid"]


def image_grid(vectors: np.ndarray, rows: list[int], shape: tuple[int, int], *, columns: int = 12,
               captions: list[str] | None = None) -> None:
    """Draw each vector as a grey image of ``shape``, scaled up, ``columns`` per line."""
    if len(vectors) == 0:
        return
    lo, hi = float(np.min(vectors)), float(np.max(vectors))
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    imgs = [np.kron(((v.reshape(shape) - lo) * scale).astype(np.uint8), np.ones((6, 6), np.uint8))
            for v in vectors]
    caps = captions or [f"row {r}" for r in rows]
    for start in range(0, len(imgs), columns):
        cols = st.columns(columns)
        for c, img, cap in zip(cols, imgs[start:start + columns], caps[start:start + columns]):
            c.image(img, caption=cap, clamp=True)
