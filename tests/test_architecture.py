"""Data flows one way (docs/architecture.md): read each module's imports with ast and check the rules.

Every module counts, the package root and subpackages included, and every import: at the top of a module or inside
a function (a lazy import still closes a loop), ``import glioseg.x``, ``from glioseg.x import y`` and
``from glioseg import x``.
"""

import ast
from pathlib import Path

import glioseg

PACKAGE = Path(glioseg.__file__).parent


def module_name(path: Path) -> str:
    """``predict.py`` -> ``glioseg.predict``; ``viewer/__init__.py`` -> ``glioseg.viewer``."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(("glioseg", *parts[:-1])) if parts[-1] == "__init__" else ".".join(("glioseg", *parts))


MODULE_FILES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def resolve(name: str) -> str:
    """The glioseg module an imported name lives in: ``glioseg.labels.CORE`` -> ``glioseg.labels``."""
    while name not in MODULE_FILES:
        name = name.rpartition(".")[0]
    return name


def imports_of(path: Path) -> set[str]:
    """The glioseg modules ``path`` imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "glioseg"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "glioseg":
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {resolve(name) for name in found}


IMPORTS = {name: imports_of(path) for name, path in MODULE_FILES.items()}


def reachable(start: str) -> set[str]:
    """Every glioseg module ``start`` imports, directly or through others."""
    seen: set[str] = set()
    stack = [start]
    while stack:
        for name in IMPORTS[stack.pop()] - seen:
            seen.add(name)
            stack.append(name)
    return seen


def test_the_reader_sees_every_kind_of_import(tmp_path):
    """The rules below are only as good as this reader: it must see lazy imports and ``from glioseg import x``."""
    module = tmp_path / "m.py"
    module.write_text("import glioseg.predict\ndef f():\n    from glioseg import __version__, labels\n"
                      "    from glioseg.viewer.app import create_app\n")  # fmt: skip
    assert imports_of(module) == {"glioseg.predict", "glioseg", "glioseg.labels", "glioseg.viewer.app"}


def test_leaf_modules_import_no_other_glioseg_module():
    for leaf in ("glioseg.labels", "glioseg.config", "glioseg.errors", "glioseg.version"):
        assert IMPORTS[leaf] == set(), leaf


def test_metrics_imports_only_the_leaves():
    """Metrics are pure: label maps in, numbers out (defaults such as the NSD tolerance come from config)."""
    assert IMPORTS["glioseg.metrics"] <= {"glioseg.labels", "glioseg.config"}


def test_nothing_imports_the_cli():
    assert [name for name, imports in IMPORTS.items() if "glioseg.cli" in imports] == ["glioseg.__main__"]


def test_nothing_inside_imports_the_package_root():
    """The root is the public API: it imports the library (lazily), so a module importing it closes a loop."""
    assert [name for name, imports in IMPORTS.items() if "glioseg" in imports] == []


def test_no_import_cycles():
    for name in IMPORTS:
        assert name not in reachable(name), f"{name} imports itself through others"


def test_prediction_never_imports_the_training_loop():
    """Checkpoints and devices live in small modules both use (runs, devices), so predicting loads no trainer."""
    for name in ("predict", "inference", "postprocess", "evaluate", "report", "viewer.app"):
        assert "glioseg.train" not in reachable(f"glioseg.{name}"), name


MAX_FUNCTION_LINES = 80


def test_no_function_is_longer_than_a_screen():
    """Long functions do several jobs; a newcomer reads named steps instead (nanoGPT's training loop, not nnU-Net's)."""
    long = []
    for name, path in MODULE_FILES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name}: {lines} lines")
    assert long == []
