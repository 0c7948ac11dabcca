# Two commands do everything on a fresh clone: `make demo` and `make test`.
# Each creates .venv if missing, installs torch first (TORCH, a CPU build where
# this machine keeps one on disk), then the package with its extras.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test demo bench analyze data study clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "$(TORCH)"
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev,onnx,joblib,metrics,data]"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	$(PY) recipes/vocode.py

bench: $(STAMP)
	$(PY) recipes/benchmark.py generator.enabled=true

# The Allison corpus (CC-BY-SA-3.0, Allison Smith) -> data/allison/; needs apt-get or the
# two .deb files in data/cache/ (see configs/prepare_data.yaml). A rerun skips finished work.
data: $(STAMP)
	$(PY) recipes/prepare_data.py

REPORT := multirun/analyze/report
analyze: $(STAMP)
	$(PY) recipes/analyze.py -m hydra.sweep.dir=$(REPORT) \
		upsampler=transposed,nearest_conv,linear_conv,subpixel,subpixel_icnr
	$(PY) recipes/compare.py runs=$(REPORT)

# One training run per upsampler kind on data/allison (make data), then the report in
# multirun/study/report/; a rerun skips finished kinds and resumes an unfinished one.
study: $(STAMP)
	$(PY) recipes/study.py

clean:
	rm -rf $(VENV) outputs multirun
