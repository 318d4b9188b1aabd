"""What the pages' WebGL maps get from app/map_points.py: hover text, cluster name layer."""

import numpy as np
import pandas as pd

from app import map_points


class _Client:
    """The three client calls the name layer makes, on a hand-made projection."""

    def __init__(self, labels):
        # rows listed out of order: centres must follow row ids, not positions
        self.proj = pd.DataFrame({"_row": [3, 0, 2, 1, 4], "x": [10.0, 0.0, 2.0, 1.0, 11.0],
                                  "y": [5.0, 0.0, 0.0, 0.0, 7.0]})
        self.labels = np.asarray(labels, dtype=np.int32)

    def artifact_table(self, art_id, name):
        return self.proj

    def cluster_labels(self, clu, level):
        return self.labels

    def cluster_names(self, clu, level):
        return pd.DataFrame({"cluster": [0, 1, -1], "name": ["small", "big", "Unclustered"],
                             "n_rows": [2, 3, 0]})


def test_cluster_labels_at_median_positions_largest_first():
    client = _Client([1, 1, 1, 0, 0])  # by row id: rows 0-2 in cluster 1, rows 3-4 in cluster 0
    assert map_points.cluster_labels(client, "proj-a", ("clu-a", 0)) == [
        [1.0, 0.0, "big", 3], [10.5, 6.0, "small", 2]]


def test_cluster_labels_empty_when_the_clustering_misses_rows():
    assert map_points.cluster_labels(_Client([0, 0, 1]), "proj-b", ("clu-b", 0)) == []


def test_describe_row_cuts_long_values_and_skips_unknown_rows_and_columns():
    table = pd.DataFrame({"_row": [7, 9], "name": ["a" * 100, "b"], "n": [1, 2]})
    index = pd.Index(table["_row"])
    assert map_points.describe_row(table, index, 9, ["name", "n", "absent"]) == "name: b · n: 2"
    assert map_points.describe_row(table, index, 7, ["name"]) == "name: " + "a" * 80
    assert map_points.describe_row(table, index, 8, ["name"]) == ""
    assert map_points.describe_row(table, index, 9, []) == ""
