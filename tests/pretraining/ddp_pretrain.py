"""Run under torchrun or `accelerate launch`: pretrain with the given flags, then write this process's parameters to
`<output_dir>/rank<R>.safetensors` (rank from the environment). FSDP2-sharded parameters are written as this
process's shard (dim-0 chunk `R`), named in the file's metadata `sharded`; `gathered_parameters` puts them together."""

import json
import os
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch.distributed.tensor import DTensor

from brainharmonix_hf.training.pretrain import parse_arguments, train


def main(argv: list[str]) -> None:
    args = parse_arguments(argv)
    model = train(args)
    parameters, sharded = {}, []
    for name, parameter in model.named_parameters():
        if isinstance(parameter, DTensor):
            sharded.append(name)
            parameter = parameter.to_local()
        parameters[name] = parameter.detach().contiguous()
    rank = os.environ.get("RANK", "0")
    save_file(parameters, str(Path(args.output_dir) / f"rank{rank}.safetensors"), {"sharded": json.dumps(sharded)})


def gathered_parameters(output_dir: Path, num_processes: int = 2) -> list[dict[str, torch.Tensor]]:
    """Each process's whole parameters: its own for replicated ones, the dim-0 concatenation of every process's shard
    for sharded ones."""
    files = [Path(output_dir) / f"rank{rank}.safetensors" for rank in range(num_processes)]
    ranks = []
    for file in files:
        with safe_open(file, "pt") as handle:
            ranks.append(({name: handle.get_tensor(name) for name in handle.keys()}, handle.metadata()))
    whole = []
    for parameters, metadata in ranks:
        sharded = json.loads(metadata["sharded"])
        whole.append(parameters | {name: torch.cat([other[name] for other, _ in ranks]) for name in sharded})
    return whole


if __name__ == "__main__":
    main(sys.argv[1:])
