"""What a published-size BrainHarmonix costs on this CPU: parameters, checkpoint size, time and peak memory of one
subject's embedding (the figures in the README's "The models" section).

One `BrainHarmonixModel` at the published sizes (three ViT-B stages, 128 hub tokens; random weights: the cost does
not depend on their values) embeds one subject: nilearn's MNI152 T1 and the LEMON run (Schaefer-400) taken as
5 minutes at TR 2 s (150 frames: 9 of 18 time patches, 3600 fMRI tokens) and as a full window (324 frames: 7200
tokens). Times are wall-clock seconds (best of `ROUNDS`), inference without gradients, float32, on
`torch.get_num_threads()` threads; memory is the process's peak resident set. The baseline, timed in the same run, is
a float32 matrix product of the same FLOP count as the full-window forward pass: the ratio says how far the model
is from the machine's matmul speed.
"""

import resource
import tempfile
import time
from pathlib import Path

import torch

from brainharmonix_hf import BrainHarmonixConfig, BrainHarmonixModel, BrainHarmonixProcessor
from brainharmonix_hf.sample_data import load_fmri_sample, load_t1_sample

ROUNDS = 2


def peak_memory_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def best_seconds(run) -> float:
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def encoder_flops(num_tokens: int, width: int, mlp: int, layers: int) -> int:
    """Forward FLOPs of a pre-norm ViT stack (a multiply-add = 2 FLOPs): projections, MLP and attention."""
    return layers * (2 * num_tokens * width * (4 * width + 2 * mlp) + 4 * num_tokens**2 * width)


def main() -> None:
    torch.manual_seed(0)
    before_model = peak_memory_gib()
    start = time.perf_counter()
    config = BrainHarmonixConfig()
    model = BrainHarmonixModel(config).eval()
    build_seconds = time.perf_counter() - start
    parameters = {
        name: sum(p.numel() for p in getattr(model, name).parameters())
        for name in ("structure", "function", "harmonizer")
    }
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        checkpoint_bytes = (Path(folder) / "model.safetensors").stat().st_size
    processor = BrainHarmonixProcessor.for_config(config)
    t1, fmri = load_t1_sample(), load_fmri_sample()

    def subject(frames: int):
        series = fmri.series[:, :frames]
        return processor(
            t1=t1, fmri=series, repetition_time=2.0, layout="rois_first", atlas=fmri.atlas, return_tensors="pt"
        )

    process_seconds = best_seconds(lambda: subject(150))
    five_minutes, full = subject(150), subject(324)
    with torch.no_grad():
        five_minutes_seconds = best_seconds(lambda: model(**five_minutes))
        full_seconds = best_seconds(lambda: model(**full))
    structure, function, harmonizer = config.structure_config, config.function_config, config.harmonizer_config
    flops = (
        encoder_flops(1201, structure.hidden_size, structure.intermediate_size, structure.num_hidden_layers)
        + encoder_flops(7200, function.hidden_size, function.intermediate_size, function.num_hidden_layers)
        + encoder_flops(
            1 + 8400 + 128, harmonizer.hidden_size, harmonizer.intermediate_size, harmonizer.num_hidden_layers
        )
    )
    size = round((flops / 2) ** (1 / 3))  # a cube matmul of about the same FLOP count
    a, b = torch.randn(size, size), torch.randn(size, size)
    matmul_seconds = best_seconds(lambda: a @ b)

    print(f"threads: {torch.get_num_threads()}, rounds: best of {ROUNDS}")
    print(
        "parameters: "
        + ", ".join(f"{name} {count / 1e6:.1f} M" for name, count in parameters.items())
        + f"; total {sum(parameters.values()) / 1e6:.1f} M"
    )
    print(f"model.safetensors (float32): {checkpoint_bytes / 2**30:.2f} GiB; model built in {build_seconds:.1f} s")
    print(f"processor, one subject (T1 + 150 frames): {process_seconds:.1f} s")
    print(f"forward, T1 + 5 min at TR 2 s (3600 fMRI tokens): {five_minutes_seconds:.1f} s")
    print(f"forward, T1 + full window (7200 fMRI tokens): {full_seconds:.1f} s ({flops / 1e12:.2f} TFLOP)")
    print(
        f"matmul of the same FLOPs ({size}^3): {matmul_seconds:.1f} s; forward / matmul = "
        f"{full_seconds / matmul_seconds:.2f}"
    )
    print(f"peak resident memory: {peak_memory_gib():.2f} GiB (before the model: {before_model:.2f} GiB)")


if __name__ == "__main__":
    main()
