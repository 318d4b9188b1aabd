"""The bundled text dataset: the English ChatterBot dialogue corpus.

Source: the PyPI package ``chatterbot-corpus`` (Gunther Cox and contributors,
github.com/gunthercox/chatterbot-corpus), which carries its YAML files in the
wheel, so loading needs no network. Licence: BSD 3-Clause ("Copyright (c)
2017, Gunther Cox. All rights reserved."; ``license.md`` of the source
distribution). The texts are user-contributed chatbot training dialogues,
one YAML file per topic.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from importlib import resources
from importlib.metadata import version

import pandas as pd

from backend.errors import InvalidParameterError

__all__ = ["load_text_dataset", "text_dataset_info", "TextDatasetInfo"]

_PACKAGE = "chatterbot-corpus"


@dataclass(frozen=True)
class TextDatasetInfo:
    """Where the bundled text dataset comes from and how to use it."""

    name: str
    source: str
    package: str
    licence: str
    text_column: str
    category_column: str
    description: str

    def to_dict(self) -> dict:
        return asdict(self)


def text_dataset_info() -> TextDatasetInfo:
    """Source, licence and column roles of :func:`load_text_dataset`'s table."""
    return TextDatasetInfo(
        name="ChatterBot English dialogue corpus",
        source="https://github.com/gunthercox/chatterbot-corpus",
        package=f"{_PACKAGE}=={version(_PACKAGE)}",
        licence="BSD-3-Clause (Copyright (c) 2017, Gunther Cox)",
        text_column="text",
        category_column="category",
        description=(
            "Prompts and replies of user-contributed chatbot training dialogues, "
            "one row per distinct statement within a topic."
        ),
    )


def load_text_dataset(language: str = "english") -> pd.DataFrame:
    """Load the ChatterBot dialogue corpus bundled in the ``chatterbot-corpus`` package.

    Each YAML file of the corpus is one topic (``category``) holding
    conversations, lists of statements where a prompt is followed by its
    replies. Every statement becomes a row; a statement repeated within a
    topic is kept once (its first occurrence), since identical texts would
    stack on one point of a map. Values are read as strings (YAML's
    ``BaseLoader``), so answers such as "yes" or "1984" stay text.

    Parameters
    ----------
    language : str, default="english"
        Folder of the corpus to read (e.g. "english", "spanish", "german").
        The sentence model of this project is English-only.

    Returns
    -------
    pandas.DataFrame
        For "english" (chatterbot-corpus 1.3.3): 1,909 rows and the columns

        - ``text`` (str): the statement;
        - ``category`` (categorical): topic, 21 of them ("trivia", "emotion", ...);
        - ``role`` (categorical): "prompt" for a conversation's first
          statement, else "reply";
        - ``conversation`` (int64): running number of the conversation in
          the corpus, in file order;
        - ``turn`` (int64): position of the statement in its conversation (0 = prompt);
        - ``n_words`` (int64): number of whitespace-separated words.

    Raises
    ------
    InvalidParameterError
        If ``language`` is not a folder of the corpus (the message lists them).
    ImportError
        If ``chatterbot-corpus`` is not installed.

    References
    ----------
    github.com/gunthercox/chatterbot-corpus (BSD-3-Clause).

    Examples
    --------
    >>> df = load_text_dataset()
    >>> df.columns.tolist()
    ['text', 'category', 'role', 'conversation', 'turn', 'n_words']
    """
    import yaml

    root = _data_root()
    languages = sorted(p.name for p in root.iterdir() if p.is_dir())
    if language not in languages:
        raise InvalidParameterError(
            f"language must be one of the corpus folders {languages}; got {language!r}."
        )
    rows: list[tuple[str, str, str, int, int]] = []
    seen: set[tuple[str, str]] = set()
    conversation = 0
    for path in sorted((root / language).iterdir(), key=lambda p: p.name):
        if not path.name.endswith(".yml"):
            continue
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
        category = document["categories"][0]
        for statements in document.get("conversations", []):
            for turn, statement in enumerate(statements):
                text = statement.strip() if isinstance(statement, str) else ""
                if text and (category, text) not in seen:
                    seen.add((category, text))
                    rows.append((text, category, "prompt" if turn == 0 else "reply", conversation, turn))
            conversation += 1
    frame = pd.DataFrame(rows, columns=["text", "category", "role", "conversation", "turn"])
    frame["category"] = frame["category"].astype("category")
    frame["role"] = pd.Categorical(frame["role"], categories=["prompt", "reply"])
    frame["conversation"] = frame["conversation"].astype("int64")
    frame["turn"] = frame["turn"].astype("int64")
    frame["n_words"] = frame["text"].str.split().str.len().astype("int64")
    return frame


def _data_root():
    try:
        import chatterbot_corpus  # noqa: F401  (a data-only package; nothing else is imported)
    except ImportError:
        raise ImportError(
            f"The bundled text dataset needs the package {_PACKAGE!r}; "
            f"install it with `pip install {_PACKAGE}`."
        ) from None
    return resources.files("chatterbot_corpus") / "data"
