"""Building blocks shared by several model families.

Kept apart from the model files (as timm keeps ``layers/``) so that every family builds
its convolutions the same way and the MAC counter in :mod:`facespot.models.card` sees
plain ``nn.Conv2d`` / ``nn.Linear`` modules only.

Public API (stable; other families import it):

* :class:`ConvBNAct`  conv -> BatchNorm -> activation (``"relu"``, ``"relu6"``,
  ``"leaky"``, ``"silu"``, ``"prelu"``, ``"crelu"`` or ``None``);
* :class:`CReLU`  ``relu(cat(x, -x))`` (Shang et al. 2016), used by FaceBoxes' RDCL;
* :class:`DepthwiseSeparable`  depthwise kxk + pointwise 1x1 (MobileNet style);
* :func:`make_act`  activation by name;
* :func:`init_head`  small-normal init of prediction convs (RetinaNet-style), so an
  untrained model predicts boxes at its anchors and finite, moderate scores;
* :func:`flatten_head`  ``(B, k*C, H, W)`` head map -> ``(B, H*W*k, C)``, the anchor
  order every SSD-style model and :mod:`facespot.anchors` agree on (row-major over
  cells, then the ``k`` anchors of a cell).
"""

from __future__ import annotations

import torch
from torch import nn


class CReLU(nn.Module):
    """Concatenated ReLU: ``relu(cat(x, -x))`` doubles the channels for free.

    FaceBoxes (Zhang et al. 2017, section 3.1) uses it in the first layers because the
    filters there come in negated pairs (Shang et al., ICML 2016), so half of the
    convolutions can be dropped without losing accuracy.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(torch.cat([x, -x], dim=1))


def make_act(act: str | None, channels: int | None = None) -> nn.Module:
    """Activation module by name; ``None`` gives identity."""
    if act is None or act == "none":
        return nn.Identity()
    if act == "relu":
        return nn.ReLU(inplace=True)
    if act == "relu6":
        return nn.ReLU6(inplace=True)
    if act == "leaky":
        return nn.LeakyReLU(0.1, inplace=True)
    if act == "silu":
        return nn.SiLU(inplace=True)
    if act == "prelu":
        return nn.PReLU(channels if channels is not None else 1)
    if act == "crelu":
        return CReLU()
    raise ValueError(f"unknown activation {act!r}")


class ConvBNAct(nn.Sequential):
    """``Conv2d -> BatchNorm2d -> activation`` with "same" padding by default.

    With ``act="crelu"`` the output has ``2 * out_ch`` channels (see :class:`CReLU`).
    ``bn=False`` gives a biased conv instead of conv + BN.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        groups: int = 1,
        dilation: int = 1,
        act: str | None = "relu",
        bn: bool = True,
    ) -> None:
        if padding is None:
            padding = dilation * (kernel_size - 1) // 2
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, dilation=dilation, groups=groups, bias=not bn)
        ]
        if bn:
            layers.append(nn.BatchNorm2d(out_ch))
        layers.append(make_act(act, out_ch))
        super().__init__(*layers)
        self.out_channels = out_ch * 2 if act == "crelu" else out_ch


class DepthwiseSeparable(nn.Sequential):
    """Depthwise ``k x k`` (BN, act) then pointwise ``1 x 1`` (BN, act)."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1, act: str | None = "relu"
    ) -> None:
        super().__init__(
            ConvBNAct(in_ch, in_ch, kernel_size, stride, groups=in_ch, act=act),
            ConvBNAct(in_ch, out_ch, 1, act=act),
        )
        self.out_channels = out_ch


def flatten_head(x: torch.Tensor, values_per_anchor: int) -> torch.Tensor:
    """``(B, k * C, H, W)`` -> ``(B, H * W * k, C)``.

    The flat anchor index is ``(row * W + col) * k + j``: cells in row-major order,
    the ``k`` anchors of one cell contiguous. :mod:`facespot.anchors` emits anchors in
    exactly this order.
    """
    b = x.shape[0]
    return x.permute(0, 2, 3, 1).reshape(b, -1, values_per_anchor)


def init_head(*convs: nn.Module, std: float = 0.01, bias: float = 0.0) -> None:
    """Normal(0, ``std``) weights and constant bias for prediction convs.

    Default init gives head outputs of several units on ReLU features, i.e. boxes far
    from their anchors (``exp`` of large size deltas) at step 0; small weights start
    training from the anchors themselves (Lin et al., RetinaNet, section 4.1).
    """
    for conv in convs:
        for m in conv.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, std=std)
                if m.bias is not None:
                    nn.init.constant_(m.bias, bias)
