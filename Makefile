PYTHON ?= python
NVCC ?= nvcc
CU_SRC := $(wildcard cuda/*.cu)
CU_HDR := $(wildcard cuda/*.cuh)
CU_UNITY := build/cuda/kernels_all.cu
FATBIN := pydarknet/backend/kernels.fatbin
GENCODE := -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
           -gencode arch=compute_90,code=compute_90

.PHONY: install build test bench demo cuda clean gpu-prepare gpu-run

install:
	$(PYTHON) -m pip install -e ".[test]"

build:
	$(PYTHON) setup.py build_ext --inplace

test:
	$(PYTHON) -m pytest -q tests

bench:
	$(PYTHON) bench/forward_cpu.py
	$(PYTHON) bench/train_cpu.py
	$(PYTHON) bench/data_loader.py
	$(PYTHON) bench/train_pipeline.py
	$(PYTHON) bench/detect_cpu.py

demo:
	$(PYTHON) -m pip install -e .
	pydarknet demo

# `make cuda`: every cuda/*.cu compiled as ONE translation unit (build/cuda/kernels_all.cu
# #includes them; a fatbin holds one module) into $(FATBIN): sm_80 and sm_90 SASS plus
# compute_90 PTX. A no-op with a message where nvcc is absent; rebuilt only when a source
# changed. cuda/README.md lists the kernels. setup.py builds the same fatbin with the same
# flags during `pip install` (keep GENCODE and the nvcc options of the two in step).
cuda:
	@if [ -z "$(CU_SRC)" ]; then \
		echo "make cuda: no cuda/*.cu sources yet; nothing to build"; \
	elif ! command -v $(NVCC) >/dev/null 2>&1; then \
		echo "make cuda: nvcc not found on PATH; skipping $(FATBIN)"; \
	else \
		$(MAKE) --no-print-directory $(FATBIN); \
	fi

$(FATBIN): $(CU_SRC) $(CU_HDR)
	@mkdir -p build/cuda
	@for f in $(CU_SRC); do echo "#include \"$(CURDIR)/$$f\""; done > $(CU_UNITY)
	$(NVCC) -O3 --threads 0 --fatbin $(GENCODE) -o $@ $(CU_UNITY)

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
	rm -f pydarknet/backend/_cpu.c pydarknet/backend/*.so pydarknet/backend/*.pyd $(FATBIN)
