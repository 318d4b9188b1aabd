"""Text page drawing: what a text column holds, and the report of an embedding job."""

from __future__ import annotations

from typing import Any

import streamlit as st

__all__ = ["cells_summary", "embedding_report"]


def cells_summary(column: str, counts: dict[str, int] | None, n_rows: int) -> None:
    """A caption of how many cells of ``column`` hold text; a warning naming the rows that
    will be left out (empty, missing, not text), if any."""
    if not counts:
        return
    bad = counts["n_empty"] + counts["n_missing"] + counts["n_non_text"]
    st.caption(f"{counts['n_text']:,} of {n_rows:,} cells of {column!r} hold text.")
    if bad:
        parts = [f"{counts[k]:,} {w}" for k, w in (("n_empty", "empty"), ("n_missing", "missing"),
                                                    ("n_non_text", "not text")) if counts[k]]
        st.warning(f"{bad:,} rows have no text in {column!r} ({', '.join(parts)}); they will be "
                   "left out of the embedding and its map.")


def embedding_report(result: Any, device: str) -> None:
    """Metrics of a finished ``text_embed`` job (its typed result) that ran on ``device``."""
    m = st.columns(4)
    m[0].metric("Texts embedded", f"{result.n_embedded:,}",
                help=f"of {result.n_texts:,} rows" + (
                    f" (a random sample of the {result.n_source_rows:,} rows)" if result.sampled
                    else ""))
    m[1].metric("Truncated", f"{result.n_truncated:,}",
                help=f"texts longer than the model's {result.max_tokens} tokens, cut at the end")
    m[2].metric("Left out (no text)", f"{result.n_left_out:,}",
                help=f"{result.n_empty:,} empty, {result.n_missing:,} missing, "
                     f"{result.n_non_text:,} not text")
    rate = result.texts_per_second
    m[3].metric("Time", f"{result.embed_seconds:.1f} s",
                help=(f"{rate:,.0f} texts/s, " if rate else "") + "loading the model included")
    note = (f"{result.model} ({result.model_package}) on {device}, batches of "
            f"{result.batch_size}")
    if result.sampled:
        note += f"; a seeded random sample of {result.n_texts:,} of {result.n_source_rows:,} rows"
    st.caption(note + ".")
    if result.n_left_out:
        st.warning(f"{result.n_left_out:,} rows had no text ({result.n_empty:,} empty, "
                   f"{result.n_missing:,} missing, {result.n_non_text:,} not text) and were "
                   "left out: the embedding has one row per text that embedded (its "
                   "`source_row` column points back). They are listed below.")
    if result.n_truncated:
        one = result.n_truncated == 1
        st.info(f"{result.n_truncated:,} text{'' if one else 's'} {'was' if one else 'were'} longer "
                f"than {result.max_tokens} tokens and truncated (the `truncated` column marks "
                f"{'it' if one else 'them'}).")
