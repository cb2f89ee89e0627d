"""Every Triton kernel compiles for the GPUs we target, without a GPU, and its configs fit them.

The interpreter (TRITON_INTERPRET=1) checks what the Triton kernels compute; it never compiles them,
so a kernel that does not lower for sm_90, a config whose shared memory exceeds the SM's, or a
config that spills to local memory would pass every other test. Triton compiles ahead of time for a
named target with its own ptxas: benchmarks/triton_resources.py does it for each variant the ops
launch (each autotuner config, dtype and tl.dot precision). It runs in a subprocess because this
process defined the kernels for the interpreter, and those cannot be compiled.
"""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("triton")
try:
    from triton.backends.nvidia.compiler import get_ptxas
    _PTXAS = all(os.access(get_ptxas(a).path, os.X_OK) for a in (80, 90))
except Exception:  # pragma: no cover - a Triton build without the NVIDIA backend
    _PTXAS = False
if not _PTXAS:
    pytest.skip("Triton's NVIDIA backend (with its ptxas) is not installed", allow_module_level=True)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Spill budget of the conv configs on sm_90, bytes per thread (kernels/triton/conv.py's _TILES were
# chosen to stay within it with triton 3.9; the configs before 2026-12-03 spilled 0.5-70 KB).
SPILL_BUDGET = 128


def _run(tmp_path, *args) -> list[dict]:
    out = tmp_path / "rows.json"
    r = subprocess.run([sys.executable, "-m", "benchmarks.triton_resources", "--no-write", "--json", str(out), *args],
                       cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert out.exists(), f"benchmarks.triton_resources wrote nothing:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return json.loads(out.read_text())["rows"]


@pytest.fixture(scope="module")
def sm90_rows(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("sm90"), "--arch", "90")


def test_every_triton_kernel_compiles_for_sm90(sm90_rows):
    fams = {r["family"] for r in sm90_rows}
    assert fams == {"conv", "activation", "norm", "pool"}, fams
    bad = [f"{r['kernel']} [{r['label']}]: {r['error']}" for r in sm90_rows if r["error"]]
    assert not bad, "do not compile for sm_90:\n" + "\n".join(bad)


def test_every_config_fits_sm90_shared_memory(sm90_rows):
    bad = [f"{r['kernel']} [{r['label']}]: {r['shared']} > {r['shared_max']} bytes" for r in sm90_rows if not r["fits"]]
    assert not bad, "configs that cannot launch on sm_90 (drop or shrink them):\n" + "\n".join(bad)


def test_no_config_spills_beyond_budget(sm90_rows):
    bad = []
    for r in sm90_rows:
        budget = SPILL_BUDGET if r["family"] == "conv" else 0  # elementwise kernels have no reason to spill
        if r["spill_stores"] > budget:
            bad.append(f"{r['kernel']} [{r['label']}]: {r['spill_stores']} bytes per thread (budget {budget})")
    assert not bad, ("spills on sm_90; re-run `python -m benchmarks.triton_resources --only conv` and re-choose "
                     "_TILES in beamkernels/kernels/triton/conv.py:\n" + "\n".join(bad))


def test_conv_tf32_configs_for_sm80(tmp_path):
    """A100s (sm_80: mma.sync, not wgmma) get their own TF32 list (kernels/triton/conv.py _TILES_SM80):
    it compiles, fits and stays within the spill budget there too. (Exact fp32's dL/dW spills on
    sm_80 with every config swept: documented, not checked.)"""
    rows = _run(tmp_path, "--arch", "80", "--only", "conv", "--match", "tf32")
    assert len(rows) == 18, [r["label"] for r in rows]  # 6 configs x (forward, dL/dx, dL/dW)
    bad = [f"{r['kernel']} [{r['label']}]: {r['error'] or ''} shared {r['shared']} spill {r['spill_stores']}"
           for r in rows if r["error"] or not r["fits"] or r["spill_stores"] > SPILL_BUDGET]
    assert not bad, "sm_80 TF32 configs:\n" + "\n".join(bad)


def test_report_flags_a_config_that_does_not_fit(tmp_path):
    """The checks can fail: the fp64 128x128x32 tile of the config list before 2026-12-03 needs 256 KB."""
    rows = _run(tmp_path, "--arch", "90", "--only", "conv", "--match", "fp64", "--tiles", "128,128,32,8,3")
    assert rows and all(not r["error"] for r in rows), rows
    assert all(r["shared"] > r["shared_max"] and not r["fits"] for r in rows), rows
