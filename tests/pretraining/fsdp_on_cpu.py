"""`fsdp_on_cpu.py <worker.py> <arguments>`: run a worker script of this folder under FSDP2 on CPU processes (gloo),
launched with the shipped `configs/accelerate/fsdp2.yaml`.

Accelerate 1.16 enables FSDP only on accelerator devices: with `ACCELERATE_USE_CPU=1` its `AcceleratorState` stays
`MULTI_CPU` and drops the FSDP plugin (the FSDP switch sits in the branch for MULTI_GPU/NPU/XPU/... device types), so
the config would train unsharded. This script lifts that one gate and nothing else: it starts the Accelerate state as
launched (CPU, gloo), then marks it FSDP with the plugin the launcher's environment describes (the YAML's
`fsdp_config`). From there the real code runs: `fully_shard` per `_no_split_modules` block, DTensor parameters,
sharded (DCP) checkpoints, the full state dict gathered for export.
"""

import runpy
import sys

from accelerate import Accelerator
from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

if __name__ == "__main__":
    Accelerator()
    state = AcceleratorState()
    state.distributed_type = PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    state.fsdp_plugin = FullyShardedDataParallelPlugin()
    worker, sys.argv = sys.argv[1], sys.argv[1:]
    runpy.run_path(worker, run_name="__main__")
