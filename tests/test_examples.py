"""The end-to-end example scripts in python/ run (small settings) and print what they promise."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": ROOT, "MPLBACKEND": "Agg"}


def _run(args, timeout=600):
    r = subprocess.run([sys.executable] + args, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


def test_quickstart_agrees_and_times():
    out = _run([os.path.join("python", "quickstart.py")])
    assert "max |y_thesis - y_beamkernels|" in out and "speed-up" in out
    diff = float(out.split("max |y_thesis - y_beamkernels| = ")[1].split(";")[0])
    assert diff < 1e-4


def test_train_and_compare_tiny(tmp_path):
    out = _run([os.path.join("python", "train_and_compare.py"), "--models", "thesis-complex-cnn,thesis-real-encoder",
                "--steps", "2", "--epochs", "1", "--batch-size", "2", "--val-samples", "4", "--out", str(tmp_path)])
    assert "SVD bound" in out and "OMP" in out and "thesis-complex-cnn" in out
    assert (tmp_path / "comparison.png").stat().st_size > 1000
