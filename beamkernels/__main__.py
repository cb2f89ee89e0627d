"""Command line: ``beamkernels <command>`` or ``python -m beamkernels <command>``.

- ``train``: train a zoo model (``beamkernels train -h``); under ``torchrun --nproc_per_node N``
  it runs DistributedDataParallel.
- ``info``: build facts of the compiled extension and the backends that can run here.
- ``models``: the registered models with their shapes and parameter counts.
"""

from __future__ import annotations

import argparse
import json
import sys


def _info() -> int:
    import torch

    import beamkernels

    print(f"beamkernels {beamkernels.__version__}, torch {torch.__version__}, "
          f"CUDA available: {torch.cuda.is_available()}")
    print("build_info:", json.dumps(beamkernels.build_info(), indent=1, default=str))
    print("available backends:", ", ".join(beamkernels.available_backends()))
    print("backend in use:", beamkernels.current_backend())
    return 0


def _models() -> int:
    from beamkernels import models

    for name in models.list_models():
        i = models.model_info(name)
        print(f"{name:22s} {i['parameters']:>12,} params  H {i['input']['H']} -> F {i['output']['F']}, "
              f"W {i['output']['W']}  {i['summary']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from beamkernels.train.config import add_train_arguments, config_from_args

    p = argparse.ArgumentParser(prog="beamkernels", description="beamkernels command line")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a zoo model", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_train_arguments(t)
    sub.add_parser("info", help="build info and available backends")
    sub.add_parser("models", help="list the model zoo")
    a = p.parse_args(argv)
    if a.command == "info":
        return _info()
    if a.command == "models":
        return _models()
    from beamkernels.train import steady_heap, train
    from beamkernels.train.loop import resolve_device

    try:
        cfg = config_from_args(a)
    except ValueError as e:
        p.error(str(e))
    if not a.no_steady_heap and resolve_device(cfg.device).type == "cpu":
        if steady_heap():
            print("beamkernels train: CPU heap kept between steps (glibc mallopt; --no-steady-heap to disable)")
    train(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
