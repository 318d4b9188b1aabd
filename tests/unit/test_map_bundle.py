"""The committed map bundle was built from the committed sources (`make frontend` rebuilds it)."""

from components.map.bundle import BUNDLE, FRONTEND, recorded_sources_hash, sources_hash


def test_bundle_built_from_committed_sources():
    assert BUNDLE.is_file() and BUNDLE.stat().st_size > 50_000
    assert recorded_sources_hash() == sources_hash(), (
        "components/map/frontend/dist is stale: run `make frontend` and commit dist/")


def test_hash_sees_a_source_change(tmp_path):
    import shutil
    root = tmp_path / "fe"
    for name in ("package.json", "package-lock.json", "build.mjs"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FRONTEND / name, root / name)
    shutil.copytree(FRONTEND / "src", root / "src")
    assert sources_hash(root) == sources_hash()
    (root / "src" / "index.js").write_text((root / "src" / "index.js").read_text() + "\n// edit\n")
    assert sources_hash(root) != sources_hash()
