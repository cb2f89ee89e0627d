"""The beamforming model zoo: channel H [B, K, Nr, Nt] (complex) in, precoder F [B, K, Nt, Ns]
and combiner W [B, K, Nr, Ns] (complex) out.

    >>> import beamkernels.models as zoo
    >>> zoo.list_models()
    ['complex-resnet', 'complex-unet', 'complex-unfolded', 'thesis-complex-cnn', 'thesis-real-encoder']
    >>> model = zoo.create("complex-unet", width=8)
    >>> F, W = model(H)

Built from beamkernels.nn layers (the real baseline from torch.nn), so the fused kernels run.
"""

from beamkernels.models.outputs import matched_combiner, normalize_columns, normalize_precoder, split_outputs
from beamkernels.models.registry import count_parameters, create, list_models, model_info, register
from beamkernels.models import thesis, unet, resnet, unfolded  # noqa: F401,E402  (registers the models)
from beamkernels.models.thesis import ThesisComplexCNN, ThesisRealEncoder
from beamkernels.models.unet import ComplexUNet
from beamkernels.models.resnet import ComplexResNet
from beamkernels.models.unfolded import ComplexUnfolded

__all__ = [
    "list_models", "create", "model_info", "register", "count_parameters",
    "normalize_precoder", "normalize_columns", "matched_combiner", "split_outputs",
    "ThesisRealEncoder", "ThesisComplexCNN", "ComplexUNet", "ComplexResNet", "ComplexUnfolded",
]
