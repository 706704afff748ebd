"""Backbones: parameter counts against the published architectures, stage strides and
shapes, width-multiplier rounding, and pool_resnet's compute saving."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from facespot.models.backbones import BACKBONES, build_backbone
from facespot.models.backbones.blocks import SqueezeExcite, make_divisible
from facespot.models.backbones.mobilenet_v2 import mobilenet_v2
from facespot.models.backbones.resnet import BasicBlock


def _params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _macs(m: nn.Module, h: int, w: int) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        m.eval()(torch.zeros(1, 3, h, w, device=next(m.parameters()).device))
    return counter.get_total_flops() // 2


# Published totals (torchvision's ImageNet models) minus their classifiers, which the
# backbones do not build:
#   resnet18  11,689,512 - (512*1000 + 1000)            = 11,176,512
#   resnet50  25,557,032 - (2048*1000 + 1000)           = 23,508,032
#   resnet101 44,549,160 - (2048*1000 + 1000)           = 42,500,160
#   mobilenet_v2 3,504,872 - (1280*1000 + 1000)         =  2,223,872
#   mobilenet_v3_large 5,483,032 - (960*1280 + 1280) - (1280*1000 + 1000) = 2,971,952
#   mobilenet_v3_small 2,542,856 - (576*1024 + 1024) - (1024*1000 + 1000) =   927,008
@pytest.mark.parametrize(
    "name, expected",
    [
        ("resnet18", 11_176_512),
        ("resnet50", 23_508_032),
        ("resnet101", 42_500_160),
        ("mobilenet_v2", 2_223_872),
        ("mobilenet_v3_large", 2_971_952),
        ("mobilenet_v3_small", 927_008),
    ],
)
def test_parameter_counts_match_published_architectures(name, expected):
    with torch.device("meta"):  # counts only: allocate nothing
        net = build_backbone(name)
    assert _params(net) == expected


@pytest.mark.parametrize(
    "name, strides, channels",
    [
        ("resnet18", [4, 8, 16, 32], [64, 128, 256, 512]),
        ("resnet50", [4, 8, 16, 32], [256, 512, 1024, 2048]),
        ("pool_resnet", [8, 16, 32, 64], [64, 128, 256, 512]),
        ("mobilenet_v2", [4, 8, 16, 32], [24, 32, 96, 1280]),
        ("mobilenet_v3", [4, 8, 16, 32], [24, 40, 112, 960]),
        ("mobilenet_v3_small", [4, 8, 16, 32], [16, 24, 48, 576]),
    ],
)
def test_stage_strides_channels_and_shapes(name, strides, channels):
    torch.manual_seed(0)
    net = build_backbone(name).eval()
    assert net.strides == strides and net.channels == channels
    h, w = 67, 45  # odd sizes: every stride-2 layer must give ceil(n / 2)
    with torch.no_grad():
        feats = net(torch.randn(1, 3, h, w))
    assert len(feats) == len(strides)
    for f, s, c in zip(feats, strides, channels):
        assert tuple(f.shape) == (1, c, math.ceil(h / s), math.ceil(w / s))
        assert torch.isfinite(f).all()


def test_max_stride_drops_deeper_stages():
    with torch.device("meta"):
        full = build_backbone("resnet50")
        cut = build_backbone("resnet50", max_stride=16)
    assert cut.strides == [4, 8, 16] and cut.names == ["res2", "res3", "res4"]
    # res5 of ResNet-50: 3 bottlenecks (512 wide, 2048 out) + projection shortcut
    res5 = 0
    in_ch = 1024
    for _ in range(3):
        res5 += in_ch * 512 + 2 * 512 + 512 * 512 * 9 + 2 * 512 + 512 * 2048 + 2 * 2048
        in_ch = 2048
    res5 += 1024 * 2048 + 2 * 2048
    assert _params(full) - _params(cut) == res5
    with pytest.raises(ValueError):
        build_backbone("pool_resnet", max_stride=4)


def test_make_divisible_rounds_to_eight_without_losing_ten_percent():
    assert make_divisible(32 * 0.35) == 16  # 11.2 -> 8 would lose >10 %, so 16
    assert make_divisible(24 * 0.75) == 24  # 18 -> 16 would lose >10 %, so 24
    assert make_divisible(24 * 1.4) == 32  # 33.6 -> 32 (within 10 %)
    assert make_divisible(96 * 1.4) == 136  # 134.4 -> 136
    assert make_divisible(3) == 8  # never below the divisor


@pytest.mark.parametrize(
    "alpha, channels",
    [(0.5, [16, 16, 48, 1280]), (0.75, [24, 24, 72, 1280]), (1.4, [32, 48, 136, 1792])],
)
def test_mobilenet_v2_width_multiplier(alpha, channels):
    with torch.device("meta"):
        net = mobilenet_v2(alpha=alpha)
    assert net.channels == channels
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].out_channels == make_divisible(32 * alpha)
    assert all(m.out_channels % 8 == 0 for m in convs)


def test_mobilenet_v3_has_hswish_and_squeeze_excite():
    with torch.device("meta"):
        large = build_backbone("mobilenet_v3_large")
        small = build_backbone("mobilenet_v3_small")
    # paper Table 1: SE in 8 of 15 bneck layers (Large); Table 2: 9 of 11 (Small)
    assert sum(isinstance(m, SqueezeExcite) for m in large.modules()) == 8
    assert sum(isinstance(m, SqueezeExcite) for m in small.modules()) == 9
    assert any(isinstance(m, nn.Hardswish) for m in large.modules())
    kernels = {m.kernel_size for m in large.modules() if isinstance(m, nn.Conv2d) and m.groups > 1}
    assert kernels == {(3, 3), (5, 5)}


def test_pool_resnet_same_params_quarter_body_macs():
    torch.manual_seed(0)
    plain, pooled = build_backbone("resnet18"), build_backbone("pool_resnet")
    assert _params(plain) == _params(pooled)
    h = w = 128  # a multiple of 64, so every stage of both nets has exactly 1/4 the positions
    m_plain, m_pool = _macs(plain, h, w), _macs(pooled, h, w)
    stem = (h // 2) * (w // 2) * 64 * 3 * 7 * 7  # 7x7/2 conv, same in both
    assert m_pool == stem + (m_plain - stem) // 4
    assert m_pool < 0.35 * m_plain


def test_resnet18_macs_at_224_by_hand():
    """Conv multiply-adds of ResNet-18 at 224x224, layer by layer (torchvision: 1.81 G)."""
    conv1 = 112 * 112 * 64 * 3 * 49
    layer1 = 4 * (56 * 56 * 64 * 64 * 9)
    # layers 2-4 each: first 3x3/2 conv (c -> 2c), three 3x3 2c -> 2c, 1x1/2 projection;
    # every one of them has the same cost (channels double as positions quarter)
    later = 3 * (28 * 28 * 128 * 64 * 9 + 3 * 28 * 28 * 128 * 128 * 9 + 28 * 28 * 128 * 64)
    expected = conv1 + layer1 + later
    assert expected == 1_813_561_344
    with torch.device("meta"):
        net = build_backbone("resnet18")
    assert _macs(net, 224, 224) == expected


def test_zero_gamma_blocks_start_as_identity():
    block = BasicBlock(8, 8)
    for m in build_backbone("resnet18").modules():
        if isinstance(m, BasicBlock):
            assert torch.count_nonzero(m.bn2.weight) == 0
            break
    nn.init.zeros_(block.bn2.weight)
    block.eval()
    x = torch.rand(1, 8, 5, 5)  # non-negative, so relu(0 + x) == x
    assert torch.allclose(block(x), x)


def test_backward_through_every_backbone_is_finite():
    x = torch.randn(2, 3, 40, 40)
    for name in BACKBONES:
        if name == "resnet101":
            continue  # covered by the Tiny Faces step test
        torch.manual_seed(0)
        net = build_backbone(name).train()
        loss = sum(f.float().pow(2).mean() for f in net(x))
        loss.backward()
        grads = [p.grad for p in net.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), name


def test_unknown_backbone():
    with pytest.raises(ValueError, match="known"):
        build_backbone("vgg16")
