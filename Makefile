# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
DEMO_SIZE ?= 512

.PHONY: demo test bench clean

$(INSTALLED): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(INSTALLED)

# Renders scikit-image's cat in the colours and texture of a generated painting;
# a small memory budget makes the last level tiled (exact tiling, chosen by
# --tiling auto), as a print-size render would be.
demo: $(INSTALLED)
	$(PY) examples/prepare.py out/inputs
	$(VENV)/bin/largestyle render out/inputs/chelsea.png out/inputs/painting.png \
		-o out/chelsea-painting.png --target-size $(DEMO_SIZE) --max-memory 450MB \
		--iterations 40
	@echo "demo output: out/chelsea-painting.png (report: out/chelsea-painting.job/report.html)"

test: $(INSTALLED)
	$(PY) -m pytest -q

bench: $(INSTALLED)
	$(PY) bench/bench_evaluation.py
	$(PY) bench/bench_memory.py
	$(PY) bench/bench_hugepages.py

clean:
	rm -rf $(VENV) out
