"""The training loop: seeded, resumable (checkpoints loaded with torch.load(weights_only=True)),
time-budgeted, single process or DistributedDataParallel under torchrun (gloo on CPU, nccl on
GPU; only rank 0 prints and writes)."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

from beamkernels.train.config import TrainConfig
from beamkernels.train.report import model_se, se_table, write_report
from beamkernels.train.sources import make_source


# ---- processes and devices ----
def _dist_env() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def resolve_device(name: str) -> torch.device:
    """--device: "auto" is cuda when a GPU is visible, else cpu."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def _device(cfg: TrainConfig, local_rank: int, world: int) -> torch.device:
    dev = resolve_device(cfg.device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda: no CUDA device is available here")
        if world > 1 and dev.index is None:
            dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    return dev


# ---- optimization ----
def compute_loss(name: str, batch: dict, F: torch.Tensor, W: torch.Tensor, snr_db: float) -> torch.Tensor:
    from beamkernels import losses

    if name == "mse":  # element-wise; has an irreducible floor (SVD phase ambiguity)
        return losses.element_mse(F, batch["Fopt"]) + losses.element_mse(W, batch["Wopt"])
    if name == "subspace":  # chordal distance, phase-invariant
        return losses.subspace_loss(F, batch["Fopt"]) + losses.subspace_loss(W, batch["Wopt"])
    if name == "rate":  # unsupervised: -SE
        return losses.neg_rate_loss(batch["H"], F, W, snr_db)
    raise ValueError(f"unknown loss {name!r}")


def make_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)


def make_scheduler(cfg: TrainConfig, opt, total_steps: int):
    """Stepped once per optimizer step."""
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total_steps), eta_min=cfg.lr * 0.01)
    if cfg.schedule == "step":  # x0.1 at 1/2 and 3/4 of the run
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[total_steps // 2, (3 * total_steps) // 4], gamma=0.1)
    return None


def _fast_forward(sched, cfg: TrainConfig, step: int, total_steps: int) -> None:
    """Put a fresh scheduler (built for total_steps) at `step`, in closed form: the learning rate a
    run planned for total_steps would have there."""
    base = cfg.lr
    if cfg.schedule == "cosine":
        eta_min, t = cfg.lr * 0.01, min(step, max(1, total_steps))
        lr = eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / max(1, total_steps))) / 2
    else:  # step: x0.1 at each milestone passed
        lr = base * 0.1 ** sum(step >= m for m in sched.milestones)
    for group in sched.optimizer.param_groups:
        group["lr"] = lr
    sched.last_epoch = step
    sched._last_lr = [lr for _ in sched.optimizer.param_groups]


# ---- checkpoints: plain types and tensors only, so weights_only=True loads them ----
def _rng_state(device: torch.device) -> dict:
    st = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        st["cuda"] = torch.cuda.get_rng_state(device)
    return st


def _set_rng_state(st: dict, device: torch.device) -> None:
    torch.set_rng_state(st["torch"])
    if device.type == "cuda" and "cuda" in st:
        torch.cuda.set_rng_state(st["cuda"], device)


def save_checkpoint(path: str, state: dict) -> None:
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: a crash never leaves a half-written checkpoint


def load_checkpoint(path: str, device: torch.device) -> dict:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--resume: no checkpoint at {path}")
    return torch.load(path, map_location=device, weights_only=True)


@dataclass
class TrainResult:
    """What ``train`` returns on every rank: the trained model (the best checkpoint's weights on
    rank 0 after the report, the last weights elsewhere), the step count, and the report (rank 0
    only, else None)."""

    model: torch.nn.Module
    rank: int
    world_size: int
    step: int
    report: dict | None


# ---- the loop ----
def train(cfg: TrainConfig) -> TrainResult:
    """Train ``cfg.model`` as configured (see TrainConfig and ``beamkernels train -h``)."""
    from beamkernels.models import count_parameters, create

    rank, world, local_rank = _dist_env()
    device = _device(cfg, local_rank, world)
    own_group = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        own_group = True
    main = rank == 0
    try:
        return _train(cfg, rank, world, device, main, create, count_parameters)
    finally:
        if own_group:
            dist.destroy_process_group()


def _train(cfg, rank, world, device, main, create, count_parameters) -> TrainResult:
    from tqdm.auto import tqdm

    t_start = time.monotonic()
    torch.manual_seed(cfg.seed)  # same init on every rank (DDP also broadcasts rank 0's)
    source = make_source(cfg, rank, world, device)
    model_kw = {**source.dims, **cfg.model_config}
    model = create(cfg.model, **model_kw).to(device)
    n_params = count_parameters(model)
    steps_per_epoch = source.steps_per_epoch
    total_steps = cfg.epochs * steps_per_epoch
    opt = make_optimizer(cfg, model.parameters())
    sched = make_scheduler(cfg, opt, total_steps)

    epoch, epoch_step, step, best = 0, 0, 0, -math.inf
    history: dict = {"step_loss": [], "epoch_loss": [], "val_se": [], "epoch_end_step": [], "lr": []}
    train_seconds = 0.0
    if cfg.out and main:
        os.makedirs(cfg.out, exist_ok=True)
    if cfg.resume:
        path = os.path.join(cfg.out, "last.pt") if cfg.resume == "auto" else cfg.resume
        ck = load_checkpoint(path, device)
        if ck["config"]["model"] != cfg.model:
            raise ValueError(f"--resume: the checkpoint is of model {ck['config']['model']!r}, not {cfg.model!r}")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        epoch, epoch_step, step, best = ck["epoch"], ck["epoch_step"], ck["step"], ck["best_se"]
        if sched is not None and ck.get("scheduler") is not None:
            old_total = ck.get("total_steps", ck["config"]["epochs"] * steps_per_epoch)
            if old_total == total_steps:
                sched.load_state_dict(ck["scheduler"])
            else:  # resumed with another --epochs: the schedule spans the new run, from this step on
                _fast_forward(sched, cfg, step, total_steps)
                if main:
                    print(f"resume: the {cfg.schedule} schedule now spans {total_steps} steps (was {old_total}); "
                          f"learning rate at step {step}: {opt.param_groups[0]['lr']:.3g}")
        history, train_seconds = ck["history"], ck["train_seconds"]
        _set_rng_state(ck["rng"], device)
        if main:
            print(f"resumed from {path}: epoch {epoch}, step {step}, best validation SE {best:.3f}")

    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    val = source.val_set() if main else None
    if main and "val_bound" not in history:
        from beamkernels.metrics import svd_bound

        history["val_bound"] = float(svd_bound(val["H"], source.dims["Ns"], cfg.snr_db))
    if main:
        print(f"beamkernels train: {cfg.model} ({n_params:,} parameters) on {device} x {world}; {source.describe()}")

    def checkpoint(name: str) -> None:
        state = {
            "model": model.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict() if sched is not None else None,
            "epoch": epoch, "epoch_step": epoch_step, "step": step, "best_se": best, "total_steps": total_steps,
            "history": history, "train_seconds": train_seconds, "rng": _rng_state(device),
            "config": cfg.to_dict(), "model_config": {k: v for k, v in model_kw.items()},
        }
        save_checkpoint(os.path.join(cfg.out, name), state)

    budget = cfg.time_budget_min * 60.0
    stopped = False
    t_run = time.monotonic()
    seconds_before = train_seconds
    while epoch < cfg.epochs and not stopped:
        net.train()
        losses = []
        bar = tqdm(total=steps_per_epoch, initial=epoch_step, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not (main and cfg.progress), leave=False, dynamic_ncols=True)
        while epoch_step < steps_per_epoch:
            batch = source.batch(epoch, epoch_step, step)
            F, W = net(batch["H"])
            loss = compute_loss(cfg.loss, batch, F, W, cfg.snr_db)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            step += 1
            epoch_step += 1
            lv = float(loss.detach())
            losses.append(lv)
            history["step_loss"].append(lv)
            bar.update(1)
            bar.set_postfix(loss=f"{lv:.4f}")
            train_seconds = seconds_before + time.monotonic() - t_run
            if budget > 0:
                over = torch.tensor([1.0 if train_seconds > budget else 0.0], device=device)
                if world > 1:
                    dist.all_reduce(over)  # every rank stops at the same step
                if over.item() > 0:
                    stopped = True
                    break
        bar.close()
        if epoch_step >= steps_per_epoch:  # a full epoch: validate
            epoch += 1
            epoch_step = 0
            if main:
                se = model_se(model, val["H"], cfg.snr_db, cfg.eval_batch_size)
                history["epoch_loss"].append(sum(losses) / max(1, len(losses)))
                history["val_se"].append(se)
                history["epoch_end_step"].append(step)
                history["lr"].append(opt.param_groups[0]["lr"])
                improved = se > best
                best = max(best, se)
                print(f"epoch {epoch}/{cfg.epochs}: loss {history['epoch_loss'][-1]:.4f}, validation SE at "
                      f"{cfg.snr_db:g} dB {se:.3f} (bound {history['val_bound']:.3f}), {train_seconds:.0f} s")
                checkpoint("last.pt")
                if improved:
                    checkpoint("best.pt")
        elif main:
            checkpoint("last.pt")  # stopped mid-epoch: resume continues from this step
        if world > 1:
            dist.barrier()

    if not main:
        return TrainResult(model, rank, world, step, None)
    if stopped:
        print(f"time budget of {cfg.time_budget_min:g} min reached at step {step}")
    evaluated = "last"
    best_path = os.path.join(cfg.out, "best.pt")
    # Only this run's best (its validation SE is the best this run saw): not one an earlier run
    # left in the same directory.
    if os.path.isfile(best_path):
        ck_best = load_checkpoint(best_path, device) if math.isfinite(best) else {}
        if ck_best.get("best_se") == best and ck_best["config"]["model"] == cfg.model:
            model.load_state_dict(ck_best["model"])
            evaluated = "best (by validation SE)"
        else:
            print(f"note: {best_path} is not this run's best checkpoint (left by an earlier run?): "
                  "the report evaluates the last weights")
    test = source.test_set()
    table = se_table(model, test, cfg.sweep_db, cfg.eval_batch_size, source.dims["Ns"], source.has_paths)
    info = {
        "data": source.describe(), "parameters": n_params, "world_size": world, "device": str(device),
        "steps": step, "epochs_done": epoch, "train_seconds": train_seconds, "stopped_by_budget": stopped,
        "evaluated_checkpoint": evaluated, "wall_seconds": time.monotonic() - t_start,
        "torch": torch.__version__,
    }
    report = write_report(cfg.out, cfg.to_dict(), info, table, history)
    h = report["headline"]
    if h is not None:
        msg = f"SE at {h['snr_db']:g} dB: {h['model']:.3f} = {100 * h['model_over_bound']:.1f}% of the SVD bound"
        if "omp" in h:
            msg += f", {100 * h['model_over_omp']:.1f}% of OMP"
        print(msg)
    print(f"report: {os.path.join(cfg.out, 'report.md')}")
    return TrainResult(model, rank, world, step, report)
