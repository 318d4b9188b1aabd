"""User edits of cluster names, kept beside the clustering they rename.

Why a small JSON store and not a job: a clustering artifact is immutable and
content-addressed (its id is a hash of the computation), so a renamed cluster
must not change the artifact, nor its id in shared links; and a rename is a few
bytes of user state, not computation, so a job per keystroke would only queue
work. One file per clustering, ``<workspace>/cluster_names/<artifact id>.json``,
holds ``{"levels": {"<level>": {"<cluster>": "<name>"}}}``; it is rewritten
atomically (temporary file + ``os.replace``), so a reader sees the old or the
new file, never a partial one. Writers in one process are serialised by a lock;
two processes renaming the same clustering at once keep the last write.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from backend.errors import InvalidParameterError, NotFoundError
from backend.store import _write_json, valid_id

__all__ = ["NameEdits"]

_LOCK = threading.Lock()
_MAX_NAME = 200


class NameEdits:
    """Edited cluster names of the clusterings of a workspace.

    Parameters
    ----------
    root : path-like
        The workspace folder (``Store.root``).
    """

    def __init__(self, root: str | os.PathLike):
        self.dir = Path(root) / "cluster_names"

    def _path(self, artifact_id: str) -> Path:
        if not valid_id(artifact_id):
            raise NotFoundError(f"{artifact_id!r} is not an artifact id (16 hex digits).")
        return self.dir / f"{artifact_id}.json"

    def _read(self, artifact_id: str) -> dict:
        path = self._path(artifact_id)
        if not path.is_file():
            return {"levels": {}}
        return json.loads(path.read_text(encoding="utf-8"))

    def get(self, artifact_id: str, level: int) -> dict[int, str]:
        """Edited names of one level, ``{cluster: name}`` (empty when none were edited)."""
        return {int(c): n for c, n in self._read(artifact_id)["levels"].get(str(level), {}).items()}

    def set(self, artifact_id: str, level: int, edits: dict[int, str]) -> dict[int, str]:
        """Store edited names of one level (merged over earlier edits); an empty name reverts.

        Parameters
        ----------
        artifact_id : str
            The clustering artifact.
        level : int
            Its level.
        edits : dict of int -> str
            New names; leading/trailing spaces are removed; ``""`` restores the computed name.

        Returns
        -------
        dict of int -> str
            All edited names of the level after the change.

        Raises
        ------
        InvalidParameterError
            If a name is longer than 200 characters or not a string.
        """
        for c, name in edits.items():
            if not isinstance(name, str) or len(name) > _MAX_NAME:
                raise InvalidParameterError(
                    f"the name of cluster {c} must be text of at most {_MAX_NAME} characters; "
                    f"got {name!r:.60}.")
        with _LOCK:
            doc = self._read(artifact_id)
            level_names = doc["levels"].setdefault(str(level), {})
            for c, name in edits.items():
                if name.strip():
                    level_names[str(int(c))] = name.strip()
                else:
                    level_names.pop(str(int(c)), None)
            self.dir.mkdir(parents=True, exist_ok=True)
            _write_json(self._path(artifact_id), doc)
        return {int(c): n for c, n in level_names.items()}
