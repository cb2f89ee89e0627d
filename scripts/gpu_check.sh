#!/usr/bin/env bash
# One call on a lent GPU machine: build the extension for this GPU only, run the cuda tests, the
# GPU benchmarks, then the triton tests (compiled Triton). Every step has a time limit and the whole
# script a deadline (TOTAL, default 560 s: a device call may run 600 s), so a slow step shortens the
# later ones instead of losing the summary; logs (pytest -v, so a cut-off log still shows each
# result), a summary and the benchmark results go under $OUT (default build/gpu-check).
#
#   OUT=... bash scripts/gpu_check.sh            # on the device machine, from the repository root
#   TOTAL / BUILD_TIMEOUT / CUDA_TEST_TIMEOUT / BENCH_TIMEOUT / TRITON_TEST_TIMEOUT (seconds);
#   BENCH_ONLY=activation,conv limits the benchmark families; SKIP_BUILD=1 reuses a build.
#
# Then copy $OUT/results/* to benchmarks/results/ (or a machine folder) and commit them.
set -u
OUT=${OUT:-build/gpu-check}
PY=${PYTHON:-$(command -v python || command -v python3)}
DEADLINE=$((SECONDS + ${TOTAL:-560}))
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
note() { echo "$*" | tee -a "$SUMMARY"; }

if ! $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  note "gpu_check: no CUDA device visible to torch here; nothing to do (the CPU suite is 'make test')."
  exit 2
fi
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv > "$OUT/nvidia-smi.csv" 2>&1
note "device: $($PY -c 'import torch; print(torch.cuda.get_device_name(0))')"
note "versions: $($PY -c 'import torch, triton; print("torch", torch.__version__, "cuda", torch.version.cuda, "triton", triton.__version__)' 2>&1)"
ARCH=$($PY -c "import torch; c = torch.cuda.get_device_capability(); print(f'{c[0]}{c[1]}')")

step() {  # step NAME TIMEOUT LOG CMD...: runs CMD under min(TIMEOUT, time to the deadline)
  local name=$1 limit=$2 log=$3
  shift 3
  local left=$((DEADLINE - SECONDS - 10))
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -le 10 ]; then note "$name: SKIPPED (deadline)"; return 124; fi
  local t0=$SECONDS
  timeout "$limit" "$@" > "$log" 2>&1
  local rc=$?
  local what="ok"
  [ $rc -eq 124 ] && what="TIMED OUT after ${limit}s"
  [ $rc -ne 0 ] && [ $rc -ne 124 ] && what="FAILED (exit $rc)"
  note "$name: $what in $((SECONDS - t0)) s (log: $log)"
  return $rc
}

if [ "${SKIP_BUILD:-0}" != "1" ]; then
  export BEAMKERNELS_CUDA_ARCHS=$ARCH MAX_JOBS=${MAX_JOBS:-$(nproc)}
  step "build (sm_$ARCH)" "${BUILD_TIMEOUT:-240}" "$OUT/build.log" \
    $PY -m pip install --no-build-isolation --no-deps -e . || { tail -40 "$OUT/build.log"; exit 1; }
fi
note "build_info: $($PY -c 'import beamkernels, json; print(json.dumps(beamkernels.build_info()))' 2>&1)"

# The tests parametrized over backends carry "cuda" / "triton" in their ids; CPU-only tests are
# CI's job ('make test' on the CPU): the CUDA emulator's (tests/cuda_emu), the nvcc / glue build
# checks (tests/test_build.py) and the sm_90 compile of the Triton kernels (test_triton_compile.py).
IGNORE=(--ignore=tests/cuda_emu --ignore=tests/test_build.py --ignore=tests/ops/test_triton_compile.py)
gpu_tests() {  # gpu_tests NAME KEYWORD TIMEOUT
  step "tests ($1)" "$3" "$OUT/tests-$1.log" \
    $PY -m pytest tests -v -p no:cacheprovider --maxfail=25 -k "$2" -rfEs "${IGNORE[@]}"
  [ -f "$OUT/tests-$1.log" ] || return
  note "  $(grep -E '[0-9]+ (passed|failed)' "$OUT/tests-$1.log" | tail -1)"
  note "  results so far: $(grep -cE ' PASSED' "$OUT/tests-$1.log") passed, $(grep -cE ' (FAILED|ERROR)' "$OUT/tests-$1.log") failed"
  grep -E "^(FAILED|ERROR)" "$OUT/tests-$1.log" | head -25 | tee -a "$SUMMARY"
}
gpu_tests cuda "cuda and not triton" "${CUDA_TEST_TIMEOUT:-150}"

BENCH_ARGS=(--device cuda)
[ -n "${BENCH_ONLY:-}" ] && BENCH_ARGS+=(--only "$BENCH_ONLY")
export BEAMKERNELS_RESULTS_DIR="$OUT/results"
step "benchmarks ${BENCH_ARGS[*]}" "${BENCH_TIMEOUT:-200}" "$OUT/bench.log" \
  $PY -m benchmarks.run_all "${BENCH_ARGS[@]}"
if [ -f "$OUT/results/SUMMARY-cuda.md" ]; then
  note ""
  grep -E "^\|" "$OUT/results/SUMMARY-cuda.md" | cut -c1-160 | tee -a "$SUMMARY" > /dev/null
  grep -E "^\|" "$OUT/results/SUMMARY-cuda.md" | cut -d'|' -f2-5,7,9-10 | head -60
fi
gpu_tests triton "triton" "${TRITON_TEST_TIMEOUT:-300}"
echo
cat "$SUMMARY" | grep -v "^|"
