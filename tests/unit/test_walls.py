"""The walls of ../shared/DESIGN.md, checked on the source: pages reach computation only
through the backend client, and the backend knows no screen."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE_MAY_IMPORT = {"backend.client", "backend.errors", "backend.kinds"}


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_pages_and_components_import_no_backend_internals():
    bad = {}
    for folder in ("app", "components"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            internal = {m for m in _imports(path)
                        if (m == "backend" or m.startswith("backend.")) and m not in PAGE_MAY_IMPORT}
            if internal:
                bad[str(path.relative_to(ROOT))] = sorted(internal)
    assert bad == {}


def test_the_backend_knows_no_screen():
    bad = {}
    for path in sorted((ROOT / "backend").rglob("*.py")):
        screen = {m for m in _imports(path)
                  if m.split(".")[0] in ("streamlit", "app", "components", "plotly", "pydeck")}
        if screen:
            bad[str(path.relative_to(ROOT))] = sorted(screen)
    assert bad == {}
