"""Fixtures for runtime tests: a tiny weights file."""

from __future__ import annotations

import pytest
import torch



@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """An untrained BlazeFace-front weights file (73k parameters: fast in every backend).

    Weights are perturbed with a fixed seed so scores are spread out rather than all at the prior.
    """
    from facespot.models import build
    from facespot.models.io import save_weights

    torch.manual_seed(0)
    model = build("blazeface_front")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_weights(model, path)
    return path


