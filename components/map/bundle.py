"""The map's built frontend and the hash of the sources it was built from (no Node needed)."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["FRONTEND", "BUNDLE", "bundle_js", "recorded_sources_hash", "sources_hash"]

FRONTEND = Path(__file__).resolve().parent / "frontend"
BUNDLE = FRONTEND / "dist" / "index.js"
_RECORD = FRONTEND / "dist" / "SOURCES.sha256"


def sources_hash(root: Path = FRONTEND) -> str:
    """sha256 over ``path NUL bytes NUL`` of each source file in sorted POSIX-path order.

    The files: package.json, package-lock.json, build.mjs and everything under src/. The
    same recipe as ``sourcesHash`` in frontend/build.mjs, which records it at build time.
    """
    files = ["package.json", "package-lock.json", "build.mjs"]
    files += [p.relative_to(root).as_posix() for p in (root / "src").rglob("*") if p.is_file()]
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(f.encode() + b"\0")
        h.update((root / f).read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def recorded_sources_hash() -> str:
    """The hash ``make frontend`` wrote beside the bundle."""
    return _RECORD.read_text().strip()


def bundle_js() -> str:
    """The built ES module (``make frontend`` rebuilds it)."""
    return BUNDLE.read_text(encoding="utf-8")
