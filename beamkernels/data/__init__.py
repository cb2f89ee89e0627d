"""Channel data: the clustered wideband mmWave channel generator and its SVD targets, datasets
(generated on the fly, fixed, and MATLAB .mat files in the thesis layout), .mat export and the
target check. See README section "data, metrics, losses"."""

from beamkernels.data.channel import (
    ChannelBatch,
    ChannelConfig,
    generate_channels,
    optimal_precoders,
    truncated_laplace,
    upa_response,
)
from beamkernels.data.checks import ChannelDataError, check_targets
from beamkernels.data.datasets import ChannelDataset, GeneratedChannels, MatChannelDataset
from beamkernels.data.matio import load_mat, save_mat, write_mat_v73

__all__ = [
    "ChannelBatch",
    "ChannelConfig",
    "ChannelDataError",
    "ChannelDataset",
    "GeneratedChannels",
    "MatChannelDataset",
    "check_targets",
    "generate_channels",
    "load_mat",
    "optimal_precoders",
    "save_mat",
    "truncated_laplace",
    "upa_response",
    "write_mat_v73",
]
