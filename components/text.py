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


def embedding_report(meta: dict[str, Any]) -> None:
    """Metrics of a finished ``text_embed`` job (its artifact's ``meta.json``)."""
    m = st.columns(4)
    m[0].metric("Texts embedded", f"{meta['n_embedded']:,}",
                help=f"of {meta['n_texts']:,} rows" + (
                    f" (a random sample of the {meta['n_source_rows']:,} rows)" if meta["sampled"]
                    else ""))
    m[1].metric("Truncated", f"{meta['n_truncated']:,}",
                help=f"texts longer than the model's {meta['max_tokens']} tokens, cut at the end")
    m[2].metric("Left out (no text)", f"{meta['n_left_out']:,}",
                help=f"{meta['n_empty']:,} empty, {meta['n_missing']:,} missing, "
                     f"{meta['n_non_text']:,} not text")
    rate = meta.get("texts_per_second")
    m[3].metric("Time", f"{meta['embed_seconds']:.1f} s",
                help=(f"{rate:,.0f} texts/s, " if rate else "") + "loading the model included")
    note = (f"{meta['model']} ({meta['model_package']}) on {meta['device']}, batches of "
            f"{meta['batch_size']}")
    if meta["sampled"]:
        note += f"; a seeded random sample of {meta['n_texts']:,} of {meta['n_source_rows']:,} rows"
    st.caption(note + ".")
    if meta["n_left_out"]:
        st.warning(f"{meta['n_left_out']:,} rows had no text ({meta['n_empty']:,} empty, "
                   f"{meta['n_missing']:,} missing, {meta['n_non_text']:,} not text) and were "
                   "left out: the embedding has one row per text that embedded (its "
                   "`source_row` column points back). They are listed below.")
    if meta["n_truncated"]:
        one = meta["n_truncated"] == 1
        st.info(f"{meta['n_truncated']:,} text{'' if one else 's'} {'was' if one else 'were'} longer "
                f"than {meta['max_tokens']} tokens and truncated (the `truncated` column marks "
                f"{'it' if one else 'them'}).")
