PYTHON ?= python3
NVCC ?= nvcc
FATBIN := pydarknet/backend/kernels.fatbin

.PHONY: install build test asan bench demo cuda clean gpu-prepare gpu-run fashion-mnist

install:
	$(PYTHON) -m pip install -e ".[test]"

# an in-place build needs oneDNN's headers here, not only in pip's isolated build
# environment: without them the extension builds without oneDNN (and says so)
build:
	$(PYTHON) -m pip install -q "onednn-devel-cpu-gomp==2023.2.0" "onednn-cpu-gomp==2023.2.0"
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

# `make fashion-mnist`: Fashion-MNIST (70,000 28x28 grey images, 10 classes) from Debian's
# dataset-fashion-mnist package (installed with apt-get when missing: needs root on Debian or
# Ubuntu), converted by `pydarknet data idx` into $(FASHION_MNIST) (git-ignored): PNGs with
# the class in the file name, train.txt (60,000), valid.txt (the 10,000 test images), obj.names,
# obj.data. The Mish studies (bench/activation_study.py, bench/depth_study.py) read it.
FASHION_MNIST ?= data/fashion-mnist
FASHION_MNIST_IDX ?= /usr/share/datasets/fashion-mnist
fashion-mnist:
	@if [ ! -f $(FASHION_MNIST_IDX)/t10k-labels-idx1-ubyte.gz ]; then \
	  if ! command -v apt-get >/dev/null 2>&1; then \
	    echo "make fashion-mnist: no $(FASHION_MNIST_IDX) and no apt-get (not Debian/Ubuntu):"; \
	    echo "  download the four *-ubyte.gz files of Fashion-MNIST into a folder and run"; \
	    echo "  make fashion-mnist FASHION_MNIST_IDX=that-folder"; exit 1; fi; \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "make fashion-mnist: Debian's dataset-fashion-mnist is not installed; run"; \
	    echo "  sudo apt-get install dataset-fashion-mnist"; \
	    echo "and then make fashion-mnist again"; exit 1; fi; \
	  apt-get install -y dataset-fashion-mnist || { apt-get update && \
	    apt-get install -y dataset-fashion-mnist; } || exit 1; fi
	$(PYTHON) -m pydarknet data idx $(FASHION_MNIST_IDX)/train-images-idx3-ubyte.gz \
	  $(FASHION_MNIST_IDX)/train-labels-idx1-ubyte.gz $(FASHION_MNIST) --names fashion-mnist \
	  --list train
	$(PYTHON) -m pydarknet data idx $(FASHION_MNIST_IDX)/t10k-images-idx3-ubyte.gz \
	  $(FASHION_MNIST_IDX)/t10k-labels-idx1-ubyte.gz $(FASHION_MNIST) --names fashion-mnist \
	  --list valid

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
