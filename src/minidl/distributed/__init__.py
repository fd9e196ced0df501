"""minidl.distributed: data-parallel training on torch.distributed (gloo on CPU, nccl on CUDA).

- ``context.py``: ``init_from_env`` (torchrun's environment -> a ``DistContext``), the batch split and the
  collectives (one all-reduce of one flat gradient buffer per step, parameter broadcast, metric sums);
- ``flat_grads.py``: ``flat_gradients``, one flat buffer over any parameters' grads (the
  optimizer's own packing when it made one, which is what ``DistributedTrainer`` all-reduces);
- ``trainer.py``: ``DistributedTrainer``, the Trainer whose step averages gradients across ranks;
- ``launch.py``: ``launch(nproc, argv)``, torchrun on 127.0.0.1 for ``minidl train --nproc N``.
"""

from minidl.distributed.context import (
    DistContext,
    all_reduce_flat,
    all_reduce_gradients,
    all_reduce_sum,
    broadcast_parameters,
    init_from_env,
    parallel_device,
    shard_bounds,
)
from minidl.distributed.flat_grads import flat_gradients

__all__ = [
    "DistContext",
    "all_reduce_flat",
    "all_reduce_gradients",
    "all_reduce_sum",
    "broadcast_parameters",
    "flat_gradients",
    "init_from_env",
    "parallel_device",
    "shard_bounds",
]
