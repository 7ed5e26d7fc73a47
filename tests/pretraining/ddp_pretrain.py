"""Run under torchrun: pretrain with the given flags, then write this process's parameters to
`<output_dir>/rank<R>.safetensors` (rank from the environment)."""

import os
import sys
from pathlib import Path

from safetensors.torch import save_file

from brainharmonix_hf.training.pretrain import parse_arguments, train

if __name__ == "__main__":
    args = parse_arguments(sys.argv[1:])
    model = train(args)
    parameters = {name: parameter.detach().contiguous() for name, parameter in model.named_parameters()}
    save_file(parameters, str(Path(args.output_dir) / f"rank{os.environ.get('RANK', '0')}.safetensors"))
