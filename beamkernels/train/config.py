"""Training configuration: one dataclass, filled from the command line (``beamkernels train``)
or directly from Python, stored as plain types in checkpoints and reports."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field, fields

PRESETS = ("yu", "el-ayach-64x16", "el-ayach-256x64")
LOSSES = ("mse", "subspace", "rate")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("cosine", "step", "none")
DEFAULT_SWEEP = (-10.0, -5.0, 0.0, 5.0, 10.0, 15.0, 20.0)


@dataclass
class TrainConfig:
    model: str = "thesis-complex-cnn"
    model_config: dict = field(default_factory=dict)
    data: str = "generator"            # "generator" or a directory of .mat files
    preset: str = "yu"                 # channel preset of the generator
    loss: str = "subspace"
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "cosine"
    epochs: int = 10
    steps_per_epoch: int = 100         # generator: steps per epoch; .mat: at most this many (0 = all)
    batch_size: int = 32               # per process
    val_samples: int = 256
    snr_db: float = 10.0               # SNR of validation, of the rate loss, and of the report's headline
    sweep_db: tuple = DEFAULT_SWEEP    # SNRs of the final report
    seed: int = 0
    device: str = "auto"
    out: str = "runs/train"
    resume: str | None = None          # checkpoint path, or "auto" = <out>/last.pt
    time_budget_min: float = 0.0       # 0 = no limit; else stop (checkpoint + report) after this
    eval_batch_size: int = 64
    progress: bool = True

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}; got {self.loss!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}; got {self.schedule!r}")
        if self.data == "generator" and self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(PRESETS)}; got {self.preset!r}")
        for name in ("epochs", "batch_size", "val_samples", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.steps_per_epoch < 0 or (self.data == "generator" and self.steps_per_epoch < 1):
            raise ValueError(f"steps_per_epoch must be >= 1 for the generator (0 = whole dataset for .mat), got {self.steps_per_epoch}")
        self.sweep_db = tuple(float(s) for s in self.sweep_db)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sweep_db"] = list(self.sweep_db)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_model_config(items: list[str]) -> dict:
    """Model config from JSON objects and/or key=value pairs (values parsed as JSON when they
    can be: width=8 -> 8, activation=cardioid -> "cardioid")."""
    out: dict = {}
    for item in items or []:
        item = item.strip()
        if item.startswith("{"):
            obj = json.loads(item)
            if not isinstance(obj, dict):
                raise ValueError(f"--model-config: a JSON value must be an object, got {item!r}")
            out.update(obj)
        elif "=" in item:
            k, v = item.split("=", 1)
            out[k.strip()] = _parse_value(v.strip())
        else:
            raise ValueError(f"--model-config: expected key=value or a JSON object, got {item!r}")
    return out


def _parse_sweep(items) -> tuple:
    """--sweep-db values: numbers, each item possibly a comma-separated list."""
    if isinstance(items, str):
        items = [items]
    out = []
    for item in items:
        for s in str(item).split(","):
            if not s.strip():
                continue
            try:
                out.append(float(s))
            except ValueError:
                raise ValueError(f"--sweep-db: expected numbers (dB), got {s.strip()!r}") from None
    if not out:
        raise ValueError("--sweep-db: give at least one SNR")
    return tuple(out)


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    p.add_argument("--model", default=d.model, help="zoo model name (see `beamkernels models`); default %(default)s")
    p.add_argument("--model-config", "-c", action="append", default=[], metavar="KEY=VALUE|JSON",
                   help="model config, repeatable: width=8, activation=cardioid, or '{\"width\": 8}'")
    p.add_argument("--width", type=int, help="shortcut for --model-config width=N")
    p.add_argument("--activation", help="shortcut for --model-config activation=NAME (complex models)")
    p.add_argument("--data", default=d.data, help="'generator' (channels drawn on the fly) or a directory of .mat files")
    p.add_argument("--preset", default=d.preset, choices=PRESETS, help="generator channel preset; default %(default)s")
    p.add_argument("--loss", default=d.loss, choices=LOSSES, help="mse (element), subspace (chordal), rate (-SE); default %(default)s")
    p.add_argument("--optimizer", default=d.optimizer, choices=OPTIMIZERS)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--schedule", default=d.schedule, choices=SCHEDULES, help="per-step learning-rate schedule")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--steps-per-epoch", type=int, default=d.steps_per_epoch)
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="per process")
    p.add_argument("--val-samples", type=int, default=d.val_samples)
    p.add_argument("--snr-db", type=float, default=d.snr_db, help="SNR of validation and of the rate loss")
    p.add_argument("--sweep-db", nargs="+", default=[int(s) if float(s).is_integer() else s for s in d.sweep_db], metavar="DB",
                   help="SNRs of the final report: --sweep-db -10 0 10, or comma-separated as one value "
                        "(--sweep-db=-10,0,10 when the list starts with a minus sign)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--out", default=d.out, help="output directory (checkpoints, report, plots)")
    p.add_argument("--resume", nargs="?", const="auto", default=None, help="checkpoint to resume from (no value: <out>/last.pt)")
    p.add_argument("--time-budget-min", type=float, default=d.time_budget_min, help="stop after this many minutes (0 = no limit)")
    p.add_argument("--eval-batch-size", type=int, default=d.eval_batch_size)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--no-steady-heap", action="store_true",
                   help="on the CPU, leave glibc's allocator as it is (without it, freed memory stays in the heap, "
                        "beamkernels.train.steady_heap: no page faults on every step's activations)")


def config_from_args(a: argparse.Namespace) -> TrainConfig:
    mc = parse_model_config(a.model_config)
    if a.width is not None:
        mc["width"] = a.width
    if a.activation is not None:
        mc["activation"] = a.activation
    return TrainConfig(
        model=a.model, model_config=mc, data=a.data, preset=a.preset, loss=a.loss, optimizer=a.optimizer,
        lr=a.lr, weight_decay=a.weight_decay, schedule=a.schedule, epochs=a.epochs,
        steps_per_epoch=a.steps_per_epoch, batch_size=a.batch_size, val_samples=a.val_samples,
        snr_db=a.snr_db, sweep_db=_parse_sweep(a.sweep_db),
        seed=a.seed, device=a.device, out=a.out, resume=a.resume, time_budget_min=a.time_budget_min,
        eval_batch_size=a.eval_batch_size, progress=not a.no_progress,
    )
