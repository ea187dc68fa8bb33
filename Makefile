PYTHON ?= python
NVCC ?= nvcc
CU_SRC := $(wildcard cuda/*.cu)
FATBIN := pydarknet/backend/kernels.fatbin
GENCODE := -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
           -gencode arch=compute_90,code=compute_90

.PHONY: install build test bench demo cuda clean

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

demo:
	$(PYTHON) -m pip install -e .
	pydarknet demo

cuda:
	@if [ -z "$(CU_SRC)" ]; then \
		echo "make cuda: no cuda/*.cu sources yet; nothing to build"; \
	elif ! command -v $(NVCC) >/dev/null 2>&1; then \
		echo "make cuda: nvcc not found on PATH; skipping $(FATBIN)"; \
	else \
		echo "$(NVCC) -O3 --fatbin $(GENCODE) -o $(FATBIN) $(CU_SRC)"; \
		$(NVCC) -O3 --fatbin $(GENCODE) -o $(FATBIN) $(CU_SRC); \
	fi

clean:
	rm -rf build *.egg-info
	rm -f pydarknet/backend/_cpu.c pydarknet/backend/*.so pydarknet/backend/*.pyd $(FATBIN)
