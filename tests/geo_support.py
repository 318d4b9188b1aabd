"""Test data for the geo features: a file with the structure of a SatCLIP checkpoint."""

from __future__ import annotations

import io

import torch


def satclip_checkpoint_bytes(degree: int = 5, capacity: int = 16, embed_dim: int = 8,
                             seed: int = 0) -> bytes:
    """A file with the structure of a SatCLIP Lightning checkpoint (random weights, a stand-in
    vision tensor), as ``torch.save`` writes it."""
    g = torch.Generator().manual_seed(seed)
    dims = [degree * degree, capacity, capacity]
    state = {"model.visual.conv1.weight": torch.randn(4, 13, 3, 3, generator=g)}
    for k in range(2):
        weight = torch.rand(dims[k + 1], dims[k], generator=g) - 0.5
        state[f"model.location.nnet.layers.{k}.weight"] = weight * 0.2
        state[f"model.location.nnet.layers.{k}.bias"] = (torch.rand(dims[k + 1], generator=g) - 0.5) * 0.2
    state["model.location.nnet.last_layer.weight"] = torch.randn(embed_dim, capacity, generator=g)
    state["model.location.nnet.last_layer.bias"] = torch.randn(embed_dim, generator=g)
    hp = {"embed_dim": embed_dim, "le_type": "sphericalharmonics", "pe_type": "siren",
          "legendre_polys": degree, "harmonics_calculation": "analytic", "num_hidden_layers": 2,
          "capacity": capacity, "vision_layers": "moco_resnet18", "learning_rate": 1e-4}
    buf = io.BytesIO()
    torch.save({"state_dict": state, "hyper_parameters": hp, "epoch": 3}, buf)
    return buf.getvalue()
