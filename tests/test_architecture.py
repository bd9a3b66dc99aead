"""Data flows one way (docs/architecture.md): read each module's imports with ast and check the rules.

Every module counts, the package root and subpackages included, and every import: at the top of a module or inside
a function (a lazy import still closes a loop), ``import glioseg.x``, ``from glioseg.x import y`` and
``from glioseg import x``.
"""

import ast
import re
from pathlib import Path

import glioseg

PACKAGE = Path(glioseg.__file__).parent


def module_name(path: Path) -> str:
    """``inference/predict.py`` -> ``glioseg.inference.predict``; ``core/__init__.py`` -> ``glioseg.core``."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(("glioseg", *parts[:-1])) if parts[-1] == "__init__" else ".".join(("glioseg", *parts))


MODULE_FILES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def resolve(name: str) -> str:
    """The glioseg module an imported name lives in: ``glioseg.core.labels.CORE`` -> ``glioseg.core.labels``."""
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


LAYERS = ("core", "datasets", "evaluation", "network", "raw", "inference", "training", "workflows", "app")
"""The subpackages by stage, lowest first: each imports only from its own layer and those before it."""


def layer(module: str) -> int | None:
    """The index in :data:`LAYERS` of a module's subpackage (None for the package root and ``__main__``)."""
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else None


def test_the_reader_sees_every_kind_of_import(tmp_path):
    """The rules below are only as good as this reader: it must see lazy imports and ``from glioseg import x``."""
    module = tmp_path / "m.py"
    module.write_text("import glioseg.inference.predict\ndef f():\n    from glioseg import __version__\n"
                      "    from glioseg.core import labels\n"
                      "    from glioseg.app.viewer import create_app\n")  # fmt: skip
    assert imports_of(module) == {"glioseg.inference.predict", "glioseg", "glioseg.core.labels", "glioseg.app.viewer"}


def test_every_subpackage_is_a_layer_and_few_modules_lie_loose_at_the_top():
    packages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert packages == set(LAYERS)
    loose = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py"]


def test_each_layer_imports_only_itself_and_the_layers_below():
    upward = [f"{name} imports {imported}" for name, imports in IMPORTS.items() if layer(name) is not None
              for imported in imports if layer(imported) is None or layer(imported) > layer(name)]  # fmt: skip
    assert upward == []


def test_subpackages_import_nothing_on_their_own():
    """Importing ``glioseg.core.labels`` runs ``glioseg/core/__init__.py``: it must not pull in its siblings."""
    assert {name: IMPORTS[name] for name in (f"glioseg.{layer}" for layer in LAYERS) if IMPORTS[name]} == {}


def test_tests_mirror_the_layers():
    tests = Path(__file__).parent
    folders = {path.name for path in tests.iterdir() if path.is_dir() and not path.name.startswith((".", "_"))}
    assert folders == set(LAYERS)
    for folder in folders:
        assert list((tests / folder).glob("test_*.py")), folder


def test_leaf_modules_import_no_other_glioseg_module():
    for leaf in ("labels", "config", "errors", "version"):
        assert IMPORTS[f"glioseg.core.{leaf}"] == set(), leaf


def test_metrics_imports_only_the_leaves():
    """Metrics are pure: label maps in, numbers out (defaults such as the NSD tolerance come from config)."""
    assert IMPORTS["glioseg.evaluation.metrics"] <= {"glioseg.core.labels", "glioseg.core.config"}


def test_nothing_imports_the_cli():
    assert [name for name, imports in IMPORTS.items() if "glioseg.app.cli" in imports] == ["glioseg.__main__"]


def test_nothing_inside_imports_the_package_root():
    """The root is the public API: it imports the library (lazily), so a module importing it closes a loop."""
    assert [name for name, imports in IMPORTS.items() if "glioseg" in imports] == []


def test_no_import_cycles():
    for name in IMPORTS:
        assert name not in reachable(name), f"{name} imports itself through others"


def test_prediction_never_imports_the_training_loop():
    """Checkpoints and devices live in small modules both use (runs, devices), so predicting loads no trainer."""
    for name in ("inference.predict", "evaluation.evaluate", "workflows.report", "app.viewer"):
        assert "glioseg.training.loop" not in reachable(f"glioseg.{name}"), name


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


def test_the_map_names_every_module_and_no_other():
    """docs/architecture.md's module table is drawn from the code: each row a module that exists, each module a row."""
    page = (Path(__file__).parents[1] / "docs" / "architecture.md").read_text()
    table = page[page.index("## Modules") : page.index("## Import rules")]
    rows = set(re.findall(r"^\| `([a-z_.]+)` \|", table, re.MULTILINE))
    modules = {name.removeprefix("glioseg.") for name in MODULE_FILES if name.count(".") == 2}
    assert rows == modules


OWNED_LITERALS = {  # a string only its owner writes: the concept it names lives there
    "prepare.json": "glioseg.raw.prepared",  # the prepared-case record
    "native_t1gd.nii.gz": "glioseg.raw.prepared",
    "last.pt": "glioseg.network.runs",  # the run folder's checkpoints
    "best.pt": "glioseg.network.runs",
    "t1ce": "glioseg.datasets.layouts",  # dataset layouts' file names
    "t2f": "glioseg.datasets.layouts",
    "seg": "glioseg.datasets.layouts",
}
OWNED_CALLS = {  # a function or class only its owner calls
    "UNet3D": "glioseg.network.unet",  # every other module asks build_network
    "label_from_regions": "glioseg.inference.postprocess",  # the one probabilities-to-label rule
}


def test_each_concept_has_one_owner():
    strays = []
    for name, path in MODULE_FILES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and OWNED_LITERALS.get(node.value, name) != name:
                strays.append(f"{name} writes {node.value!r}")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                if OWNED_CALLS.get(node.func.id, name) != name:
                    strays.append(f"{name} calls {node.func.id}")
            elif isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__version__" for t in node.targets):
                if name != "glioseg.core.version":
                    strays.append(f"{name} sets __version__")
    assert strays == []


def test_defaults_are_named_not_repeated():
    """A ``device`` parameter that takes ``--device``'s choice defaults to ``config.DEFAULT_DEVICE``, not to an
    ``"auto"`` of its own."""
    literal = []
    for name, path in MODULE_FILES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                arguments = node.args.args + node.args.kwonlyargs
                defaults = [None] * (len(node.args.args) - len(node.args.defaults)) + node.args.defaults
                for argument, default in zip(arguments, defaults + node.args.kw_defaults):
                    if argument.arg == "device" and isinstance(default, ast.Constant) and default.value == "auto":
                        literal.append(f"{name}.{node.name}")
    assert literal == []
