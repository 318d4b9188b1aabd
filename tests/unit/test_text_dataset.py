"""Tests of backend.datasets.text: the ChatterBot corpus bundled in chatterbot-corpus."""

from __future__ import annotations

import json

import pytest

from backend.datasets import text as text_module
from backend.datasets.text import load_text_dataset, text_dataset_info
from backend.errors import InvalidParameterError


@pytest.fixture(scope="module")
def frame():
    return load_text_dataset()


def test_shape_columns_and_dtypes(frame):
    assert frame.shape == (1909, 6)
    assert frame.columns.tolist() == ["text", "category", "role", "conversation", "turn", "n_words"]
    assert str(frame["category"].dtype) == "category" and str(frame["role"].dtype) == "category"
    assert all(str(frame[c].dtype) == "int64" for c in ["conversation", "turn", "n_words"])


def test_categories_and_roles(frame):
    counts = frame["category"].value_counts()
    assert len(counts) == 21
    assert counts["trivia"] == 536 and counts["tech support"] == 20 and counts["health"] == 9
    assert set(frame["role"]) == {"prompt", "reply"}
    assert ((frame["turn"] == 0) == (frame["role"] == "prompt")).all()


def test_texts_are_stripped_non_empty_and_unique_within_a_topic(frame):
    assert frame["text"].map(lambda t: isinstance(t, str) and t == t.strip() and len(t) > 0).all()
    assert not frame.duplicated(["category", "text"]).any()
    assert (frame["n_words"] == frame["text"].str.split().str.len()).all()


def test_rows_built_from_a_hand_made_corpus(tmp_path, monkeypatch):
    folder = tmp_path / "english"
    folder.mkdir()
    (folder / "quiz.yml").write_text(
        "categories:\n- quiz\nconversations:\n"
        "- - Is water wet?\n  - yes\n  - '  yes  '\n"
        "- - Orwell's novel?\n  - 1984\n"
        "- - Is water wet?\n  - 'no'\n",
        encoding="utf-8",
    )
    (folder / "notes.txt").write_text("not a corpus file", encoding="utf-8")
    monkeypatch.setattr(text_module, "_data_root", lambda: tmp_path)
    frame = load_text_dataset("english")
    # YAML 1.1 would read yes/no as booleans and 1984 as an int; they stay text,
    # and a statement repeated within the topic is kept once (first occurrence).
    assert frame["text"].tolist() == ["Is water wet?", "yes", "Orwell's novel?", "1984", "no"]
    assert frame["role"].tolist() == ["prompt", "reply", "prompt", "reply", "reply"]
    assert frame["conversation"].tolist() == [0, 0, 1, 1, 2]
    assert frame["turn"].tolist() == [0, 1, 0, 1, 1]
    assert frame["category"].tolist() == ["quiz"] * 5


def test_info_names_source_and_licence():
    info = text_dataset_info()
    assert info.licence.startswith("BSD-3-Clause")
    assert info.package.startswith("chatterbot-corpus==")
    assert json.loads(json.dumps(info.to_dict()))["text_column"] == "text"


def test_other_language_folder_loads():
    spanish = load_text_dataset("spanish")
    assert len(spanish) > 100 and spanish["category"].nunique() > 5


def test_unknown_language_lists_the_folders():
    with pytest.raises(InvalidParameterError, match=r"language must be one of the corpus folders \[.*'english'.*\]; got 'klingon'"):
        load_text_dataset("klingon")
