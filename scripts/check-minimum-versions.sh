#!/usr/bin/env bash
# Installs the lowest version of every dependency that pyproject.toml allows (runtime, the onnx extra and the test
# tools) into a throwaway virtual environment and runs the test suite there, so that the declared minimums are
# versions that work. Run it when a minimum changes; it downloads about 3.5 GB (PyPI's torch for Linux before 2.6
# is the CUDA build, which runs on the CPU) and the tests take about as long as `make test`.
#
#   scripts/check-minimum-versions.sh [VENV_DIR]      (default /tmp/glioseg-minimum-versions; results in VENV_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-/tmp/glioseg-minimum-versions}"
rm -rf "$VENV"
python3 -m venv "$VENV"
PINS=$("$VENV/bin/python" - <<'PY'
import tomllib

project = tomllib.load(open("pyproject.toml", "rb"))["project"]
wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
print(" ".join(dict.fromkeys(requirement.replace(">=", "==") for requirement in wanted)))
PY
)
echo "installing: $PINS"
"$VENV/bin/pip" install --quiet $PINS
"$VENV/bin/pip" install --quiet --no-deps --no-build-isolation -e . 2>/dev/null || "$VENV/bin/pip" install --quiet --no-deps -e .
"$VENV/bin/pip" list --format=freeze > "$VENV/installed.txt"
echo "installed versions: $VENV/installed.txt"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider tests 2>&1 | tee "$VENV/pytest.log" | tail -15
