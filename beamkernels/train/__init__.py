"""Training of the zoo models: ``beamkernels train`` (see ``python -m beamkernels train -h``) or
``beamkernels.train.train(TrainConfig(...))`` from Python. Runs under torchrun for DDP."""

from beamkernels.train.config import TrainConfig, add_train_arguments, config_from_args, parse_model_config
from beamkernels.train.heap import steady_heap
from beamkernels.train.loop import TrainResult, compute_loss, load_checkpoint, train

__all__ = ["TrainConfig", "train", "add_train_arguments", "config_from_args", "parse_model_config",
           "compute_loss", "load_checkpoint", "TrainResult", "steady_heap"]
