"""Run under torchrun: every process gives `HealthMonitor.check` the same gathered embeddings (a spread-out set at
step 0, a collapsed one at step 2) and writes `<output_dir>/health_rank<R>.json`: how many times it computed the health
metrics, and the collapse reasons it got back."""

import json
import os
import sys
from pathlib import Path

import torch
from accelerate import Accelerator

from brainharmonix_hf.training import loop

if __name__ == "__main__":
    output_dir = Path(sys.argv[1])
    accelerator = Accelerator(cpu=True)
    computed = []
    health = loop.representation_health

    def counted_health(embeddings):
        computed.append(len(embeddings))
        return health(embeddings)

    loop.representation_health = counted_health
    monitor = loop.HealthMonitor(loop.RunLog(accelerator, output_dir / "log.jsonl", None))
    generator = torch.Generator().manual_seed(0)
    spread = torch.randn(8, 16, generator=generator)
    collapsed = spread.mean(0, keepdim=True) + 1e-4 * torch.randn(8, 16, generator=generator)
    results = [monitor.check(embeddings, step) for step, embeddings in ((0, spread), (2, collapsed))]
    record = {"computed": computed, "reasons": [reasons for _, reasons in results]}
    (output_dir / f"health_rank{os.environ.get('RANK', '0')}.json").write_text(json.dumps(record))
    accelerator.end_training()
