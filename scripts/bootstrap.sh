#!/usr/bin/env bash
# Sets up everything `make test` / `make bench` need, and is a no-op when already set up:
#   1. a virtual environment in $VENV (default .venv) that also sees the system's packages, so on a
#      machine with torch + CUDA preinstalled (and no network) that torch is used;
#   2. torch==2.13.0 (CPU build) if no torch is importable, plus the test/benchmark packages that
#      are missing (nothing is downloaded when everything is present);
#   3. the compiled extension beamkernels._C, rebuilt in place (ninja, incremental) when csrc/ or
#      setup.py changed since the last build.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"

# pip, quiet, without the mirror's "Location ... is ignored" noise; a failed install still fails.
pip_install() {
  local log rc=0
  log=$(mktemp)
  "$PY" -m pip install -q "$@" >"$log" 2>&1 || rc=$?
  grep -v "WARNING: Location" "$log" || true
  rm -f "$log"
  return $rc
}

if [ ! -x "$PY" ]; then
  echo "bootstrap: creating virtual environment $VENV"
  python3 -m venv --system-site-packages "$VENV"
fi

if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  echo "bootstrap: installing torch==2.13.0 (CPU)"
  pip_install torch==2.13.0
fi

# The missing test/benchmark packages (one interpreter start checks them all). Triton is wanted on
# a CPU machine (its interpreter runs the Triton tests); on a CUDA machine it comes with torch.
missing=$("$PY" - <<'PYEOF'
import importlib.util
import torch
want = {"numpy": "numpy", "scipy": "scipy", "h5py": "h5py", "pytest": "pytest", "tqdm": "tqdm",
        "matplotlib": "matplotlib", "ninja": "ninja", "setuptools": "setuptools", "wheel": "wheel"}
if not torch.cuda.is_available():
    want["triton"] = "triton==3.9.0"
print(" ".join(req for mod, req in want.items() if importlib.util.find_spec(mod) is None))
PYEOF
)
if [ -n "$missing" ]; then
  echo "bootstrap: installing $missing"
  # shellcheck disable=SC2086
  pip_install $missing
fi

# The extension: rebuild when its sources changed (stamp = hash of csrc/ and setup.py).
stamp_file=build/.beamkernels-ext-stamp
stamp=$( (find csrc -type f | sort | xargs cat; cat setup.py; "$PY" -c "import torch; print(torch.__version__)") | sha256sum | cut -d' ' -f1)
so=$(ls beamkernels/_C*.so 2>/dev/null | head -n1 || true)
if [ "${BEAMKERNELS_SKIP_EXT:-0}" = 1 ]; then
  echo "bootstrap: BEAMKERNELS_SKIP_EXT=1: not building the extension (reference + Triton only)"
elif [ -z "$so" ] || [ ! -f "$stamp_file" ] || [ "$(cat "$stamp_file")" != "$stamp" ]; then
  echo "bootstrap: building beamkernels._C (in place, ninja)"
  mkdir -p build
  if ! MAX_JOBS=${MAX_JOBS:-$(nproc)} "$PY" setup.py build_ext --inplace > build/build.log 2>&1; then
    tail -n 60 build/build.log
    echo "bootstrap: building the extension failed (full log: build/build.log)"
    exit 1
  fi
  echo "$stamp" > "$stamp_file"
fi

# The console script `beamkernels` and the package on the venv's path (editable, no rebuild:
# the extension was built in place above).
if ! "$VENV/bin/python" -c "import importlib.metadata as m; m.version('beamkernels')" >/dev/null 2>&1; then
  echo "bootstrap: registering the package (editable)"
  BEAMKERNELS_SKIP_EXT=1 pip_install --no-build-isolation --no-deps -e .
fi
