"""The training entry point end to end, on tiny configs: the CLI writes checkpoints, the report
(markdown + JSON) and the PNGs; a resumed run continues exactly where it stopped; a .mat
directory works as a data source; DDP (2 CPU processes, gloo) keeps the ranks identical."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from beamkernels.__main__ import main
from beamkernels.train import TrainConfig, load_checkpoint, train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ["--model", "thesis-complex-cnn", "-c", "width=2", "-c", '{"hidden": 16}', "--batch-size", "4",
        "--val-samples", "4", "--sweep-db", "0,10", "--eval-batch-size", "8", "--no-progress", "--lr", "1e-3",
        "--no-steady-heap"]  # in-process runs leave pytest's allocator alone (the default is tested in a subprocess)


def _cfg(out, **kw) -> TrainConfig:
    base = dict(model="thesis-complex-cnn", model_config={"width": 2, "hidden": 16}, batch_size=4, val_samples=4,
                sweep_db=(0.0, 10.0), eval_batch_size=8, progress=False, epochs=2, steps_per_epoch=2, out=str(out))
    base.update(kw)
    return TrainConfig(**base)


def test_cli_end_to_end_writes_report_checkpoints_and_plots(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "2", "--steps-per-epoch", "2", "--out", str(out)]) == 0
    for f in ("last.pt", "best.pt", "report.md", "report.json", "se_vs_snr.png", "training_curves.png"):
        assert (out / f).is_file() and (out / f).stat().st_size > 0, f
    rep = json.loads((out / "report.json").read_text())
    rows = rep["se_vs_snr"]["rows"]
    assert [r["snr_db"] for r in rows] == [0.0, 10.0]
    for r in rows:
        assert 0 < r["model"] <= r["svd_bound"] + 1e-6 and 0 < r["omp"] <= r["svd_bound"] + 1e-6
    assert rep["info"]["steps"] == 4 and len(rep["history"]["val_se"]) == 2
    md = (out / "report.md").read_text()
    assert "| SNR (dB) | model | SVD bound" in md and "OMP" in md
    assert (out / "se_vs_snr.png").read_bytes()[:4] == b"\x89PNG"
    ck = load_checkpoint(str(out / "last.pt"), torch.device("cpu"))  # weights_only=True
    assert ck["step"] == 4 and ck["epoch"] == 2
    assert "SE at 10 dB" in capsys.readouterr().out


def test_resume_continues_exactly(tmp_path):
    straight = train(_cfg(tmp_path / "a", epochs=2, steps_per_epoch=2))
    # Interrupted run: a time budget that stops it after its first step, then resumed.
    first = train(_cfg(tmp_path / "b", epochs=2, steps_per_epoch=2, time_budget_min=1e-9))
    assert first.step == 1
    ck = load_checkpoint(str(tmp_path / "b" / "last.pt"), torch.device("cpu"))
    assert ck["step"] == 1 and ck["epoch_step"] == 1
    resumed = train(_cfg(tmp_path / "b", epochs=2, steps_per_epoch=2, resume="auto"))
    assert resumed.step == straight.step == 4
    la = load_checkpoint(str(tmp_path / "a" / "last.pt"), torch.device("cpu"))
    lb = load_checkpoint(str(tmp_path / "b" / "last.pt"), torch.device("cpu"))
    torch.testing.assert_close(lb["history"]["step_loss"], la["history"]["step_loss"], rtol=1e-4, atol=1e-6)
    for k, v in la["model"].items():
        torch.testing.assert_close(lb["model"][k], v, rtol=1e-4, atol=1e-5, msg=k)


def test_resume_rejects_a_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(_cfg(tmp_path, resume="auto"))


@pytest.mark.parametrize("loss", ["mse", "rate"])
def test_other_losses_and_the_real_baseline(tmp_path, loss):
    r = train(_cfg(tmp_path, model="thesis-real-encoder", model_config={"width": 2}, loss=loss, epochs=1,
                   optimizer="adamw", schedule="step"))
    assert r.step == 2 and r.report["headline"]["model"] > 0


def test_mat_directory_source(tmp_path):
    from beamkernels.data import generate_channels, save_mat

    d = tmp_path / "mat"
    d.mkdir()
    batch = generate_channels(12, seed=3)
    save_mat(str(d / "part0.mat"), batch)
    r = train(_cfg(tmp_path / "run", data=str(d), epochs=1, steps_per_epoch=0, val_samples=4))
    assert r.step == 2  # 8 training samples / batch 4
    rows = r.report["se_vs_snr"]["rows"]
    assert "omp" not in rows[0] and rows[0]["model"] > 0  # no path responses in files: no OMP


def test_bad_options_are_clear_errors(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--loss", "l1"])
    assert "invalid choice: 'l1'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "-c", "width", "--out", str(tmp_path)])
    assert "key=value or a JSON object" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="neither 'generator' nor a directory"):
        train(_cfg(tmp_path, data=str(tmp_path / "missing")))


DDP_SCRIPT = r"""
import sys, torch, torch.distributed as dist
from beamkernels.train import TrainConfig, train
out = sys.argv[1]
cfg = TrainConfig(model="thesis-complex-cnn", model_config={"width": 2, "hidden": 16}, batch_size=2,
                  val_samples=4, sweep_db=(10.0,), eval_batch_size=4, progress=False, epochs=1,
                  steps_per_epoch=2, out=out + "/run")
dist.init_process_group("gloo")
r = train(cfg)
flat = torch.cat([torch.view_as_real(p.detach()).flatten() if p.is_complex() else p.detach().flatten()
                  for p in r.model.parameters()])
torch.save({"params": flat, "step": r.step}, f"{out}/rank{r.rank}.pt")
dist.destroy_process_group()
"""


def test_ddp_two_cpu_processes_keep_identical_parameters(tmp_path):
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_SCRIPT)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    with socket.socket() as sock:  # a free port (torchrun's --master_port 0 hangs here)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                        "127.0.0.1", "--master_port", str(port), str(script), str(tmp_path)], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["step"] == r1["step"] == 2
    # One epoch: rank 0's report weights (best.pt) are its last weights too.
    torch.testing.assert_close(r1["params"], r0["params"], rtol=0, atol=0)
    last = load_checkpoint(str(tmp_path / "run" / "last.pt"), torch.device("cpu"))  # written by rank 0 only
    assert last["step"] == 2
    torch.testing.assert_close(r1["params"], _flat(last["model"]), rtol=0, atol=0)
    assert (tmp_path / "run" / "report.md").is_file()


def _flat(state):
    from beamkernels.models import create

    m = create("thesis-complex-cnn", width=2, hidden=16)
    m.load_state_dict(state)
    return torch.cat([torch.view_as_real(p.detach()).flatten() if p.is_complex() else p.detach().flatten()
                      for p in m.parameters()])


def test_cli_info_loads_the_extension_in_a_fresh_process():
    """`python -m beamkernels` imports the package before torch: the extension must still load."""
    import beamkernels

    p = subprocess.run([sys.executable, "-m", "beamkernels", "info"], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")))
    assert p.returncode == 0, p.stderr[-2000:]
    assert "available backends:" in p.stdout
    if beamkernels._ext.LOADED:
        assert '"extension": true' in p.stdout, p.stdout


def test_generator_skips_svd_targets_for_the_rate_loss(tmp_path):
    """The rate loss needs no Fopt / Wopt: generated training batches skip the SVD, with the same
    channels; validation data keeps its targets (the report's OMP baseline needs them)."""
    from beamkernels.train.sources import make_source

    dev = torch.device("cpu")
    rate = make_source(_cfg(tmp_path, loss="rate"), 0, 1, dev)
    sub = make_source(_cfg(tmp_path, loss="subspace"), 0, 1, dev)
    b_rate, b_sub = rate.batch(0, 0, 3), sub.batch(0, 0, 3)
    assert "Fopt" not in b_rate and "Wopt" not in b_rate
    assert "Fopt" in b_sub and "Wopt" in b_sub
    torch.testing.assert_close(b_rate["H"], b_sub["H"], rtol=0, atol=0)
    assert "Fopt" in rate.val_set() and "At" in rate.val_set()
    res = train(_cfg(tmp_path / "run", loss="rate", epochs=1, steps_per_epoch=2))
    assert res.step == 2


_FAULTS = """
import resource, sys, torch
from beamkernels.train import steady_heap
applied = steady_heap() if sys.argv[1] == "steady" else False
def touch(mib):  # above glibc's largest default mmap threshold (32 MiB)
    t = torch.empty(mib << 20, dtype=torch.uint8)
    t.fill_(1)
touch(64)
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
touch(60)  # a little smaller: it fits in the freed block whatever the alignment padding
print(int(applied), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt (Linux)")
def test_steady_heap_reuses_freed_memory_without_page_faults():
    """A freed 64 MiB tensor's memory is faulted in again by the next large allocation (fresh mmap)
    unless steady_heap() keeps it in the heap; checked in fresh processes (it changes the whole process)."""
    def run(mode):
        r = subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, check=True,
                           env=dict(os.environ, PYTHONPATH=ROOT), cwd=ROOT)
        applied, faults = map(int, r.stdout.split()[-2:])
        return applied, faults

    applied, steady = run("steady")
    if not applied:
        pytest.skip("not glibc: steady_heap() does nothing here")
    _, default = run("default")
    assert steady < 1000 < default, (steady, default)


def test_cli_keeps_the_heap_on_cpu_by_default(tmp_path):
    from beamkernels.train import heap

    if heap._mallopt() is None:
        pytest.skip("not glibc: steady_heap() does nothing here")
    args = [a for a in TINY if a != "--no-steady-heap"]
    r = subprocess.run([sys.executable, "-m", "beamkernels", "train", *args, "--device", "cpu", "--epochs", "1",
                        "--steps-per-epoch", "1", "--out", str(tmp_path / "run")],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT), cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "heap kept between steps" in r.stdout


def test_validation_test_and_training_streams_are_distinct():
    # torch's CPU generator keeps 32 bits of a seed: streams offset above bit 32 were one stream.
    from beamkernels.train.sources import GeneratorSource

    cfg = _cfg(None, val_samples=4, batch_size=4, loss="mse")
    src = GeneratorSource(cfg, 0, 1, torch.device("cpu"))
    val, test, first = src.val_set()["H"], src.test_set()["H"], src.batch(0, 0, 0)["H"]
    assert not torch.equal(val, test) and not torch.equal(val, first) and not torch.equal(test, first)
    torch.testing.assert_close(src.val_set()["H"], val, rtol=0, atol=0)  # still seeded


def test_seeds_differing_above_32_bits_give_different_channels():
    from beamkernels.data import generate_channels

    a = generate_channels(1, seed=0, with_targets=False).H
    assert not torch.equal(generate_channels(1, seed=1 << 40, with_targets=False).H, a)
    torch.testing.assert_close(generate_channels(1, seed=0, with_targets=False).H, a, rtol=0, atol=0)


def test_report_ignores_a_best_checkpoint_left_by_an_earlier_run(tmp_path, capsys):
    out = tmp_path / "run"
    train(_cfg(out, epochs=1, seed=1))
    # A fresh run in the same directory, stopped before its first validation: no best of its own.
    r = train(_cfg(out, epochs=1, seed=2, time_budget_min=1e-9))
    assert r.report["info"]["evaluated_checkpoint"] == "last"
    assert "not this run's best checkpoint" in capsys.readouterr().out


def test_resume_with_more_epochs_stretches_the_schedule(tmp_path, capsys):
    import math

    train(_cfg(tmp_path, epochs=2, steps_per_epoch=2))  # cosine over 4 steps: at its floor at the end
    r = train(_cfg(tmp_path, epochs=4, steps_per_epoch=2, resume="auto"))
    assert r.step == 8
    assert "schedule now spans 8 steps (was 4)" in capsys.readouterr().out
    lrs = load_checkpoint(str(tmp_path / "last.pt"), torch.device("cpu"))["history"]["lr"]
    # per-epoch learning rates of a run planned for 8 steps from step 4 on: cos at 6/8 and 8/8
    lr, floor = 1e-3, 1e-5
    want = [floor + (lr - floor) * (1 + math.cos(math.pi * t / 8)) / 2 for t in (6, 8)]
    torch.testing.assert_close(torch.tensor(lrs[2:]), torch.tensor(want), rtol=1e-6, atol=1e-9)
    assert lrs[3] < lrs[2]  # annealing down, not climbing back up


def test_sweep_accepts_negative_snrs(tmp_path):
    import argparse

    from beamkernels.train.config import add_train_arguments, config_from_args

    p = argparse.ArgumentParser()
    add_train_arguments(p)
    assert config_from_args(p.parse_args(["--sweep-db", "-10", "0", "10"])).sweep_db == (-10.0, 0.0, 10.0)
    assert config_from_args(p.parse_args(["--sweep-db=-10,0,10"])).sweep_db == (-10.0, 0.0, 10.0)
    assert config_from_args(p.parse_args(["--sweep-db", "0,5"])).sweep_db == (0.0, 5.0)
    with pytest.raises(ValueError, match="expected numbers"):
        config_from_args(p.parse_args(["--sweep-db", "ten"]))
