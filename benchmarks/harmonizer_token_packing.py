"""Cost of padded fMRI tokens in the Harmonizer encoder: a half-padded batch against a fully valid one.

The Harmonizer drops padded fMRI tokens before attention (token packing), so a subject whose scan fills 9 of the 18
time patches (a 5-minute run at TR 2 s) should cost about what its 3600 + 1200 valid tokens cost, not the 8400 a
masked computation pays. Baseline, measured in the same run with the same weights: the same batch with every token
valid, i.e. what masking instead of packing would compute. Prints the seconds of each (best of `--repeats`) and the
ratio, next to the token-count ratio.

Default size: the full token layout (7200 fMRI + 1200 T1 tokens, 128 hub tokens) with a narrow, shallow encoder
(384 wide, 2 layers) so it runs in seconds on a laptop CPU; pass `--hidden-size 768 --layers 12` for ViT-B.
"""

import argparse
import time

import torch

from brainharmonix_hf import HarmonizerConfig, HarmonizerModel


def best_times(functions: list, repeats: int) -> list[float]:
    """Best wall time of each function, measured in alternation so background load hits both alike."""
    times = [[] for _ in functions]
    for _ in range(repeats):
        for function, measured in zip(functions, times, strict=True):
            start = time.perf_counter()
            function()
            measured.append(time.perf_counter() - start)
    return [min(measured) for measured in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden-size", type=int, default=384)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--valid-time-patches", type=int, default=9, help="of the 18 per ROI")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    config = HarmonizerConfig(
        hidden_size=args.hidden_size,
        num_attention_heads=args.hidden_size // 64,
        intermediate_size=4 * args.hidden_size,
        num_hidden_layers=args.layers,
    )
    torch.manual_seed(0)
    model = HarmonizerModel(config).eval()
    fmri = torch.randn(args.batch_size, config.num_fmri_tokens, config.latent_size)
    t1 = torch.randn(args.batch_size, config.num_t1_tokens, config.latent_size)
    num_rois, num_time_patches = 400, config.num_fmri_tokens // 400
    # Token n = roi * 18 + t (ROI-major): valid while t < the number of valid time patches.
    half_valid = (torch.arange(num_time_patches) < args.valid_time_patches).repeat(num_rois).long()
    half_valid = half_valid.expand(args.batch_size, -1)

    with torch.no_grad():
        model(t1_latents=t1)  # warm-up
        full, packed = best_times(
            [
                lambda: model(fmri_latents=fmri, t1_latents=t1),
                lambda: model(fmri_latents=fmri, fmri_token_mask=half_valid, t1_latents=t1),
            ],
            args.repeats,
        )

    valid_tokens = int(half_valid[0].sum()) + config.num_t1_tokens
    all_tokens = config.num_fmri_tokens + config.num_t1_tokens
    print(
        f"encoder {config.hidden_size} wide x {config.num_hidden_layers} layers, batch {args.batch_size}, "
        f"{config.num_hub_tokens} hub tokens, best of {args.repeats}, {torch.get_num_threads()} threads"
    )
    print(f"all {all_tokens} tokens valid (= masked computation)  {full:.3f} s")
    print(f"{valid_tokens} valid tokens, packed                  {packed:.3f} s")
    print(f"time ratio packed / full     {packed / full:.2f}")
    print(f"token ratio valid / all      {valid_tokens / all_tokens:.2f}")


if __name__ == "__main__":
    main()
