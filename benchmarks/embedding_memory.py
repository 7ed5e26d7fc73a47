"""Peak memory and time of embedding one subject with the default BrainHarmonixModel on CPU, against a 4 GiB budget.

One subject: a T1 volume `(1, 1, 160, 192, 160)` and a full fMRI scan, 400 ROIs × 324 frames at TR 2.0 s (18 time
patches of 18 frames: 7200 fMRI tokens), through the default model (three ViT-B stages, 259 M parameters; the
Harmonizer attends over 1 + 128 + 8400 = 8529 tokens), batch 1, `torch.inference_mode()`, SDPA attention.

Weights come from a checkpoint the way a user loads them: the script saves one randomly initialised float32
checkpoint (safetensors) to a temporary folder, and every case calls `BrainHarmonixModel.from_pretrained` on it.
Cases:

- float32: float32 weights and inputs.
- bfloat16 weights: `from_pretrained(..., dtype=torch.bfloat16)` and bfloat16 inputs. The user path for memory:
  half the weight bytes, and never a float32 copy of the model in the process.
- autocast: float32 weights and inputs inside `torch.autocast("cpu", dtype=torch.bfloat16)` (matrix products in
  bfloat16, weights kept in float32 and cast on the fly): only the activations shrink; for comparison.
- half-padded: the same scan with only its first 162 frames real (`attention_mask`), i.e. 9 of 18 time patches. The
  padded tokens are dropped before attention, so its peak must not be higher than the full scan's.

Each case runs in a fresh subprocess so that peaks do not mix. Figures per case, RSS in MiB (Linux only):

- model: the RSS once the model is loaded and every weight read once (weights, on top of about 0.4 GiB of imported
  libraries; see `read_weights`);
- load pk: the peak RSS (`resource.getrusage().ru_maxrss`) while loading. It counts the pages of the memory-mapped
  float32 checkpoint: for bfloat16 weights, cast from it, about 1 GiB above the model's RSS;
- fwd pk: the peak RSS of the forwards alone (the peak is restarted after loading through `/proc/self/clear_refs`);
- fwd +: the forward's increase, fwd pk - model;
- peak: the process peak, the larger of load pk and fwd pk;
- the ratios of peak to the 4 GiB budget and to the loaded model's RSS;
- fwd s: the best wall time of `--repeats` forwards after one cheap warm-up forward (T1 and a one-patch scan: it
  builds the kernels and thread pools, not the full-size buffers);
- rel err: the relative L2 difference of the subject embedding (`pooler_output`) from the float32 one of the same
  scan, the price of bfloat16.

On a 2-core CPU a float32 forward takes about one minute and the whole script about five; wall times are noisy when
other work shares the machine.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from brainharmonix_hf import BrainHarmonixConfig, BrainHarmonixModel

BUDGET_MIB = 4 * 1024
NUM_ROIS = 400
REPETITION_TIME = 2.0
FRAMES_PER_PATCH = 18  # round(35.28 s / 2.0 s)
NUM_FRAMES = 18 * FRAMES_PER_PATCH


@dataclass(frozen=True)
class Case:
    label: str
    weights_dtype: torch.dtype
    autocast: bool
    valid_time_patches: int


CASES = {
    "float32": Case("float32, full scan (18/18 patches)", torch.float32, False, 18),
    "float32-half": Case("float32, half-padded scan (9/18)", torch.float32, False, 9),
    "bfloat16": Case("bfloat16 weights, full scan", torch.bfloat16, False, 18),
    "bfloat16-half": Case("bfloat16 weights, half-padded scan", torch.bfloat16, False, 9),
    "autocast": Case("float32 weights + bf16 autocast, full", torch.float32, True, 18),
}


def current_rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * resource.getpagesize() / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def reset_peak_rss() -> None:
    """Restart the peak RSS (`ru_maxrss`) from the current RSS (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def read_weights(model: BrainHarmonixModel) -> None:
    """Read every weight once. `from_pretrained` leaves float32 tensors on the memory-mapped checkpoint file, whose
    pages only become resident when first read: without this the forward would seem to cost the weights too."""
    for tensor in model.state_dict().values():
        tensor.sum()


def subject_inputs(num_frames: int, valid_frames: int, dtype: torch.dtype) -> dict:
    generator = torch.Generator().manual_seed(0)
    attention_mask = (torch.arange(num_frames) < valid_frames).long().unsqueeze(0)
    return {
        "pixel_values": torch.randn(1, 1, 160, 192, 160, generator=generator).to(dtype),
        "fmri_values": torch.randn(1, NUM_ROIS, num_frames, generator=generator).to(dtype) * attention_mask,
        "repetition_time": torch.tensor([REPETITION_TIME]),
        "attention_mask": attention_mask,
    }


def measure_case(case: Case, checkpoint: str, repeats: int) -> dict:
    """Load, warm up and time one case in this process; returns its figures in MiB and seconds."""
    imported_rss = current_rss_mib()
    model = BrainHarmonixModel.from_pretrained(checkpoint, dtype=case.weights_dtype).eval()
    read_weights(model)
    model_rss, load_peak = current_rss_mib(), peak_rss_mib()
    reset_peak_rss()  # the loader's peak (file pages of the checkpoint, dtype casts) is kept apart
    inputs = subject_inputs(NUM_FRAMES, case.valid_time_patches * FRAMES_PER_PATCH, case.weights_dtype)
    warm_up = subject_inputs(FRAMES_PER_PATCH, FRAMES_PER_PATCH, case.weights_dtype)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if case.autocast else nullcontext()
    seconds = []
    with torch.inference_mode(), autocast:
        model(**warm_up)
        for _ in range(repeats):
            start = time.perf_counter()
            embedding = model(**inputs).pooler_output
            seconds.append(time.perf_counter() - start)
    if not torch.isfinite(embedding).all():
        raise RuntimeError(f"{case.label}: the embedding is not finite")
    return {
        "imported_rss": imported_rss,
        "model_rss": model_rss,
        "load_peak": load_peak,
        "forward_peak": peak_rss_mib(),
        "seconds": min(seconds),
        "embedding": embedding.float().flatten().tolist(),
    }


def save_checkpoint(folder: str) -> None:
    torch.manual_seed(0)
    BrainHarmonixModel(BrainHarmonixConfig()).save_pretrained(folder)


def run_child(*arguments: str) -> str:
    """Run this script in a fresh Python process; returns its stdout."""
    result = subprocess.run([sys.executable, __file__, *arguments], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"child {' '.join(arguments)} failed:\n{result.stderr}")
    return result.stdout


def print_table(results: dict[str, dict], repeats: int) -> None:
    print(
        f"BrainHarmonixModel default size ({NUM_ROIS} ROIs × 18 patches + T1), batch 1, CPU, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, sdpa, inference_mode, "
        f"best of {repeats} after a warm-up"
    )
    imported = min(figures["imported_rss"] for figures in results.values())
    print(f"RSS in MiB; {imported:.0f} MiB after imports (torch, transformers), before loading; budget {BUDGET_MIB}")
    header = (
        f"{'case':<40}{'model':>7}{'load pk':>9}{'fwd pk':>8}{'fwd +':>7}{'peak':>7}"
        f"{'pk/4GiB':>9}{'pk/model':>10}{'fwd s':>7}{'rel err':>9}"
    )
    print(header)
    print("-" * len(header))
    float32_embeddings = {
        CASES[name].valid_time_patches: torch.tensor(figures["embedding"])
        for name, figures in results.items()
        if CASES[name].weights_dtype == torch.float32 and not CASES[name].autocast
    }
    for name, figures in results.items():
        peak = max(figures["load_peak"], figures["forward_peak"])
        reference = float32_embeddings[CASES[name].valid_time_patches]
        relative_error = (torch.tensor(figures["embedding"]) - reference).norm() / reference.norm()
        print(
            f"{CASES[name].label:<40}{figures['model_rss']:>7.0f}{figures['load_peak']:>9.0f}"
            f"{figures['forward_peak']:>8.0f}{figures['forward_peak'] - figures['model_rss']:>7.0f}{peak:>7.0f}"
            f"{peak / BUDGET_MIB:>9.2f}{peak / figures['model_rss']:>10.2f}{figures['seconds']:>7.1f}"
            f"{relative_error:>9.1e}"
        )
    over = [
        CASES[name].label
        for name, figures in results.items()
        if max(figures["load_peak"], figures["forward_peak"]) > BUDGET_MIB
    ]
    print("every peak within the 4 GiB budget" if not over else f"OVER the 4 GiB budget: {', '.join(over)}")
    for full, half in (("float32", "float32-half"), ("bfloat16", "bfloat16-half")):
        if full in results and half in results:
            ratio = results[half]["forward_peak"] / results[full]["forward_peak"]
            print(f"forward peak, {half} / {full}: {ratio:.2f} (must be <= 1)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="timed forwards per case (the best is reported)")
    parser.add_argument(
        "--skip-bf16", action="store_true", help="float32 cases only (no bfloat16 weights, no autocast)"
    )
    parser.add_argument("--skip-autocast", action="store_true", help="leave out the autocast case")
    parser.add_argument("--skip-half", action="store_true", help="leave out the half-padded cases")
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)  # child process: measure one case
    parser.add_argument("--checkpoint", help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)  # child process: write the checkpoint
    args = parser.parse_args()

    if args.save:
        save_checkpoint(args.save)
        return
    if args.case:
        print(json.dumps(measure_case(CASES[args.case], args.checkpoint, args.repeats)))
        return

    names = [
        name
        for name, case in CASES.items()
        if not (args.skip_bf16 and (case.weights_dtype == torch.bfloat16 or case.autocast))
        and not (args.skip_autocast and case.autocast)
        and not (args.skip_half and case.valid_time_patches < 18)
    ]
    with tempfile.TemporaryDirectory() as checkpoint:
        run_child("--save", checkpoint)
        results = {}
        for name in names:
            results[name] = json.loads(
                run_child("--case", name, "--checkpoint", checkpoint, "--repeats", str(args.repeats))
            )
            figures = results[name]
            print(
                f"measured {name}: forward peak {figures['forward_peak']:.0f} MiB, {figures['seconds']:.1f} s",
                flush=True,
            )
    print_table(results, args.repeats)


if __name__ == "__main__":
    main()
