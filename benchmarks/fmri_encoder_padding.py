"""FunctionJEPA encoder: padded time patches cost nothing, and a batch may mix TRs at no extra cost.

Model: the default FunctionJEPAModel width and grid (768 wide, 400 ROIs × 18 time patches = 7200 tokens), inference
without gradients, SDPA attention, float32. Every encoder layer costs the same, so the ratios below do not depend on
the depth: the script runs `--layers 2` by default to stay within a few minutes on a 2-core CPU (a 12-layer forward
over 7200 tokens takes over a minute there); pass `--layers 12` for the full model.

1. Padding. A 5-minute scan at TR 2.0 s (150 frames) fills 9 of the 18 time patches (3600 tokens); a full scan
   (324 frames) fills all 18. Padded tokens are dropped before the encoder, so the short scan should cost at most
   0.6 of the full one (attention is quadratic, the rest linear in the token count).
2. Mixed TRs. One batch holding a TR 2.0 s and a TR 0.8 s scan against the same two scans in per-TR batches: the
   grid is the same for every TR, so the ratio should be about 1.0 (and the outputs equal).

Each figure is the best of `--repeats` interleaved timings after one warm-up forward. Prints a table of seconds and
ratios.
"""

import argparse
import time

import torch

from brainharmonix_hf import FunctionJEPAConfig, FunctionJEPAModel

NUM_ROIS = 400


def timed_forward(model: FunctionJEPAModel, batch: dict) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    with torch.no_grad():
        output = model(**batch).last_hidden_state
    return time.perf_counter() - start, output


def scan(num_frames: int, repetition_time: float, generator: torch.Generator) -> dict:
    return {
        "fmri_values": torch.randn(1, NUM_ROIS, num_frames, generator=generator),
        "repetition_time": torch.tensor([repetition_time]),
    }


def stack_scans(scans: list[dict]) -> dict:
    """One batch from single-scan batches, right-padded to the longest, with a frame mask."""
    longest = max(s["fmri_values"].shape[-1] for s in scans)
    fmri_values = torch.zeros(len(scans), NUM_ROIS, longest)
    attention_mask = torch.zeros(len(scans), longest, dtype=torch.long)
    for row, s in enumerate(scans):
        frames = s["fmri_values"].shape[-1]
        fmri_values[row, :, :frames] = s["fmri_values"][0]
        attention_mask[row, :frames] = 1
    repetition_time = torch.cat([s["repetition_time"] for s in scans])
    return {"fmri_values": fmri_values, "repetition_time": repetition_time, "attention_mask": attention_mask}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=2, help="encoder layers (12 = the full model)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per case (the best is reported)")
    args = parser.parse_args()

    torch.manual_seed(0)
    config = FunctionJEPAConfig(num_hidden_layers=args.layers, attn_implementation="sdpa")
    model = FunctionJEPAModel(config).eval()
    generator = torch.Generator().manual_seed(0)
    short_scan = scan(150, 2.0, generator)  # 5 minutes: ceil(150 / 18) = 9 patches
    full_scan = scan(18 * 18, 2.0, generator)  # 18 patches of 18 frames
    fast_scan = scan(18 * 44, 0.8, generator)  # TR 0.8 s: 18 patches of 44 frames
    batches = {
        "short": short_scan,
        "full": full_scan,
        "mixed": stack_scans([full_scan, fast_scan]),
        "fast": fast_scan,  # with "full", the two per-TR batches
    }
    timed_forward(model, scan(18, 2.0, generator))  # warm-up
    # Cases are interleaved within each round so that all of them see the same machine load.
    seconds = {name: float("inf") for name in batches}
    outputs = {}
    for _ in range(args.repeats):
        for name, batch in batches.items():
            elapsed, outputs[name] = timed_forward(model, batch)
            seconds[name] = min(seconds[name], elapsed)
    short_seconds, full_seconds, mixed_seconds = seconds["short"], seconds["full"], seconds["mixed"]
    per_tr_seconds = seconds["full"] + seconds["fast"]
    per_tr_output = torch.cat([outputs["full"], outputs["fast"]])
    max_difference = (outputs["mixed"] - per_tr_output).abs().max().item()

    print(
        f"FunctionJEPAModel, width {config.hidden_size}, {args.layers} layers, {NUM_ROIS} ROIs × "
        f"{config.num_time_patches} patches, SDPA, float32, {torch.get_num_threads()} threads, best of "
        f"{args.repeats}"
    )
    print(f"{'case':<52}{'seconds':>10}{'ratio':>9}{'target':>10}")
    print(f"{'full scan, TR 2.0 s, 18/18 patches (7200 tokens)':<52}{full_seconds:>10.2f}{'1.00':>9}{'':>10}")
    print(
        f"{'5-min scan, TR 2.0 s, 9/18 patches (3600 tokens)':<52}{short_seconds:>10.2f}"
        f"{short_seconds / full_seconds:>9.2f}{'<= 0.6':>10}"
    )
    print(f"{'per-TR batches: TR 2.0 s + TR 0.8 s (1 + 1 scans)':<52}{per_tr_seconds:>10.2f}{'1.00':>9}{'':>10}")
    print(
        f"{'one mixed-TR batch: TR 2.0 s and TR 0.8 s (2 scans)':<52}{mixed_seconds:>10.2f}"
        f"{mixed_seconds / per_tr_seconds:>9.2f}{'~ 1.0':>10}"
    )
    print(f"mixed-TR batch vs per-TR batches, largest output difference: {max_difference:.2e}")


if __name__ == "__main__":
    main()
