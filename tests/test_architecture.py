"""Data flows one way (docs/architecture.md): read each module's imports with ast and check the rules."""

import ast
from pathlib import Path

import glioseg

PACKAGE = Path(glioseg.__file__).parent


def glioseg_imports(module: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return {name.split(".")[1] for name in names if name.startswith("glioseg.")}


MODULES = {path.stem: glioseg_imports(path) for path in PACKAGE.glob("*.py")}


def test_leaf_modules_import_no_other_glioseg_module():
    for leaf in ("labels", "config", "errors"):
        assert MODULES.get(leaf, set()) == set(), leaf


def test_metrics_imports_only_the_leaves():
    """Metrics are pure: label maps in, numbers out (defaults such as the NSD tolerance come from config)."""
    assert MODULES.get("metrics", set()) <= {"labels", "config"}


def test_nothing_imports_the_cli():
    assert [name for name, imports in MODULES.items() if "cli" in imports and name != "__main__"] == []


def reachable(start: str, seen: set[str]) -> set[str]:
    """Every glioseg module ``start`` imports, directly or through others."""
    for name in MODULES.get(start, ()):
        if name not in seen and name != "__init__":
            seen.add(name)
            reachable(name, seen)
    return seen


def test_no_import_cycles():
    for name in MODULES:
        assert name not in reachable(name, set()), f"{name} imports itself through others"


def test_prediction_never_imports_the_training_loop():
    """Checkpoints and devices live in small modules both use (runs, devices), so predicting loads no trainer."""
    for name in ("predict", "inference", "postprocess", "evaluate", "report"):
        assert "train" not in reachable(name, set()), name
