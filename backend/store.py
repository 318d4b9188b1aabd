"""The workspace on disk: datasets, artifacts and the job catalogue.

Layout of a workspace folder (``LATENT_LENS_HOME`` or the user's cache dir)::

    catalog.sqlite3              SQLite (WAL) catalogue of datasets, artifacts, jobs
    datasets/<dataset_id>/       table.parquet (metadata, one row per point, column ``_row``)
                                 vectors.npy   (float32, n_rows x n_dims, memory-mapped)
                                 info.json     (DatasetInfo)
    artifacts/<artifact_id>/     the job's files (.npy, .parquet, .json) + meta.json sidecar

Every file and folder is written under a temporary name and moved into place with
``os.replace``, so a reader never sees a partial dataset or artifact, and a crash
never damages what is already stored. Ids are content hashes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backend.dataset_kinds import check_dataset_kind
from backend.errors import InvalidInputError, NotFoundError

__all__ = ["DatasetInfo", "ArtifactInfo", "Store", "default_home", "content_hash", "valid_id"]

ROW = "_row"
_ID_CHARS = set("0123456789abcdef")
_ID_LEN = 16


def default_home() -> Path:
    """The workspace folder: ``$LATENT_LENS_HOME``, else the user's cache dir."""
    env = os.environ.get("LATENT_LENS_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("latent-lens"))


def content_hash(*parts: bytes | str) -> str:
    """A 16-hex-digit SHA-256 prefix of the parts (lengths included, so parts cannot alias)."""
    h = hashlib.sha256()
    for p in parts:
        b = p.encode() if isinstance(p, str) else p
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()[:_ID_LEN]


def valid_id(value: str) -> bool:
    """True when ``value`` has the form of a store id (16 lowercase hex digits)."""
    return isinstance(value, str) and len(value) == _ID_LEN and set(value) <= _ID_CHARS


@dataclass(frozen=True)
class DatasetInfo:
    """What the catalogue knows of a dataset.

    ``kind`` is ``"vectors"`` for an embedding matrix with metadata; ``extra`` holds
    kind-specific facts (e.g. ``image_shape`` for digits, the source package).
    """

    id: str
    name: str
    source: str
    n_rows: int
    n_dims: int
    columns: list[str]
    created: float
    kind: str = "vectors"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DatasetInfo":
        return cls(**d)


@dataclass(frozen=True)
class ArtifactInfo:
    """A finished job's output folder and its sidecar."""

    id: str
    dataset_id: str
    kind: str
    files: list[str]
    meta: dict[str, Any]
    created: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ArtifactInfo":
        return cls(**d)

    # The job runner's own sidecar keys (every artifact has them), typed.
    @property
    def params(self) -> dict[str, Any]:
        """The job's resolved parameters."""
        return dict(self.meta.get("params", {}))

    @property
    def seconds(self) -> float:
        """Wall time of the job."""
        return float(self.meta.get("seconds", 0.0))

    @property
    def device(self) -> str:
        """The torch device it ran on, and why (``device_reason``)."""
        return str(self.meta.get("device", ""))

    @property
    def device_reason(self) -> str:
        return str(self.meta.get("device_reason", ""))


_SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    id TEXT PRIMARY KEY, info TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS artifacts (
    id TEXT PRIMARY KEY, dataset_id TEXT NOT NULL, kind TEXT NOT NULL,
    info TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, dataset_id TEXT NOT NULL, kind TEXT NOT NULL,
    params TEXT NOT NULL, state TEXT NOT NULL, progress REAL NOT NULL,
    message TEXT NOT NULL, error TEXT, artifact_id TEXT,
    created REAL NOT NULL, updated REAL NOT NULL, owner TEXT);
"""


class Store:
    """A workspace folder with its SQLite catalogue.

    Parameters
    ----------
    root : path-like, optional
        The workspace folder; default :func:`default_home`. Created if missing.

    Notes
    -----
    Safe to share between threads of one process (one connection per thread)
    and between processes (SQLite WAL mode, atomic renames).
    """

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_home()
        for sub in ("datasets", "artifacts", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._owner_locks: dict[str, Any] = {}
        conn = self._conn()
        conn.executescript(_SCHEMA)
        cols = {r[1] for r in conn.execute("PRAGMA table_info(jobs)")}
        if "owner" not in cols:  # a workspace of an earlier version
            conn.execute("ALTER TABLE jobs ADD COLUMN owner TEXT")

    # -- catalogue -----------------------------------------------------------------
    def _db(self) -> "_Tx":
        return _Tx(self._conn())

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.root / "catalog.sqlite3", timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def _tmpdir(self) -> Path:
        p = self.root / "tmp" / uuid.uuid4().hex
        p.mkdir(parents=True)
        return p

    # -- datasets ------------------------------------------------------------------
    def add_dataset(
        self,
        table: pd.DataFrame,
        vectors: np.ndarray,
        *,
        name: str,
        source: str,
        kind: str = "vectors",
        extra: dict[str, Any] | None = None,
        files: dict[str, bytes | os.PathLike] | None = None,
    ) -> DatasetInfo:
        """Store a validated dataset; return its info (the existing one if already stored).

        The id is a hash of the content, the name and ``extra``: the same numbers stored
        under another name (or with other column names) are a new entry whose vectors
        file is a hard link to the stored one.

        Parameters
        ----------
        table : DataFrame of shape (n_rows, n_columns)
            Metadata, one row per point. A column ``_row`` (0..n_rows-1) is added.
        vectors : ndarray of shape (n_rows, n_dims)
            The vectors; stored as float32.
        name, source : str
            Shown to the user; ``source`` says where the data came from.
        kind : str, default="vectors"
            ``"vectors"`` for an embedding matrix; other kinds (``"graph"``, ``"model"``,
            ``"text"``) keep their own data in ``files`` and may have zero-width vectors.
        files : dict of name -> bytes or path, optional
            Extra files stored with the dataset (part of its content hash); read them
            back with :meth:`dataset_file`. Names are plain file names.

        Raises
        ------
        InvalidInputError
            If the table and vectors disagree in length.
        """
        check_dataset_kind(kind)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(table) != vectors.shape[0]:
            raise InvalidInputError(
                f"the table has {len(table)} rows but the vectors have shape {vectors.shape}; "
                "they must have one row per point."
            )
        table = table.reset_index(drop=True).copy()
        table[ROW] = np.arange(len(table), dtype=np.int64)
        tmp = self._tmpdir()
        try:
            table.to_parquet(tmp / "table.parquet", index=False)
            np.save(tmp / "vectors.npy", vectors)
            vectors_sha = _file_sha(tmp / "vectors.npy")
            # the name and the extra (column names, notes) are part of the identity: the same
            # numbers under a new name are a new entry, which shares the stored vectors file
            hashes = [kind, vectors_sha, _file_sha(tmp / "table.parquet"), name,
                      json.dumps(extra or {}, sort_keys=True, default=_json_default)]
            for fname, content in sorted((files or {}).items()):
                if not _plain_name(fname) or fname in _RESERVED:
                    raise InvalidInputError(f"{fname!r} is not an allowed dataset file name.")
                (tmp / "files").mkdir(exist_ok=True)
                if isinstance(content, (bytes, bytearray)):
                    (tmp / "files" / fname).write_bytes(content)
                else:
                    shutil.copyfile(content, tmp / "files" / fname)
                hashes += [fname, _file_sha(tmp / "files" / fname)]
            ds_id = content_hash(*hashes)
            existing = self._dataset_or_none(ds_id)
            if existing is not None:
                return existing
            self._share_vectors(tmp / "vectors.npy", vectors_sha)
            info = DatasetInfo(
                id=ds_id,
                name=name,
                source=source,
                n_rows=int(vectors.shape[0]),
                n_dims=int(vectors.shape[1]),
                columns=[c for c in table.columns if c != ROW],
                created=time.time(),
                kind=kind,
                extra=dict(extra or {}),
            )
            _write_json(tmp / "info.json", info.to_dict())
            final = self.root / "datasets" / ds_id
            if final.exists():  # a folder without catalogue row: a crash between the two steps
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        with self._db() as db:
            db.execute(
                "INSERT OR IGNORE INTO datasets (id, info, created) VALUES (?, ?, ?)",
                (ds_id, json.dumps(info.to_dict()), info.created),
            )
        return info

    def _share_vectors(self, path: Path, sha: str) -> None:
        """Hard-link equal vectors files to one copy under ``vectors/`` (where links work)."""
        blob = self.root / "vectors" / f"{sha}.npy"
        try:
            blob.parent.mkdir(exist_ok=True)
            if blob.exists():
                link = path.with_name(path.name + ".shared")
                os.link(blob, link)
                os.replace(link, path)
            else:
                os.link(path, blob)
        except OSError:  # a file system without hard links keeps its own copy
            pass

    def _dataset_or_none(self, dataset_id: str) -> DatasetInfo | None:
        with self._db() as db:
            row = db.execute("SELECT info FROM datasets WHERE id = ?", (dataset_id,)).fetchone()
        return DatasetInfo.from_dict(json.loads(row[0])) if row else None

    def dataset(self, dataset_id: str) -> DatasetInfo:
        """The info of a stored dataset. Raises NotFoundError if unknown."""
        if not valid_id(dataset_id):
            raise NotFoundError(f"{dataset_id!r} is not a dataset id (16 hex digits).")
        info = self._dataset_or_none(dataset_id)
        if info is None:
            raise NotFoundError(f"no dataset with id {dataset_id} in {self.root}.")
        return info

    def datasets(self) -> list[DatasetInfo]:
        """Every stored dataset, oldest first."""
        with self._db() as db:
            rows = db.execute("SELECT info FROM datasets ORDER BY created").fetchall()
        return [DatasetInfo.from_dict(json.loads(r[0])) for r in rows]

    def table(self, dataset_id: str, columns: list[str] | None = None) -> pd.DataFrame:
        """The metadata table of a dataset (with ``_row``)."""
        self.dataset(dataset_id)
        cols = None if columns is None else list(dict.fromkeys([ROW, *columns]))
        return pd.read_parquet(self.root / "datasets" / dataset_id / "table.parquet", columns=cols)

    def vectors(self, dataset_id: str) -> np.ndarray:
        """The vectors of a dataset, memory-mapped read-only, float32 (n_rows, n_dims)."""
        self.dataset(dataset_id)
        return np.load(self.root / "datasets" / dataset_id / "vectors.npy", mmap_mode="r")

    def dataset_file(self, dataset_id: str, name: str) -> Path:
        """Path of an extra file stored with a dataset. Raises NotFoundError if absent."""
        self.dataset(dataset_id)
        path = self.root / "datasets" / dataset_id / "files" / name
        if not _plain_name(name) or not path.is_file():
            raise NotFoundError(f"dataset {dataset_id} has no file {name!r}.")
        return path

    def delete_dataset(self, dataset_id: str) -> None:
        """Remove a dataset and its artifacts."""
        self.dataset(dataset_id)
        with self._db() as db:
            arts = db.execute(
                "SELECT id FROM artifacts WHERE dataset_id = ?", (dataset_id,)
            ).fetchall()
            db.execute("DELETE FROM artifacts WHERE dataset_id = ?", (dataset_id,))
            db.execute("DELETE FROM jobs WHERE dataset_id = ?", (dataset_id,))
            db.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,))
        for (aid,) in arts:
            shutil.rmtree(self.root / "artifacts" / aid, ignore_errors=True)
        shutil.rmtree(self.root / "datasets" / dataset_id, ignore_errors=True)
        for blob in (self.root / "vectors").glob("*.npy"):  # vectors no dataset links to
            if blob.stat().st_nlink == 1:
                blob.unlink(missing_ok=True)

    # -- artifacts -----------------------------------------------------------------
    def new_artifact_dir(self) -> Path:
        """A private temporary folder for a job to write its files into."""
        return self._tmpdir()

    def commit_artifact(
        self, artifact_id: str, dataset_id: str, kind: str, tmp: Path, meta: dict[str, Any]
    ) -> ArtifactInfo:
        """Move a job's finished folder into place and list it in the catalogue."""
        _write_json(tmp / "meta.json", meta)
        files = sorted(p.name for p in tmp.iterdir())
        final = self.root / "artifacts" / artifact_id
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        info = ArtifactInfo(artifact_id, dataset_id, kind, files, meta, time.time())
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO artifacts (id, dataset_id, kind, info, created) "
                "VALUES (?, ?, ?, ?, ?)",
                (artifact_id, dataset_id, kind, json.dumps(info.to_dict()), info.created),
            )
        return info

    def artifact_or_none(self, artifact_id: str) -> ArtifactInfo | None:
        with self._db() as db:
            row = db.execute("SELECT info FROM artifacts WHERE id = ?", (artifact_id,)).fetchone()
        if row is None or not (self.root / "artifacts" / artifact_id).is_dir():
            return None
        return ArtifactInfo.from_dict(json.loads(row[0]))

    def artifact(self, artifact_id: str) -> ArtifactInfo:
        """The info of a stored artifact. Raises NotFoundError if unknown."""
        if not valid_id(artifact_id):
            raise NotFoundError(f"{artifact_id!r} is not an artifact id (16 hex digits).")
        info = self.artifact_or_none(artifact_id)
        if info is None:
            raise NotFoundError(f"no artifact with id {artifact_id} in {self.root}.")
        return info

    def artifacts(self, dataset_id: str | None = None) -> list[ArtifactInfo]:
        """Stored artifacts, newest first, optionally of one dataset."""
        q = "SELECT info FROM artifacts"
        args: tuple = ()
        if dataset_id is not None:
            q += " WHERE dataset_id = ?"
            args = (dataset_id,)
        with self._db() as db:
            rows = db.execute(q + " ORDER BY created DESC", args).fetchall()
        return [ArtifactInfo.from_dict(json.loads(r[0])) for r in rows]

    def artifact_path(self, artifact_id: str, name: str) -> Path:
        """Path of one file of an artifact. Raises NotFoundError if absent."""
        info = self.artifact(artifact_id)
        if name not in info.files:
            raise NotFoundError(f"artifact {artifact_id} has no file {name!r}; it has {info.files}.")
        return self.root / "artifacts" / artifact_id / name

    # -- jobs ----------------------------------------------------------------------
    def job_row(self, job_id: str) -> dict[str, Any] | None:
        with self._db() as db:
            cur = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,))
            row = cur.fetchone()
            names = [d[0] for d in cur.description]
        return dict(zip(names, row)) if row else None

    def upsert_job(self, job_id: str, **fields: Any) -> None:
        now = time.time()
        with self._db() as db:
            if db.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone() is None:
                row = {
                    "id": job_id, "dataset_id": "", "kind": "", "params": "{}", "state": "queued",
                    "progress": 0.0, "message": "", "error": None, "artifact_id": None,
                    "created": now, "updated": now,
                }
                row.update(fields)
                db.execute(
                    f"INSERT INTO jobs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                    tuple(row.values()),
                )
            else:
                fields["updated"] = now
                sets = ", ".join(f"{k} = ?" for k in fields)
                db.execute(f"UPDATE jobs SET {sets} WHERE id = ?", (*fields.values(), job_id))

    def jobs(self, dataset_id: str | None = None) -> list[dict[str, Any]]:
        q = "SELECT * FROM jobs"
        args: tuple = ()
        if dataset_id is not None:
            q += " WHERE dataset_id = ?"
            args = (dataset_id,)
        with self._db() as db:
            cur = db.execute(q + " ORDER BY created DESC", args)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]

    # -- job owners ----------------------------------------------------------------
    def claim_owner(self) -> str:
        """A new owner token for a job runner of this process, held until released.

        The token is ``host:pid:random``; the runner holds an exclusive lock on
        ``owners/<token>.lock`` (``fcntl.flock``) for its lifetime, so any process on this
        host can tell whether the owner still runs, whatever pids the system reuses.
        """
        import fcntl
        import socket

        token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        (self.root / "owners").mkdir(exist_ok=True)
        f = open(self._owner_file(token), "w")
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._owner_locks[token] = f
        return token

    def release_owner(self, token: str) -> None:
        """Give up an owner token (its jobs count as orphaned from now on)."""
        f = self._owner_locks.pop(token, None)
        if f is not None:
            f.close()
            self._owner_file(token).unlink(missing_ok=True)

    def _owner_file(self, token: str) -> Path:
        return self.root / "owners" / (content_hash(token) + ".lock")

    def owner_alive(self, token: str | None) -> bool:
        """Whether the job runner holding ``token`` still runs (a process on this host)."""
        import fcntl
        import socket

        if not token:
            return False
        if token in self._owner_locks:
            return True
        if token.split(":", 1)[0] != socket.gethostname():
            return True  # another host's process: it cannot be checked from here
        path = self._owner_file(token)
        if not path.exists():
            return False
        with open(path, "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return True  # the owner holds it
            fcntl.flock(f, fcntl.LOCK_UN)
        return False

    def reconcile_jobs(self) -> int:
        """Mark queued or running jobs whose owner is gone as interrupted; return how many.

        Jobs of a live owner (another process on the same workspace) are left alone.
        """
        with self._db() as db:
            rows = db.execute(
                "SELECT id, owner FROM jobs WHERE state IN ('queued', 'running')").fetchall()
        gone = [job_id for job_id, owner in rows if not self.owner_alive(owner)]
        now = time.time()
        with self._db() as db:
            for job_id in gone:
                db.execute(
                    "UPDATE jobs SET state = 'interrupted', message = 'interrupted: its process "
                    "stopped; submit it again', updated = ? WHERE id = ? "
                    "AND state IN ('queued', 'running')", (now, job_id))
        for token in {owner for _, owner in rows if owner and not self.owner_alive(owner)}:
            self._owner_file(token).unlink(missing_ok=True)
        return len(gone)


class _Tx:
    """``with store._db() as db:`` runs the block in one immediate transaction."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


_RESERVED = {"table.parquet", "vectors.npy", "info.json"}


def _plain_name(name: str) -> bool:
    return (isinstance(name, str) and 0 < len(name) <= 200 and name not in (".", "..")
            and "/" not in name and "\\" not in name and "\x00" not in name)


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + f".tmp-{uuid.uuid4().hex}")
    tmp.write_text(json.dumps(obj, indent=2, default=_json_default))
    os.replace(tmp, path)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")
