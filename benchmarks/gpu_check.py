"""The table of `benchmarks/gpu_check.sh`: pretraining MFU of each stage and embedding throughput on one CUDA device.

Pretraining: the full-size models (`pretraining_throughput.py --preset base`), one training step under bfloat16
autocast with float32 weights (what `--mixed_precision bf16` runs), with `--attn_implementation` (flash attention when
the flash-attn package is installed, SDPA otherwise). MFU = model FLOP/s (counted as in `pretraining_throughput.py`)
over the device's dense bfloat16 peak (`--peak_tflops`, or the data-sheet figure of a known device); "of matmul" is the
fraction of an 8192³ bfloat16 matmul measured in alternation with the steps.

Embedding: `BrainHarmonixModel` at full size (ViT-B encoders and Harmonizer) with bfloat16 weights, inference only,
over sessions with a T1 volume and a 10-minute fMRI run at TR 2 s (300 frames: 17 of the 18 time patches real, so the
packed paths run): sessions per second for the model (preprocessing runs in CPU workers, not timed here).

    python benchmarks/gpu_check.py [--attn_implementation sdpa|flash_attention_2] [--batch_size 8]
        [--embed_batch_size 16] [--peak_tflops 989] [--note "..."]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).parent))
from pretraining_throughput import (
    ATTENTION_FLOPS,
    measure,
    stage_config,
    stage_model_and_batch,
)

from brainharmonix_hf import BrainHarmonixConfig, BrainHarmonixModel

# Dense bfloat16 peak (TFLOP/s, without sparsity) from the vendors' data sheets, by a name fragment of the device.
PEAK_TFLOPS = {"H200": 989.4, "H100": 989.4, "A100": 312.0, "L40S": 362.1, "L4": 121.0}
EMBED_FRAMES = 300
EMBED_ROUNDS = 5


def device_peak(name: str, given: float | None) -> float | None:
    if given:
        return given
    return next((peak for fragment, peak in PEAK_TFLOPS.items() if fragment in name), None)


def embedding_throughput(batch_size: int, attn_implementation: str) -> dict:
    """Sessions per second and FLOPs per session of the full-size composite in bfloat16, inference only."""
    device = torch.device("cuda")
    model = BrainHarmonixModel(BrainHarmonixConfig())
    model = model.to(device, torch.bfloat16).eval()
    generator = torch.Generator().manual_seed(0)
    inputs = {
        "pixel_values": torch.randn(batch_size, 1, 160, 192, 160, generator=generator),
        "fmri_values": torch.randn(batch_size, 400, EMBED_FRAMES, generator=generator),
    }
    inputs = {name: value.to(device, torch.bfloat16) for name, value in inputs.items()}
    inputs["repetition_time"] = torch.full((batch_size,), 2.0, device=device)

    def embed():
        with torch.inference_mode():
            model(**inputs)
        torch.cuda.synchronize()

    model.set_attn_implementation("sdpa")
    with FlopCounterMode(display=False, custom_mapping=ATTENTION_FLOPS) as counter:
        embed()
    model.set_attn_implementation(attn_implementation)
    embed()  # warm-up
    seconds = []
    for _ in range(EMBED_ROUNDS):
        start = time.perf_counter()
        embed()
        seconds.append(time.perf_counter() - start)
    return {"seconds": statistics.median(seconds), "flops": counter.get_total_flops()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attn_implementation", default="sdpa")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--embed_batch_size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peak_tflops", type=float, default=None)
    parser.add_argument("--note", action="append", default=[], help="A line printed under the table.")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gpu_check.py needs a CUDA device.")
    name = torch.cuda.get_device_name()
    peak = device_peak(name, args.peak_tflops)
    columns = ["check", "attention", "batch", "throughput", "TFLOP/s", "MFU", "of matmul"]
    rows = []

    def mfu(flops_per_second: float) -> str:
        return f"{flops_per_second / (peak * 1e12):.1%}" if peak else "n/a"

    generator = torch.Generator().manual_seed(0)
    for stage in ("structure", "function", "harmonizer"):
        model, batch = stage_model_and_batch(stage, stage_config(stage, "base"), args.batch_size, generator)
        result = measure(model, batch, torch.device("cuda"), torch.bfloat16, args.attn_implementation, args.rounds)
        del model, batch
        torch.cuda.empty_cache()
        achieved = result["flops"] / result["seconds"]
        rows.append(
            [
                f"pretrain {stage}",
                args.attn_implementation,
                str(args.batch_size),
                f"{args.batch_size / result['seconds']:.1f} samples/s",
                f"{achieved / 1e12:.1f}",
                mfu(achieved),
                f"{result['fraction']:.2f}",
            ]
        )
    result = embedding_throughput(args.embed_batch_size, args.attn_implementation)
    achieved = result["flops"] / result["seconds"]
    rows.append(
        [
            "embed (BrainHarmonixModel, bf16)",
            args.attn_implementation,
            str(args.embed_batch_size),
            f"{args.embed_batch_size / result['seconds']:.1f} sessions/s",
            f"{achieved / 1e12:.1f}",
            mfu(achieved),
            "",
        ]
    )
    print(f"\n{name}, torch {torch.__version__}, peak {peak or 'unknown'} TFLOP/s (dense bf16)")
    widths = [max(len(column), *(len(row[index]) for row in rows)) for index, column in enumerate(columns)]
    print("  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True)))
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    for note in args.note:
        print(note)


if __name__ == "__main__":
    main()
