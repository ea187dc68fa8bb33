PYTHON ?= python3
NVCC ?= nvcc
FATBIN := pydarknet/backend/kernels.fatbin

.PHONY: install build test asan bench demo cuda clean gpu-prepare gpu-run

install:
	$(PYTHON) -m pip install -e ".[test]"

build:
	$(PYTHON) setup.py build_ext --inplace

test:
	$(PYTHON) -m pytest -q tests

# `make asan`: the C core built with AddressSanitizer + UndefinedBehaviorSanitizer in a copy
# under build/asan/ (the in-place build is left alone), and the C-heavy tests (backend ops,
# forward and training oracles, gradients) run against it; fails on any sanitizer report.
# Needs gcc with libasan/libubsan. ASAN_ARGS=--quick runs the subset CI runs.
asan:
	$(PYTHON) tools/asan.py $(ASAN_ARGS)

bench:
	$(PYTHON) bench/forward_cpu.py
	$(PYTHON) bench/train_cpu.py
	$(PYTHON) bench/data_loader.py
	$(PYTHON) bench/train_pipeline.py
	$(PYTHON) bench/detect_cpu.py

demo:
	$(PYTHON) -m pip install -e .
	pydarknet demo

# `make cuda`: cuda/build_fatbin.py (also run by `pip install`) compiles every cuda/*.cu as ONE
# translation unit into $(FATBIN): sm_80 and sm_90 SASS plus compute_90 PTX. Says so and does
# nothing where nvcc is absent; rebuilt only when a source changed. cuda/README.md lists the
# kernels.
cuda:
	NVCC=$(NVCC) $(PYTHON) cuda/build_fatbin.py

# The GPU machine (no internet, no pycuda): `make gpu-prepare` HERE fills .gpu/ (wheels, the
# reference data, the fatbin); then one device call with carry [".gpu"] runs `make gpu-run`
# (= bash tools/gpu_run.sh: build, kernel checks, GPU tests, GPU benchmark; logs in $$OUT).
# tools/GPU.md says more.
gpu-prepare:
	bash tools/gpu_prepare.sh

gpu-run:
	bash tools/gpu_run.sh

clean:
	rm -rf build *.egg-info
	rm -f pydarknet/backend/_cpu.c pydarknet/backend/*.so pydarknet/backend/*.pyd $(FATBIN) \
		pydarknet/backend/kernel_signatures.json
