"""Panels that sit beside a view (Streamlit code shared by pages; one function each)."""

from __future__ import annotations

import json

import numpy as np
import streamlit as st

from app.common import load_artifact_table
from backend.errors import LatentLensError
from backend.kinds import JobSpec, params_of
from components.form import param_form
from components.jobs import job_done
from components.search import (
    filter_controls,
    filterable_columns,
    hits_frame,
    hits_table_options,
    search_summary,
)
from components.spectra import covariance_figure

__all__ = ["representation_panel"]


def representation_panel(c, info, columns: list[str], label_col: str | None) -> None:
    """RankMe, diffusion spectral entropy/MI, alignment/uniformity and the covariance spectrum."""
    st.caption("Is the representation healthy or collapsing? RankMe (effective rank), diffusion "
               "spectral entropy and mutual information with a label, alignment/uniformity of "
               "positive pairs, and the covariance spectrum against its Marchenko–Pastur bulk.")
    jobs = st.session_state.setdefault("rep_jobs", {})
    with st.form(f"rep-form-{info.id}"):
        a, b, d = st.columns(3)
        params = {}
        decl = params_of("representation")
        for where, name in ((a, "label_column"), (b, "pair_column"), (d, "normalize")):
            over = {"default": label_col} if name == "label_column" else {}
            params.update(param_form(decl, key=f"rep-{info.id}", where=where, only=[name],
                                     overrides={name: over}, columns=columns))
        if st.form_submit_button("Compute representation diagnostics"):
            try:
                jobs[info.id] = c.submit(JobSpec("representation", info.id, params))
            except LatentLensError as e:
                st.error(str(e))
    status = job_done(c, jobs.get(info.id), label="Representation diagnostics", key="rep-job",
                      again="compute them again")
    if status is None:
        return
    r = c.result(status.artifact_id).representation
    m = st.columns(4)
    m[0].metric("RankMe", f"{r['rankme']:.1f}", help=f"of at most {min(r['n_rows'], r['n_features'])}")
    m[1].metric("RankMe (centred)", f"{r['rankme_centered']:.1f}")
    m[2].metric("Diffusion spectral entropy", f"{r['dse']:.2f} bits",
                help=f"on {r['dse_n']:,} rows (DSE grows with N: compare at equal N)")
    spikes = r.get("mp_num_spikes")
    m[3].metric("MP spikes", "–" if spikes is None else spikes,
                help="covariance eigenvalues above the MP bulk edge"
                     + ("" if spikes is not None else " (skipped: see the note below)"))
    if r.get("note"):
        st.info(r["note"])
    extra = []
    if r.get("dsmi") is not None:
        extra.append(f"DSMI with the label: **{r['dsmi']:.3f} bits** ({r['n_classes']} classes)")
    if r.get("alignment") is not None:
        extra.append(f"alignment **{r['alignment']:.3f}**, uniformity **{r['uniformity']:.3f}** "
                     f"({r['n_pairs']:,} pairs)")
    if extra:
        st.markdown(" · ".join(extra))
    spec = load_artifact_table(c, status.artifact_id, "covariance_spectrum.parquet")
    st.plotly_chart(covariance_figure(spec["eigenvalue"].to_numpy(), bulk_max=r["mp_bulk_max"]),
                    key=f"cov-{status.artifact_id}")


__all__ += ["faithfulness_panel"]


def faithfulness_panel(c, faith, faith_job: str | None) -> None:
    """Trustworthiness, continuity, kNN recall and row-Spearman of the map shown."""
    if faith is None:
        return
    status = job_done(c, faith_job, label="Scoring the projection's faithfulness",
                      key="faith-job", again="reload the page to score it again")
    if status is None:
        return
    if faith.state != "done":  # finished during this run: rerun, so the colour choices
        st.rerun()             # above (per-point scores) agree with the scores shown here
    f = c.result(status.artifact_id).faithfulness
    k = f["n_neighbors"]
    m = st.columns(4)
    m[0].metric(f"Trustworthiness (k={k})", f"{f['trustworthiness']:.3f}",
                help="1 = no point in a map neighbourhood that is far in the original space")
    m[1].metric(f"Continuity (k={k})", f"{f['continuity']:.3f}",
                help="1 = no original-space neighbour pushed away in the map")
    m[2].metric(f"kNN recall (k={k})", f"{f['knn_recall']:.3f}",
                help="share of each point's original-space neighbours kept in the map")
    m[3].metric("Row Spearman vs original distances", f"{f['row_spearman_original']:.3f}",
                help="mean per-row rank correlation of map and original distances")
    if f.get("rank_sample"):
        st.caption(f"Trustworthiness, continuity and Spearman on {f['n_rows']:,} random rows "
                   f"ranked within a seeded sample of {f['rank_sample']:,} of "
                   f"{f['n_samples']:,} rows; kNN recall on every row (shared kNN graph).")
    elif f["sampled"]:
        st.caption(f"Trustworthiness, continuity and Spearman on {f['n_rows']:,} random rows "
                   f"of {f['n_samples']:,} (each against every point); kNN recall on every row.")


__all__ += ["search_panel"]


@st.cache_data(show_spinner=False, max_entries=64)
def _search(_client, dataset_id: str, query: str, k: int, filters_json: str):
    return _client.search(dataset_id, query, k, json.loads(filters_json))


def search_panel(c, info, table) -> np.ndarray | None:
    """Search a text-embedding dataset by meaning: a query box, metadata filters applied
    inside the search (with their selectivity), the hits with their scores. Returns the hits'
    row ids (to highlight on the map), or None when there is no query."""
    text_col = info.extra["text_column"]
    st.markdown("**Search by meaning**")
    te = info.extra.get("text_embedding") or {}
    if te:
        left = (f"; {te['n_left_out']:,} rows without text left out" if te.get("n_left_out") else "")
        n_trunc = te.get("n_truncated", 0)
        trunc = (f"; {n_trunc:,} text{'s' if n_trunc > 1 else ''} over {te['max_tokens']} tokens "
                 "truncated" if n_trunc else "")
        st.caption(f"{info.n_rows:,} texts of {text_col!r} embedded{left}{trunc}.")
    query = st.text_input("Query", key=f"search_q-{info.id}",
                          placeholder="e.g. what is your favourite book?",
                          help=f"Embedded with {info.extra.get('text_model', 'the text model')}; "
                               f"rows ranked by cosine similarity of their {text_col!r}.")
    k = int(st.number_input("Hits (k)", 1, max(1, min(200, info.n_rows)), min(10, info.n_rows),
                            key=f"search_k-{info.id}"))
    categorical, numeric = filterable_columns(
        table, exclude=(text_col, info.extra.get("source_row_column", ""),
                        info.extra.get("id_column") or ""))
    with st.expander("Metadata filters (applied inside the search)"):
        filters = filter_controls(table, categorical, numeric, key=f"search_f-{info.id}")
    if not query.strip():
        st.caption("Type a query: the nearest rows are listed here and circled on the map.")
        return None
    try:
        res = _search(c, info.id, query, k, json.dumps(filters))
    except LatentLensError as e:
        st.error(str(e))
        return None
    st.caption(search_summary(res))
    if res.n_passing == 0:
        st.warning("No row passes the filters; loosen them.")
        return None
    label = info.extra.get("label_column")
    hits = hits_frame(res.hits, table, text_col, [label] if label else [])
    st.dataframe(hits, key="search_hits", **hits_table_options(hits, text_col))
    return res.hits["_row"].to_numpy()
