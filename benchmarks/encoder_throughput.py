"""StructureMAE encoder throughput on this CPU, as a fraction of a plain matrix product's throughput.

Model: the default `StructureMAEModel` (ViT-B over a (10, 12, 10) grid: 1200 patches + CLS), batch 1, inference
without gradients, SDPA attention, in float32 weights and in bfloat16 weights.

FLOPs are counted analytically (a multiply-add = 2 FLOPs), with N = 1201 tokens, D = 768, I = 3072, L = 12 layers and
P = 4096 voxels per patch:

    patch embedding   2 · 1200 · P · D
    each layer        2 · N · D · (3D + D + 2I)    qkv projection, output projection, MLP
                    + 4 · N² · D                   attention scores Q·Kᵀ and weighted sum A·V

LayerNorm, GELU, softmax and residual additions are not counted (they are < 1% of the FLOPs).
`torch.utils.flop_counter` gives the same total with eager attention (it does not count the CPU SDPA kernel); the
script checks that once.

Baseline: a (1201 × 768) @ (768 × 3072) matrix product in the same dtype, the shape of the encoder's MLP input
projection, timed in the same run and interleaved with the model so that both see the same machine load.
Each figure is the best of `ROUNDS` timings. Prints a table of GFLOP/s and the ratio to the matmul, for the encoder
and, to show where time goes, for one layer's attention kernel alone (SDPA on 12 heads × 1201 tokens × 64): on CPUs
where bfloat16 matrix products run about twice as fast as float32 but the SDPA kernel does not, attention (20% of
the FLOPs) holds the bfloat16 ratio down.
"""

import time

import torch
from torch.nn.functional import scaled_dot_product_attention
from torch.utils.flop_counter import FlopCounterMode

from brainharmonix_hf import StructureMAEConfig, StructureMAEModel

ROUNDS = 3
MATMUL_REPEATS = 10


def encoder_flops(config: StructureMAEConfig) -> int:
    """Analytic forward FLOPs of `StructureMAEModel` for one volume (formula in the module docstring)."""
    num_patches, width, mlp = config.num_patches, config.hidden_size, config.intermediate_size
    num_tokens = num_patches + 1
    patch_voxels = config.num_channels * config.patch_shape[0] * config.patch_shape[1] * config.patch_shape[2]
    per_layer = 2 * num_tokens * width * (4 * width + 2 * mlp) + 4 * num_tokens**2 * width
    return 2 * num_patches * patch_voxels * width + config.num_hidden_layers * per_layer


def counted_flops(model: StructureMAEModel, pixel_values: torch.Tensor) -> int:
    """FLOPs that `FlopCounterMode` counts for one forward with eager attention."""
    model.set_attn_implementation("eager")
    with FlopCounterMode(display=False) as counter:
        model(pixel_values)
    model.set_attn_implementation("sdpa")
    return counter.get_total_flops()


def best_seconds(run, repeats: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        run()
    return (time.perf_counter() - start) / repeats


def measure(model: StructureMAEModel, pixel_values: torch.Tensor, dtype: torch.dtype) -> dict[str, float]:
    """Best seconds of one encoder forward, one attention kernel and one baseline matmul, interleaved, in `dtype`."""
    config = model.config
    num_tokens, head_dim = config.num_patches + 1, config.hidden_size // config.num_attention_heads
    tokens = torch.randn(num_tokens, config.hidden_size, dtype=dtype)
    weight = torch.randn(config.hidden_size, config.intermediate_size, dtype=dtype)
    query, key, value = torch.randn(3, 1, config.num_attention_heads, num_tokens, head_dim, dtype=dtype)
    model = model.to(dtype)
    pixel_values = pixel_values.to(dtype)
    runs = {
        "encoder": lambda: model(pixel_values),
        "attention": lambda: scaled_dot_product_attention(query, key, value),
        "matmul": lambda: tokens @ weight,
    }
    repeats = {"encoder": 1, "attention": MATMUL_REPEATS, "matmul": MATMUL_REPEATS}
    for run in runs.values():  # warm-up
        run()
    times = {name: [] for name in runs}
    for _ in range(ROUNDS):
        for name, run in runs.items():
            times[name].append(best_seconds(run, repeats[name]))
    return {name: min(values) for name, values in times.items()}


@torch.no_grad()
def main() -> None:
    torch.manual_seed(0)
    config = StructureMAEConfig()
    model = StructureMAEModel(config).eval()
    pixel_values = torch.randn(1, config.num_channels, *config.image_size)
    flops = encoder_flops(config)
    counted = counted_flops(model, pixel_values)
    if abs(counted - flops) > 0.01 * flops:
        raise RuntimeError(f"analytic FLOPs {flops:.4e} disagree with FlopCounterMode's {counted:.4e}")
    num_tokens = config.num_patches + 1
    work = {
        "encoder": flops,
        "attention": 4 * num_tokens**2 * config.hidden_size,
        "matmul": 2 * num_tokens * config.hidden_size * config.intermediate_size,
    }

    print(f"StructureMAEModel forward, batch 1, {flops / 1e9:.1f} GFLOP (FlopCounterMode: {counted / 1e9:.1f})")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, attention: sdpa, best of {ROUNDS}")
    print(f"{'weights':<10}{'part':<11}{'seconds':>9}{'GFLOP/s':>10}{'matmul GFLOP/s':>16}{'ratio':>7}")
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        seconds = measure(model, pixel_values, dtype)
        matmul_rate = work["matmul"] / seconds["matmul"] / 1e9
        for part in ("encoder", "attention"):
            rate = work[part] / seconds[part] / 1e9
            print(
                f"{name:<10}{part:<11}{seconds[part]:>9.3f}{rate:>10.1f}{matmul_rate:>16.1f}{rate / matmul_rate:>7.2f}"
            )


if __name__ == "__main__":
    main()
