"""Multi-GPU training with DistributedDataParallel, launched by ``torchrun``.

``torchrun`` sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` (and the rendezvous address)
in each process's environment; :func:`init_distributed` reads them, so the same
``facespot train`` command runs single-process or distributed unchanged::

    # one machine, 4 GPUs
    torchrun --standalone --nproc_per_node=4 -m facespot train configs/faceboxes_wider.yaml
    # two machines, 8 GPUs each (run on both; node_rank 0 and 1)
    torchrun --nnodes=2 --nproc_per_node=8 --node_rank=0 --master_addr=HOST0 --master_port=29500 \\
        -m facespot train configs/faceboxes_wider.yaml

``batch_size`` in the recipe is per process. Only rank 0 logs, validates and writes
checkpoints; the others wait at a barrier.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_info() -> DistInfo:
    """Rank facts from torchrun's environment variables (defaults: one process)."""
    return DistInfo(
        rank=int(os.environ.get("RANK", 0)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
    )


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group when launched by torchrun; a no-op otherwise.

    NCCL for CUDA, Gloo for CPU (so the DDP path can be exercised without GPUs).
    """
    info = env_info()
    if info.enabled and not dist.is_initialized():
        if device_type == "cuda":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo", init_method="env://")
    return info


def device_for(info: DistInfo, requested: str) -> torch.device:
    """The process's device: with DDP on CUDA each rank takes ``cuda:LOCAL_RANK``."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and info.enabled:
        return torch.device("cuda", info.local_rank)
    return torch.device(requested)


def barrier(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()


def all_reduce_sum(value: float, info: DistInfo, device: torch.device) -> float:
    """Sum a Python number over ranks (image counts, skipped images)."""
    if not (info.enabled and dist.is_initialized()):
        return value
    t = torch.tensor([float(value)], device=device)
    dist.all_reduce(t)
    return float(t.item())


def all_max(value: int, info: DistInfo, device: torch.device) -> int:
    """The largest of the ranks' values. Ranks agree through it before a step: one rank that
    skips a step or stops alone would leave the others waiting in the gradient all-reduce."""
    if not (info.enabled and dist.is_initialized()):
        return value
    t = torch.tensor([int(value)], dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
