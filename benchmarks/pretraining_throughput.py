"""Pretraining throughput of each stage on this machine: a training step's FLOP/s as a fraction of a matmul's FLOP/s
measured in alternation with it, and (`--data`) what the stage's data path costs per batch.

One training step = forward with the loss, backward, clipping and an AdamW step, on inputs of the real shapes:
T1 volumes (1, 160, 192, 160) -> 1200 patches; fMRI series of 400 ROIs at TR 2.0 s filling the 18 time patches
(7200 tokens) with JEPA masks from the stage's sampler; Harmonizer latents of 7200 + 1200 tokens. Models are the
published token grids at a reduced width and depth (`--preset small`, the default, so a CPU finishes in minutes) or at
full size (`--preset base`).

FLOPs per step are model FLOPs from `torch.utils.flop_counter.FlopCounterMode` over one step with SDPA attention, its
kernels counted as eager attention computes them (forward `Q·Kᵀ` and `A·V`, backward twice that; PyTorch's CPU
flash-attention kernels have no formula of their own, and recomputation inside a kernel is not counted); the optimizer's
element-wise work is not counted. The baseline is an (N × D) @ (D × 4D) matrix product (N = 1024 tokens, D = the model
width; 8192³ on CUDA) in the step's dtype; on CPU a 2048³ product too ("of 2048³"), nearer the machine's peak where
narrow products parallelise poorly. Each round times a block of matmuls, one step, and another block: the
round's fraction is the step's FLOP/s over the mean FLOP/s of its two blocks, so both see the same load on a shared
machine. The table gives the median fraction over the rounds and its range, the best step, the machine's load average
before and after, and, with `--peak_tflops`, the model FLOP utilisation (MFU = step FLOP/s / peak).

`--data` builds a small cohort from data that registry packages ship (nilearn's MNI152 T1, brainspace's LEMON run at
TR 1.4 s) and a latent cache of random latents, builds each stage's datasets and collator exactly as
`brainharmonix pretrain` does (`stage.build_data()`), and times a batch of items plus collation on one process: what a
step waits for with `--num_workers 0` ("data s/batch", and its share of data + step).

Timings are wall-clock; `--clock process` times with the process's CPU time instead, which waiting for a core does
not inflate: with 1 thread on a loaded, shared machine it measures the work itself.

    python benchmarks/pretraining_throughput.py [--preset small|base] [--batch_size 1] [--rounds 3] [--data]
        [--device cpu|cuda] [--dtype float32|bfloat16] [--attn_implementation sdpa|flash_attention_2]
        [--peak_tflops 989] [--clock wall|process]
"""

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from brainharmonix_hf import (
    FunctionJEPAConfig,
    FunctionJEPAForPreTraining,
    HarmonizerConfig,
    HarmonizerForPreTraining,
    SpatiotemporalMaskSampler,
    StructureMAEConfig,
    StructureMAEForPreTraining,
)

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
# Seconds each matmul block lasts at least.
BLOCK_SECONDS = 0.3
# The clock of every timing: wall time, or (`--clock process`) the CPU time of this process's threads, which time
# spent waiting for a core on a loaded machine does not count.
CLOCKS = {"wall": time.perf_counter, "process": time.process_time}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def _attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """Forward FLOPs of attention: the two products `Q·Kᵀ` and `A·V`."""
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _attention_backward_flops(grad_out_shape, query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    """Backward FLOPs of attention as the model defines them, twice the forward (the four products eager attention's
    backward computes); kernels that recompute the scores do more work than this."""
    return 2 * sdpa_flop_count(query_shape, key_shape, value_shape)


aten = torch.ops.aten
# Model FLOPs of every SDPA kernel, whatever it recomputes (CPU flash attention has no formula in PyTorch).
ATTENTION_FLOPS = {
    aten._scaled_dot_product_flash_attention_for_cpu: _attention_flops,
    aten._scaled_dot_product_flash_attention_for_cpu_backward: _attention_backward_flops,
    aten._scaled_dot_product_flash_attention_backward: _attention_backward_flops,
    aten._scaled_dot_product_efficient_attention_backward: _attention_backward_flops,
    aten._scaled_dot_product_cudnn_attention_backward: _attention_backward_flops,
}


def stage_config(stage: str, preset: str):
    width = PRESETS[preset]
    small = preset == "small"
    if stage == "structure":
        return StructureMAEConfig(**width, **(SMALL_DECODER if small else {}))
    if stage == "function":
        return FunctionJEPAConfig(**width, **(SMALL_PREDICTOR if small else {}))
    return HarmonizerConfig(
        **width, **(SMALL_DECODER if small else {}), latent_size=768, **({"num_hub_tokens": 32} if small else {})
    )


def stage_model_and_batch(stage: str, config, batch_size: int, generator: torch.Generator):
    if stage == "structure":
        model = StructureMAEForPreTraining(config)
        batch = {"pixel_values": torch.randn(batch_size, 1, *config.image_size, generator=generator)}
    elif stage == "function":
        model = FunctionJEPAForPreTraining(config)
        masks = SpatiotemporalMaskSampler.from_config(config)(
            torch.full((batch_size,), config.num_time_patches), generator=generator
        )
        frames = config.num_time_patches * 18  # TR 2.0 s: 18 frames per patch
        batch = {
            "fmri_values": torch.randn(batch_size, config.num_rois, frames, generator=generator),
            "repetition_time": torch.full((batch_size,), 2.0),
            "context_indices": masks.context_indices,
            "target_indices": masks.target_indices,
        }
    else:
        model = HarmonizerForPreTraining(config)
        batch = {
            "fmri_latents": torch.randn(batch_size, config.num_fmri_tokens, config.latent_size, generator=generator),
            "t1_latents": torch.randn(batch_size, config.num_t1_tokens, config.latent_size, generator=generator),
        }
    return model, batch


class Matmul:
    """A baseline: blocks of `(rows × inner) @ (inner × columns)` products lasting at least `BLOCK_SECONDS`."""

    def __init__(self, shape: tuple[int, int, int], device: torch.device, dtype: torch.dtype, sync, clock):
        rows, inner, columns = shape
        self.clock = clock
        self.left = torch.randn(rows, inner, device=device, dtype=dtype)
        self.right = torch.randn(inner, columns, device=device, dtype=dtype)
        self.flops = 2 * rows * inner * columns
        self.sync = sync
        self.repeats = 1
        while self.block() < BLOCK_SECONDS:
            self.repeats *= 2

    def block(self) -> float:
        """Seconds of one block."""
        self.sync()
        start = self.clock()
        for _ in range(self.repeats):
            self.left @ self.right
        self.sync()
        return self.clock() - start

    def flops_per_second(self) -> float:
        return self.repeats * self.flops / self.block()


def baseline_shapes(width: int, device: torch.device) -> dict[str, tuple[int, int, int]]:
    """The baselines: the model-width matmul `(1024 × D) @ (D × 4D)` and a large square one (2048³; on CUDA 8192³
    only), which runs closer to the machine's peak where small products parallelise poorly (2 CPU threads)."""
    if device.type == "cuda":
        return {"square": (8192, 8192, 8192)}
    return {"width": (1024, width, 4 * width), "square": (2048, 2048, 2048)}


def synchronizer(device: torch.device):
    """A function that waits for `device` to finish its queued work."""
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def measure(
    model,
    batch: dict,
    device: torch.device,
    dtype: torch.dtype,
    attn_implementation: str,
    rounds: int,
    clock=time.perf_counter,
) -> dict:
    """Step seconds and fractions of the interleaved matmul, FLOPs per step (see the module docstring); `dtype` other
    than float32 runs the step under autocast."""
    sync = synchronizer(device)
    model.to(device).train()
    batch = {name: value.to(device) for name, value in batch.items()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    autocast = torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else contextlib.nullcontext()

    def step():
        with autocast:
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        sync()

    model.set_attn_implementation("sdpa")
    with FlopCounterMode(display=False, custom_mapping=ATTENTION_FLOPS) as counter:
        step()
    flops = counter.get_total_flops()
    model.set_attn_implementation(attn_implementation)
    step()  # warm-up
    baselines = {
        name: Matmul(shape, device, dtype, sync, clock)
        for name, shape in baseline_shapes(model.config.hidden_size, device).items()
    }
    seconds, fractions, rates = [], {name: [] for name in baselines}, {name: [] for name in baselines}
    for _ in range(rounds):
        before = {name: matmul.flops_per_second() for name, matmul in baselines.items()}
        start = clock()
        step()
        seconds.append(clock() - start)
        after = {name: matmul.flops_per_second() for name, matmul in baselines.items()}
        for name in baselines:
            rates[name] += [before[name], after[name]]
            fractions[name].append(flops / seconds[-1] / ((before[name] + after[name]) / 2))
    first = next(iter(baselines))
    return {
        "seconds": min(seconds),
        "flops": flops,
        "matmul": statistics.median(rates[first]),
        "fraction": statistics.median(fractions[first]),
        "range": (min(fractions[first]), max(fractions[first])),
        "fractions": {name: statistics.median(values) for name, values in fractions.items()},
    }


def build_cohort(folder: Path, configs: dict) -> dict:
    """Files and arguments for `stage.build_data()`: a manifest of 4 subjects (the MNI152 T1, the LEMON run), a latent
    cache of 4 random subjects, each stage's config saved."""
    import datasets
    import nibabel as nib
    import numpy as np

    from brainharmonix_hf import sample_data
    from brainharmonix_hf.training.latent_cache import LatentCacheInfo, cache_features, latents_to_bytes
    from brainharmonix_hf.training.manifest import load_manifest

    nib.save(sample_data.load_t1_sample(), folder / "t1.nii.gz")
    np.save(folder / "lemon.npy", sample_data.load_fmri_sample().series)
    rows = [f"s{index},,{folder / 't1.nii.gz'},{folder / 'lemon.npy'},1.4,train" for index in range(4)]
    (folder / "manifest.csv").write_text("subject,session,t1,fmri,repetition_time,split\n" + "\n".join(rows) + "\n")
    for stage, config in configs.items():
        config.save_pretrained(folder / f"{stage}_config")
    if "harmonizer" in configs:
        config = configs["harmonizer"]
        manifest = load_manifest(str(folder / "manifest.csv"))
        generator = torch.Generator().manual_seed(0)
        columns = {
            "subject": manifest["subject"],
            "session": manifest["session"],
            "fmri_latents": [
                latents_to_bytes(
                    torch.randn(config.num_fmri_tokens, config.latent_size, generator=generator), torch.bfloat16
                )
                for _ in range(4)
            ],
            "fmri_token_mask": [bytes([1]) * config.num_fmri_tokens] * 4,
            "t1_latents": [
                latents_to_bytes(
                    torch.randn(config.num_t1_tokens, config.latent_size, generator=generator), torch.bfloat16
                )
                for _ in range(4)
            ],
            "has_t1": [True] * 4,
            "has_fmri": [True] * 4,
            "label": manifest["label"],
            "site": manifest["site"],
            "split": manifest["split"],
        }
        cache = datasets.Dataset.from_dict(columns, features=cache_features(manifest))
        cache.info.description = LatentCacheInfo(
            latent_dtype="bfloat16",
            num_fmri_tokens=config.num_fmri_tokens,
            num_t1_tokens=config.num_t1_tokens,
            latent_size=config.latent_size,
            model="random",
        ).to_json()
        cache.save_to_disk(str(folder / "latents"))
    return {"manifest": str(folder / "manifest.csv"), "latents": str(folder / "latents")}


def data_seconds(stage: str, folder: Path, files: dict, batch_size: int, rounds: int, clock) -> float:
    """Median seconds to read and collate one batch through the stage's own datasets and collator."""
    from brainharmonix_hf.training.arguments import PretrainingArguments
    from brainharmonix_hf.training.stages import get_stage

    args = PretrainingArguments(
        stage=stage, output_dir=str(folder / "run"), model_config=str(folder / f"{stage}_config"), **files
    )
    data = get_stage(stage)(args).build_data()
    indices = [index % len(data.train) for index in range(batch_size)]
    data.collator([data.train[index] for index in indices])  # warm-up: processor caches
    times = []
    for epoch in range(rounds):
        data.train.set_epoch(epoch + 1)
        start = clock()
        data.collator([data.train[index] for index in indices])
        times.append(clock() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=tuple(PRESETS), default="small")
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="float32")
    parser.add_argument("--attn_implementation", default="sdpa")
    parser.add_argument("--peak_tflops", type=float, default=None, help="Peak FLOP/s of the device, for MFU.")
    parser.add_argument("--data", action="store_true", help="Also time each stage's data path per batch.")
    parser.add_argument(
        "--clock",
        choices=tuple(CLOCKS),
        default="wall",
        help="wall time, or the process's CPU time (robust to a loaded machine with 1 thread; CPU only)",
    )
    parser.add_argument("--stages", nargs="+", default=["structure", "function", "harmonizer"])
    args = parser.parse_args()
    clock = CLOCKS[args.clock]
    device = torch.device(args.device)
    load_before = os.getloadavg()
    print(
        f"preset {args.preset}, batch {args.batch_size}, {args.dtype}, {args.attn_implementation}, {device}, "
        f"{torch.get_num_threads()} threads, {args.rounds} rounds, {args.clock} clock; load average before "
        f"{load_before[0]:.2f}"
    )
    configs = {stage: stage_config(stage, args.preset) for stage in args.stages}
    folder = Path(tempfile.mkdtemp(prefix="throughput-"))
    files = build_cohort(folder, configs) if args.data else None
    columns = ["stage", "samples/s", "GFLOP/step", "GFLOP/s", "matmul GFLOP/s", "fraction", "range"]
    columns += ["of 2048³"] if device.type != "cuda" else []
    columns += ["MFU"] if args.peak_tflops else []
    columns += ["data s/batch", "data share"] if args.data else []
    rows = []
    generator = torch.Generator().manual_seed(0)
    for stage in args.stages:
        model, batch = stage_model_and_batch(stage, configs[stage], args.batch_size, generator)
        result = measure(model, batch, device, DTYPES[args.dtype], args.attn_implementation, args.rounds, clock)
        del model, batch
        achieved = result["flops"] / result["seconds"]
        row = [
            stage,
            f"{args.batch_size / result['seconds']:.3g}",
            f"{result['flops'] / 1e9:.1f}",
            f"{achieved / 1e9:.1f}",
            f"{result['matmul'] / 1e9:.1f}",
            f"{result['fraction']:.2f}",
            f"{result['range'][0]:.2f}-{result['range'][1]:.2f}",
        ]
        if device.type != "cuda":
            row.append(f"{result['fractions']['square']:.2f}")
        if args.peak_tflops:
            row.append(f"{achieved / (args.peak_tflops * 1e12):.1%}")
        if args.data:
            seconds = data_seconds(stage, folder, files, args.batch_size, args.rounds, clock)
            row += [f"{seconds:.3f}", f"{seconds / (seconds + result['seconds']):.0%}"]
        rows.append(row)
    widths = [max(len(column), *(len(row[index]) for row in rows)) for index, column in enumerate(columns)]
    print("  ".join(column.rjust(width) for column, width in zip(columns, widths, strict=True)))
    for row in rows:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
