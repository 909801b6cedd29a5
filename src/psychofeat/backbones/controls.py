"""Controls that separate what training taught a network from what its architecture gives for free.

- random: the framework's default initialisation, seeded (built by the registry).
- shuffled: each layer's pretrained values permuted across output channels and within each filter. Weight
  statistics (the histogram of every tensor) are kept exactly; learned spatial and cross-channel structure is not.
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def shuffle_weights(net: nn.Module, seed: int = 0) -> nn.Module:
    """Permute every parameter in place: output channels, then the elements within each filter.

    1-D parameters (biases, norm scales) are permuted across channels. Buffers (e.g. BatchNorm running
    statistics) are left unchanged, so normalisation still keeps activations in range.
    """
    gen = torch.Generator().manual_seed(seed)
    for _name, p in sorted(net.named_parameters()):
        flat = p.detach().reshape(p.shape[0], -1).cpu()
        out_perm = torch.randperm(flat.shape[0], generator=gen)
        flat = flat[out_perm]
        if flat.shape[1] > 1:
            idx = torch.argsort(torch.rand(flat.shape, generator=gen), dim=1)
            flat = torch.gather(flat, 1, idx)
        p.copy_(flat.reshape(p.shape).to(p.device, p.dtype))
    return net
