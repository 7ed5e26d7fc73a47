"""Does StructureMAE pretraining learn to tell T1s apart? Identification of augmented views of T1s among others,
pretrained against the same initial weights, over several seeds.

Data (no download): nilearn's MNI152 2009 T1 template at 2 mm and its 1 mm version resampled onto the same 2 mm grid
(a sharper, aliased copy of the same brain). One template makes no cohort, so each "anatomy" is one of the two under
its own smooth random deformation (a displacement field drawn on a 32 mm control grid, standard deviation 6 mm per
axis, trilinear in between): the local shape differences that remain between brains after registration to MNI. Each
anatomy is written as a NIfTI on the 2 mm MNI grid and read by the package's T1 processor at 2 mm
(`target_spacing=2`), whose 80 x 96 x 80 box covers the same 160 x 192 x 160 mm as the full model's 1 mm box, so a
CPU trains on it in minutes.

Protocol, per seed:

1. A small StructureMAE (48 wide, 2 layers; the 80 x 96 x 80 box in 16^3 patches: 150 tokens) is built with the
   seed and saved: the initial weights.
2. The package's own loop (`training.pretrain.train`, `structure` stage, with its flip / intensity / shift
   augmentation) pretrains it on `--num_train` anatomies; `--num_validation` others are the held-out rows (loss and
   health in `log.jsonl`).
3. `--num_test` further anatomies, none seen in training, each in `--num_views` views drawn by the same augmentation
   (`training.data.T1Augmentation`: left-right flip, intensity scale and offset, shifts of up to 4 voxels), are
   embedded by the exported encoder and by the initial weights: the pooled output (mean of the patch tokens).
4. Identification across views (`evaluation.identification.identify`): for every ordered pair of views (a, b), each
   anatomy's view a is matched to the most correlated of all anatomies' view b (top-1; chance 1 / num_test) and its
   rank among them (mean rank). The same on the raw voxels of the views is printed beside them.
5. Representation health (`training.health`) of the test views' embeddings, and the collapse verdict against the
   initial weights'.

Prints one row per seed, the mean ± 95 % t-interval over seeds, and the paired difference pretrained - initial with
its interval. Sized for a shared 2-core CPU.

    python benchmarks/structure_learning.py [--seeds 0 1 2] [--max_steps 200] [--output_dir DIR]
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import torch
from scipy import stats

from brainharmonix_hf import StructureMAEConfig, StructureMAEForPreTraining, StructureMAEModel, T1VolumeFeatureExtractor
from brainharmonix_hf.evaluation.identification import identify
from brainharmonix_hf.training.data import T1Augmentation
from brainharmonix_hf.training.health import collapse_reasons, representation_health
from brainharmonix_hf.training.pretrain import PretrainingArguments, train

MODEL = {
    "hidden_size": 48,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 192,
    "decoder_hidden_size": 48,
    "decoder_num_hidden_layers": 1,
    "decoder_num_attention_heads": 4,
    "decoder_intermediate_size": 192,
    "image_size": [80, 96, 80],
}
# The 2 mm box: half the 1 mm padding (in voxels), the same 160 x 192 x 160 mm.
PROCESSOR = {"target_spacing": 2.0, "volume_size": MODEL["image_size"], "reference_padding": [[3, 5], [1, 2], [0, 11]]}
WARP_STD_MM = 6.0
CONTROL_SPACING_MM = 32
DATA_SEED = 2026


def source_templates() -> list[nib.Nifti1Image]:
    """nilearn's MNI152 T1 template at 2 mm, and its 1 mm version resampled onto the 2 mm grid."""
    from nilearn.datasets import load_mni152_template
    from nilearn.image import resample_to_img

    two = load_mni152_template(resolution=2)
    one = resample_to_img(
        load_mni152_template(resolution=1), two, interpolation="continuous", force_resample=True, copy_header=True
    )
    return [two, one]


def deformed(image: nib.Nifti1Image, rng: np.random.Generator) -> nib.Nifti1Image:
    """`image` (2 mm voxels) under a smooth random deformation: displacements drawn on a `CONTROL_SPACING_MM` grid with
    standard deviation `WARP_STD_MM` per axis, interpolated trilinearly, applied with trilinear resampling."""
    volume = torch.from_numpy(np.asarray(image.get_fdata(), dtype=np.float32))
    shape = volume.shape
    control = [int(np.ceil(size / CONTROL_SPACING_MM)) + 1 for size in shape]
    displacement = torch.from_numpy(rng.normal(0.0, WARP_STD_MM / 2, (1, 3, *control)).astype(np.float32))
    displacement = torch.nn.functional.interpolate(displacement, size=shape, mode="trilinear", align_corners=True)[0]
    axes = torch.meshgrid(*(torch.arange(size, dtype=torch.float32) for size in shape), indexing="ij")
    # grid_sample takes (x, y, z) = (axis 2, axis 1, axis 0) in [-1, 1].
    grid = torch.stack(
        [2 * (axes[axis] + displacement[axis]) / (shape[axis] - 1) - 1 for axis in (2, 1, 0)], dim=-1
    ).unsqueeze(0)
    warped = torch.nn.functional.grid_sample(
        volume[None, None], grid, mode="bilinear", padding_mode="border", align_corners=True
    )[0, 0]
    return nib.Nifti1Image(warped.numpy(), image.affine)


def anatomies(count: int, rng: np.random.Generator) -> list[nib.Nifti1Image]:
    """`count` deformed templates, alternating between the 2 mm and the resampled 1 mm template."""
    templates = source_templates()
    return [deformed(templates[index % 2], rng) for index in range(count)]


def write_cohort(folder: Path, num_train: int, num_validation: int) -> Path:
    """NIfTI files of the training and held-out anatomies and their manifest."""
    rows = []
    images = anatomies(num_train + num_validation, np.random.default_rng([DATA_SEED, 0]))
    for index, image in enumerate(images):
        path = folder / f"anatomy{index:02d}.nii"
        nib.save(image, path)
        split = "train" if index < num_train else "validation"
        rows.append({"subject": f"anatomy{index:02d}", "session": "", "t1": str(path), "split": split})
    manifest = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest


def test_views(processor: T1VolumeFeatureExtractor, num_test: int, num_views: int):
    """`(num_test * num_views, 1, *box)` views of anatomies never trained on, with their anatomy and view ids."""
    augmentation = T1Augmentation()
    views, subjects, sessions = [], [], []
    for index, image in enumerate(anatomies(num_test, np.random.default_rng([DATA_SEED, 1]))):
        volume = processor(image)["pixel_values"][0]
        for view in range(num_views):
            views.append(augmentation(volume, np.random.default_rng([DATA_SEED, 2, index, view])))
            subjects.append(f"test{index:02d}")
            sessions.append(view)
    return np.stack(views), subjects, sessions


@torch.no_grad()
def pooled_embeddings(encoder: StructureMAEModel, views: np.ndarray, batch_size: int = 4) -> np.ndarray:
    encoder = encoder.eval()
    return torch.cat(
        [
            encoder(torch.from_numpy(views[start : start + batch_size])).pooler_output
            for start in range(0, len(views), batch_size)
        ]
    ).numpy()


def run_seed(seed: int, args, folder: Path, manifest: Path, config: StructureMAEConfig, views, subjects, sessions):
    processor_folder = folder / "processor"
    T1VolumeFeatureExtractor(**PROCESSOR).save_pretrained(processor_folder)
    torch.manual_seed(seed)
    model = StructureMAEForPreTraining(config)
    initial_folder = folder / f"seed{seed}" / "initial"
    model.save_pretrained(initial_folder)
    output_dir = folder / f"seed{seed}" / "run"
    start = time.perf_counter()
    train(
        PretrainingArguments(
            stage="structure",
            output_dir=str(output_dir),
            manifest=str(manifest),
            init_from=str(initial_folder),
            processor=str(processor_folder),
            per_device_batch_size=args.batch_size,
            max_steps=args.max_steps,
            learning_rate=args.learning_rate,
            eval_steps=max(1, args.max_steps // 4),
            logging_steps=max(1, args.max_steps // 10),
            seed=seed,
        )
    )
    seconds = time.perf_counter() - start
    pretrained = pooled_embeddings(StructureMAEModel.from_pretrained(output_dir / "model"), views)
    initial = pooled_embeddings(StructureMAEModel.from_pretrained(initial_folder), views)
    log = [json.loads(line) for line in (output_dir / "log.jsonl").read_text().splitlines()]
    evaluations = [record for record in log if record.get("split") == "validation" and "loss" in record]
    health = representation_health(torch.from_numpy(pretrained))
    return {
        "seed": seed,
        "pretrained": identify(pretrained, subjects, sessions),
        "initial": identify(initial, subjects, sessions),
        "health": health.metrics(),
        "initial_health": representation_health(torch.from_numpy(initial)).metrics(),
        "collapse": collapse_reasons(health, reference=representation_health(torch.from_numpy(initial))),
        "held_out_loss": (evaluations[0]["loss"], evaluations[-1]["loss"]),
        "train_seconds": seconds,
    }


def interval(values) -> str:
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return f"{values.mean():.3f}"
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return f"{values.mean():.3f} ± {half:.3f}"


def run_benchmark(seeds, args, folder: Path) -> tuple[list[dict], dict]:
    config = StructureMAEConfig(**MODEL)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = write_cohort(folder, args.num_train, args.num_validation)
    views, subjects, sessions = test_views(T1VolumeFeatureExtractor(**PROCESSOR), args.num_test, args.num_views)
    voxels = identify(views.reshape(len(views), -1), subjects, sessions)
    return [run_seed(seed, args, folder, manifest, config, views, subjects, sessions) for seed in seeds], voxels


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max_steps", type=int, default=200)
    parser.add_argument("--learning_rate", type=float, default=1.5e-3)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--num_train", type=int, default=16)
    parser.add_argument("--num_validation", type=int, default=4)
    parser.add_argument("--num_test", type=int, default=8)
    parser.add_argument("--num_views", type=int, default=4)
    parser.add_argument("--output_dir", default=None, help="Keep the runs here (a temporary folder otherwise).")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        results, voxels = run_benchmark(args.seeds, args, Path(args.output_dir or scratch))
    print(
        f"T1 identification, {args.num_test} unseen anatomies x {args.num_views} augmented views (top-1 chance "
        f"{1 / args.num_test:.3f}); {args.max_steps} steps; load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}"
    )
    print("seed  top1 pre  top1 init  rank pre  rank init  held-out loss  spread  rank(RankMe)  collapse  train s")
    for result in results:
        pre, init = result["pretrained"], result["initial"]
        print(
            f"{result['seed']:>4}  {pre['identification_accuracy']:8.3f}  {init['identification_accuracy']:9.3f}  "
            f"{pre['mean_rank']:8.2f}  {init['mean_rank']:9.2f}  "
            f"{result['held_out_loss'][0]:.3f}->{result['held_out_loss'][1]:.3f}  "
            f"{result['health']['relative_spread']:6.3f}  {result['health']['effective_rank']:12.2f}  "
            f"{'yes' if result['collapse'] else 'no':>8}  {result['train_seconds']:7.1f}"
        )
    for metric in ("identification_accuracy", "mean_rank"):
        pre = [result["pretrained"][metric] for result in results]
        init = [result["initial"][metric] for result in results]
        print(
            f"{metric}: pretrained {interval(pre)} | initial {interval(init)} | paired difference "
            f"{interval(np.subtract(pre, init))} | raw voxels {voxels[metric]:.3f}"
        )


if __name__ == "__main__":
    main()
