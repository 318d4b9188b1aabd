"""Cluster names without a language model.

- From a text column: class-based TF-IDF (c-TF-IDF, Grootendorst 2022). All texts
  of a cluster form one document; a word's weight in cluster ``c`` is

  .. math:: w_{t,c} = \\frac{tf_{t,c}}{\\sum_{t'} tf_{t',c}} \\log\\left(1 + \\frac{A}{f_t}\\right)

  with :math:`f_t` the word's count over all clusters and :math:`A` the mean word
  count per cluster. The top words name the cluster. Words are split by
  scikit-learn's ``CountVectorizer`` with a Unicode pattern (``\\w`` matches letters
  of every script), so non-English text gets names too. Rows whose text is empty
  still belong to their cluster; the name comes from the cluster's other texts.
- From a metadata column: the most frequent values (categories) or the
  interquartile range (numbers with many distinct values).

Every cluster gets a non-empty name: ``"Cluster 3"`` when it has no usable text,
``"Unclustered"`` for label -1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from backend.clusters.clustering import UNCLUSTERED
from backend.errors import InvalidInputError

__all__ = ["keyword_names", "value_names", "names_frame", "TOKEN_PATTERN", "UNCLUSTERED_NAME"]

TOKEN_PATTERN = r"(?u)\b\w\w+\b"
UNCLUSTERED_NAME = "Unclustered"
_NUMERIC_DISTINCT = 20


def _fallback(cluster: int) -> str:
    return UNCLUSTERED_NAME if cluster == UNCLUSTERED else f"Cluster {cluster}"


def keyword_names(
    texts, labels: np.ndarray, *, n_keywords: int = 3, stop_words: str | None = "english"
) -> list[dict[int, str]]:
    """Name clusters by their class-based TF-IDF keywords.

    Parameters
    ----------
    texts : sequence of str of length n_samples
        One text per point; missing or empty texts are allowed.
    labels : ndarray of shape (n_samples,) or (n_levels, n_samples), dtype int
        Cluster labels (one row per level); -1 is the unclustered group.
    n_keywords : int, default=3
        Keywords per name, joined by ", ".
    stop_words : "english" or None, default="english"
        Words never used as keywords (scikit-learn's English list; other languages
        rely on the c-TF-IDF weight, which lowers words common to all clusters).

    Returns
    -------
    list of dict
        Per level, ``{cluster: name}`` for every label present (including -1).

    Raises
    ------
    InvalidInputError
        If ``texts`` and ``labels`` differ in length.

    References
    ----------
    .. [1] Grootendorst (2022). "BERTopic: Neural topic modeling with a class-based TF-IDF
       procedure." arXiv:2203.05794.
    """
    from sklearn.feature_extraction.text import CountVectorizer

    levels = np.atleast_2d(np.asarray(labels))
    texts = pd.Series(texts, dtype="object").fillna("").astype(str)
    if len(texts) != levels.shape[1]:
        raise InvalidInputError(
            f"{len(texts):,} texts for {levels.shape[1]:,} labelled points; they must match.")
    vec = CountVectorizer(token_pattern=TOKEN_PATTERN, stop_words=stop_words, lowercase=True,
                          dtype=np.float32)
    try:
        counts = vec.fit_transform(texts.to_numpy())
        vocab = vec.get_feature_names_out()
    except ValueError:  # empty vocabulary: every text empty or stop words only
        counts, vocab = sp.csr_matrix((len(texts), 0), dtype=np.float32), np.array([], str)
    return [_ctfidf_names(counts, vocab, lab, n_keywords) for lab in levels]


def _ctfidf_names(counts: sp.csr_matrix, vocab: np.ndarray, labels: np.ndarray,
                  n_keywords: int) -> dict[int, str]:
    present = np.unique(labels)
    names = {int(c): _fallback(int(c)) for c in present}
    clusters = present[present != UNCLUSTERED]
    if len(clusters) == 0 or counts.shape[1] == 0:
        return names
    keep = labels != UNCLUSTERED
    col = np.searchsorted(clusters, labels[keep])
    member = sp.csr_matrix((np.ones(keep.sum(), np.float32), (col, np.flatnonzero(keep))),
                           shape=(len(clusters), counts.shape[0]))
    tf = (member @ counts).tocsr()  # (n_clusters, n_words)
    words_per_cluster = np.asarray(tf.sum(axis=1)).ravel()
    freq = np.asarray(tf.sum(axis=0)).ravel()
    mean_words = words_per_cluster.mean()
    idf = np.log1p(mean_words / np.maximum(freq, 1e-12))
    weights = sp.diags(1.0 / np.maximum(words_per_cluster, 1e-12)) @ tf @ sp.diags(idf)
    weights = weights.tocsr()
    for i, c in enumerate(clusters):
        row = weights.getrow(i)
        if row.nnz == 0:
            continue
        top = row.indices[np.lexsort((row.indices, -row.data))[:n_keywords]]
        names[int(c)] = ", ".join(vocab[top])
    return names


def value_names(values, labels: np.ndarray, *, n_values: int = 2) -> list[dict[int, str]]:
    """Name clusters by the most frequent values of a metadata column.

    Parameters
    ----------
    values : sequence of length n_samples
        The column. Categories, strings or numbers; missing values are skipped.
    labels : ndarray of shape (n_samples,) or (n_levels, n_samples), dtype int
        Cluster labels; -1 is the unclustered group.
    n_values : int, default=2
        Values per name for categories, e.g. ``"7 (91%), 1 (5%)"``. A number column
        with more than 20 distinct values is named by its interquartile range.

    Returns
    -------
    list of dict
        Per level, ``{cluster: name}`` for every label present.

    Raises
    ------
    InvalidInputError
        If ``values`` and ``labels`` differ in length.
    """
    levels = np.atleast_2d(np.asarray(labels))
    s = pd.Series(values).reset_index(drop=True)
    if len(s) != levels.shape[1]:
        raise InvalidInputError(
            f"{len(s):,} values for {levels.shape[1]:,} labelled points; they must match.")
    numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) \
        and s.nunique() > _NUMERIC_DISTINCT
    out = []
    for lab in levels:
        names = {}
        frame = pd.DataFrame({"c": lab, "v": s})
        for c, grp in frame.groupby("c", sort=True)["v"]:
            c = int(c)
            grp = grp.dropna()
            if c == UNCLUSTERED or grp.empty:
                names[c] = _fallback(c)
            elif numeric:
                q1, q3 = grp.quantile([0.25, 0.75])
                names[c] = f"{q1:.3g} to {q3:.3g}"
            else:
                top = grp.astype(str).value_counts(normalize=True).head(n_values)
                names[c] = ", ".join(f"{v} ({p:.0%})" for v, p in top.items())
        out.append(names)
    return out


def names_frame(levels_labels: np.ndarray, names: list[dict[int, str]]) -> pd.DataFrame:
    """One table of every level's clusters: level, cluster, name, n_rows, share.

    Parameters
    ----------
    levels_labels : ndarray of shape (n_levels, n_samples), dtype int
    names : list of dict
        Per level ``{cluster: name}`` (from :func:`keyword_names` or :func:`value_names`).

    Returns
    -------
    DataFrame
        Columns ``level`` (int32), ``cluster`` (int32, -1 = Unclustered), ``name`` (str),
        ``n_rows`` (int64) and ``share`` (float64, of all points); clusters by id,
        the unclustered group last.
    """
    rows = []
    n = levels_labels.shape[1]
    for level, (lab, nm) in enumerate(zip(levels_labels, names)):
        ids, counts = np.unique(lab, return_counts=True)
        for c, k in sorted(zip(ids.tolist(), counts.tolist()), key=lambda ck: (ck[0] < 0, ck[0])):
            rows.append((level, c, nm.get(c) or _fallback(c), k, k / n))
    df = pd.DataFrame(rows, columns=["level", "cluster", "name", "n_rows", "share"])
    return df.astype({"level": "int32", "cluster": "int32", "n_rows": "int64"})
