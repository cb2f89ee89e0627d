# The two commands of the README:  make bench  (the main job)  and  make test.
# Both set everything up first (scripts/bootstrap.sh) and do nothing extra when already set up.
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR)

# Triton runs on the CPU only in its interpreter; on a GPU machine it compiles for the GPU.
HAS_CUDA = $(shell $(PY) -c "import torch; print(int(torch.cuda.is_available()))" 2>/dev/null || echo 0)
TRITON_ENV = $(if $(filter 1,$(HAS_CUDA)),,TRITON_INTERPRET=1)

.PHONY: setup build test test-fast bench clean

setup:
	@bash scripts/bootstrap.sh

build:
	@rm -f build/.beamkernels-ext-stamp && bash scripts/bootstrap.sh

test: setup
	$(TRITON_ENV) $(PY) -m pytest tests $(PYTEST_ARGS)

test-fast: setup
	$(TRITON_ENV) $(PY) -m pytest tests -m "not slow" -x $(PYTEST_ARGS)

# The other complex-NN libraries are optional providers; --no-deps so they cannot pull another
# torch (offline machines just skip them).
bench: setup
	@$(PY) -c "import complextorch, torchcvnn, complexPyTorch, cplxmodule" 2>/dev/null || \
	  $(PY) -m pip install -q --no-deps complextorch torchcvnn complexPyTorch cplxmodule 2>/dev/null || \
	  echo "bench: other complex-NN libraries not installable here; benchmarking without them"
	$(PY) -m benchmarks.run_all $(BENCH_ARGS)

clean:
	rm -rf build beamkernels/_C*.so *.egg-info
