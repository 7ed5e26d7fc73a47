"""Pretraining throughput of each stage on this machine: samples/s and FLOP/s as a fraction of a matmul's FLOP/s.

One training step = forward with the loss, backward, clipping and an AdamW step, on inputs of the real shapes:
T1 volumes (1, 160, 192, 160) -> 1200 patches; fMRI series of 400 ROIs at TR 2.0 s filling the 18 time patches
(7200 tokens) with JEPA masks from the stage's collator sampler; Harmonizer latents of 7200 + 1200 tokens. Models are
the published token grids at a reduced width and depth (`--preset small`, the default, so a CPU finishes in about a
minute) or at full size (`--preset base`).

FLOPs per step come from `torch.utils.flop_counter.FlopCounterMode` over one step with eager attention (forward and
backward; the optimizer's element-wise work is not counted). The baseline is an (N × D) @ (D × 4D) matrix product in
the same dtype (N = 1024 tokens, D = the model width), timed in the same run. Each figure is the best of `--rounds`.

    python benchmarks/pretraining_throughput.py [--preset small|base] [--batch_size 1] [--device cpu|cuda]
"""

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from brainharmonix_hf import (
    FunctionJEPAConfig,
    FunctionJEPAForPreTraining,
    HarmonizerConfig,
    HarmonizerForPreTraining,
    SpatiotemporalMaskSampler,
    StructureMAEConfig,
    StructureMAEForPreTraining,
)

MATMUL_REPEATS = 20
PRESETS = {
    "small": {"hidden_size": 192, "num_hidden_layers": 4, "num_attention_heads": 3, "intermediate_size": 768},
    "base": {},
}
SMALL_DECODER = {
    "decoder_hidden_size": 128,
    "decoder_num_hidden_layers": 2,
    "decoder_num_attention_heads": 4,
    "decoder_intermediate_size": 512,
}
SMALL_PREDICTOR = {
    "predictor_hidden_size": 96,
    "predictor_num_hidden_layers": 2,
    "predictor_num_attention_heads": 3,
    "predictor_intermediate_size": 384,
}


def stage_model_and_batch(stage: str, preset: str, batch_size: int, generator: torch.Generator):
    width = PRESETS[preset]
    small = preset == "small"
    if stage == "structure":
        model = StructureMAEForPreTraining(StructureMAEConfig(**width, **(SMALL_DECODER if small else {})))
        batch = {"pixel_values": torch.randn(batch_size, 1, 160, 192, 160, generator=generator)}
    elif stage == "function":
        config = FunctionJEPAConfig(**width, **(SMALL_PREDICTOR if small else {}))
        model = FunctionJEPAForPreTraining(config)
        masks = SpatiotemporalMaskSampler.from_config(config)(
            torch.full((batch_size,), config.num_time_patches), generator=generator
        )
        batch = {
            "fmri_values": torch.randn(batch_size, 400, 18 * 18, generator=generator),
            "repetition_time": torch.full((batch_size,), 2.0),
            "context_indices": masks.context_indices,
            "target_indices": masks.target_indices,
        }
    else:
        latent = 768
        config = HarmonizerConfig(
            **width, **(SMALL_DECODER if small else {}), latent_size=latent, **({"num_hub_tokens": 32} if small else {})
        )
        model = HarmonizerForPreTraining(config)
        batch = {
            "fmri_latents": torch.randn(batch_size, config.num_fmri_tokens, latent, generator=generator),
            "t1_latents": torch.randn(batch_size, config.num_t1_tokens, latent, generator=generator),
        }
    return model, batch


def best_seconds(run, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=tuple(PRESETS), default="small")
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--stages", nargs="+", default=["structure", "function", "harmonizer"])
    args = parser.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    print(f"preset {args.preset}, batch {args.batch_size}, float32, {device}, {torch.get_num_threads()} threads")
    print(f"{'stage':<11} {'samples/s':>10} {'GFLOP/step':>11} {'GFLOP/s':>9} {'matmul GFLOP/s':>15} {'fraction':>9}")
    generator = torch.Generator().manual_seed(0)
    for stage in args.stages:
        model, batch = stage_model_and_batch(stage, args.preset, args.batch_size, generator)
        seconds, flops, matmul_flops = measure(model, batch, device, sync, args.rounds)
        achieved = flops / seconds
        print(
            f"{stage:<11} {args.batch_size / seconds:>10.2f} {flops / 1e9:>11.1f} {achieved / 1e9:>9.1f} "
            f"{matmul_flops / 1e9:>15.1f} {achieved / matmul_flops:>9.2f}"
        )


def measure(model, batch: dict, device: torch.device, sync, rounds: int) -> tuple[float, int, float]:
    """Seconds per training step, FLOPs per step, and the baseline matmul's FLOP/s."""
    model.to(device).train()
    batch = {name: value.to(device) for name, value in batch.items()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step():
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        sync()

    model.set_attn_implementation("eager")
    with FlopCounterMode(display=False) as counter:
        model(**batch).loss.backward()
    optimizer.zero_grad()
    model.set_attn_implementation("sdpa")
    step()  # warm-up
    seconds = best_seconds(step, rounds)

    width = model.config.hidden_size
    left = torch.randn(1024, width, device=device)
    right = torch.randn(width, 4 * width, device=device)

    def matmul():
        for _ in range(MATMUL_REPEATS):
            left @ right
        sync()

    matmul_flops = MATMUL_REPEATS * 2 * 1024 * width * 4 * width / best_seconds(matmul, rounds)
    return seconds, counter.get_total_flops(), matmul_flops


if __name__ == "__main__":
    main()
