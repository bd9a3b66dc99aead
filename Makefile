# The README's two commands: `make demo` and `make test`. Both set up .venv/ first.
PYTHON ?= python3
VENV := .venv
RUNTIME := $(VENV)/.installed
DEV := $(VENV)/.installed-dev

.PHONY: demo test lint clean niivue system-tools
NIIVUE_VERSION := 0.69.0

# What glioseg needs to run (the demo needs no more): quicker to set up than the test tools.
$(RUNTIME): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned, so the project's torch requirement is met by the build this machine has.
	$(VENV)/bin/pip install --quiet torch==2.13.0
	$(VENV)/bin/pip install --quiet -e .
	touch $(RUNTIME)

$(DEV): $(RUNTIME)
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $(DEV)

demo: $(RUNTIME)
	$(VENV)/bin/glioseg demo

# Two processes, each test file in one (its module fixtures made once): 624 s against 1025 s in one, on 2 cores.
test: $(DEV) system-tools
	$(VENV)/bin/python -m pytest -q -n 2 --dist loadfile

# The viewer's browser test needs Chromium, the DICOM SEG test dciodvfy (dicom3tools), the PACS tests Orthanc with
# its DICOMweb plugin: Debian's, where we may install them; else those tests are skipped, saying why.
system-tools:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && command -v dciodvfy >/dev/null && \
	  { command -v Orthanc >/dev/null || [ -x /usr/sbin/Orthanc ]; } && \
	  [ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || \
	{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver dicom3tools orthanc \
	  orthanc-dicomweb >/dev/null; } || \
	echo "no Chromium, dicom3tools or Orthanc could be installed: the tests that need them are skipped"

lint: $(DEV)
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts

clean:
	rm -rf $(VENV) build src/*.egg-info

# Replace the NiiVue build shipped in the package (needs npm and the registry).
niivue:
	cd $$(mktemp -d) && npm pack --silent @niivue/niivue@$(NIIVUE_VERSION) && tar xzf niivue-niivue-$(NIIVUE_VERSION).tgz && \
		cp package/dist/niivue.umd.js $(CURDIR)/src/glioseg/app/static/niivue.umd.js
