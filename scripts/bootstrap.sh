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

if [ ! -x "$PY" ]; then
  echo "bootstrap: creating virtual environment $VENV"
  python3 -m venv --system-site-packages "$VENV"
fi

if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  echo "bootstrap: installing torch==2.13.0 (CPU)"
  "$PY" -m pip install -q torch==2.13.0
fi

# module name -> pip requirement; only the missing ones are installed.
missing=()
for pair in numpy:numpy scipy:scipy h5py:h5py pytest:pytest tqdm:tqdm matplotlib:matplotlib \
            ninja:ninja setuptools:setuptools wheel:wheel triton:triton==3.9.0; do
  mod=${pair%%:*}; req=${pair#*:}
  if [ "$mod" = triton ] && "$PY" -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    "$PY" -c "import triton" >/dev/null 2>&1 || echo "bootstrap: note: triton missing on a CUDA machine; Triton backend off"
    continue
  fi
  "$PY" -c "import $mod" >/dev/null 2>&1 || missing+=("$req")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  "$PY" -m pip install -q "${missing[@]}"
fi

# The extension: rebuild when its sources changed (stamp = hash of csrc/ and setup.py).
stamp_file=build/.beamkernels-ext-stamp
stamp=$( (find csrc -type f | sort | xargs cat; cat setup.py; "$PY" -c "import torch; print(torch.__version__)") | sha256sum | cut -d' ' -f1)
so=$(ls beamkernels/_C*.so 2>/dev/null | head -n1 || true)
if [ "${BEAMKERNELS_SKIP_EXT:-0}" = 1 ]; then
  echo "bootstrap: BEAMKERNELS_SKIP_EXT=1: not building the extension (reference + Triton only)"
elif [ -z "$so" ] || [ ! -f "$stamp_file" ] || [ "$(cat "$stamp_file")" != "$stamp" ]; then
  echo "bootstrap: building beamkernels._C (in place, ninja)"
  MAX_JOBS=${MAX_JOBS:-$(nproc)} "$PY" setup.py -q build_ext --inplace 2>&1 | grep -v -E "warning: default member initializers|^\s*$|AutogradState.h" || true
  ls beamkernels/_C*.so >/dev/null 2>&1 || { echo "bootstrap: building the extension failed (see above)"; exit 1; }
  mkdir -p build && echo "$stamp" > "$stamp_file"
fi

# The console script `beamkernels` and the package on the venv's path (editable, no rebuild:
# the extension was built in place above).
if ! "$VENV/bin/python" -c "import importlib.metadata as m; m.version('beamkernels')" >/dev/null 2>&1; then
  echo "bootstrap: registering the package (editable)"
  BEAMKERNELS_SKIP_EXT=1 "$PY" -m pip install -q --no-build-isolation --no-deps -e . 2>&1 | grep -v "WARNING: Location" || true
fi
