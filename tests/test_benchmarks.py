"""The benchmark summary: built from the committed per-family results files."""

import os

import pytest

from benchmarks.run_all import RESULTS_DIR, families, saved_summary


def test_summary_from_saved_results():
    if not os.path.exists(os.path.join(RESULTS_DIR, "conv-cpu.json")):
        pytest.skip("no committed CPU results")
    dates, table = saved_summary("cpu")
    assert len(dates) == sum(os.path.exists(os.path.join(RESULTS_DIR, f"{f}-cpu.json")) for f in families())
    lines = table.splitlines()
    assert lines[0].startswith("| family | op | mode |")
    conv = [ln for ln in lines if ln.startswith("| conv | conv2d+modrelu | forward | L1")]
    assert len(conv) == 1 and conv[0].rstrip().endswith("|") and "x |" in conv[0]
