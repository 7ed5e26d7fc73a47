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
3. `--num_test` further anatomies, none seen in training, each in `--num_views` views drawn by the stage's
   augmentation (`training.data.T1Augmentation`: left-right flip, intensity scale and offset; shifts of up to 2
   voxels of 2 mm, the 4 mm that its 4 voxels are at 1 mm), are embedded by the exported encoder and by the initial
   weights: the pooled output (mean of the patch tokens), the embedding the stage's health metrics use.
4. Identification across views (`evaluation.identification.identify`): for every ordered pair of views (a, b), each
   anatomy's view a is matched to the most correlated of all anatomies' view b: top-1 (chance 1 / num_test) and the
   mean rank of its own anatomy (chance (num_test + 1) / 2), the stated measure. The same on the raw voxels of the
   views is printed beside them.
5. Representation health (`training.health`): as the loop logged it on the held-out anatomies at the last step, and
   the collapse verdict on the test views' embeddings against the initial weights'.

Prints one row per seed, the mean ± 95 % t-interval over seeds, and the paired difference pretrained - initial with
its interval. Sized for a shared 2-core CPU: under a minute per seed with `OMP_NUM_THREADS=1`.

    python benchmarks/structure_learning.py [--seeds 0 1 2] [--max_steps 200] [--num_test 16] [--output_dir DIR]
"""

import argparse
import os
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import torch

# The function benchmark beside this file: the same run and interval helpers.
from representation_learning import held_out_records, interval, pretrain_from_initial

from brainharmonix_hf import StructureMAEConfig, StructureMAEForPreTraining, StructureMAEModel, T1VolumeFeatureExtractor
from brainharmonix_hf.evaluation.identification import identify
from brainharmonix_hf.training.data import T1Augmentation
from brainharmonix_hf.training.health import collapse_reasons, representation_health

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
# Test views shift by up to 2 voxels of 2 mm: the 4 mm of the training augmentation's 4 voxels at 1 mm.
TEST_SHIFT_VOXELS = 2


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
    augmentation = T1Augmentation(max_shift=TEST_SHIFT_VOXELS)
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
    initial_folder, output_dir, seconds = pretrain_from_initial(
        StructureMAEForPreTraining(config),
        folder,
        seed,
        stage="structure",
        manifest=str(manifest),
        processor=str(processor_folder),
        per_device_batch_size=args.batch_size,
        max_steps=args.max_steps,
        learning_rate=args.learning_rate,
        eval_steps=max(1, args.max_steps // 4),
        logging_steps=max(1, args.max_steps // 10),
    )
    pretrained = pooled_embeddings(StructureMAEModel.from_pretrained(output_dir / "model"), views)
    initial = pooled_embeddings(StructureMAEModel.from_pretrained(initial_folder), views)
    evaluations = held_out_records(output_dir)
    return {
        "seed": seed,
        "pretrained": identify(pretrained, subjects, sessions),
        "initial": identify(initial, subjects, sessions),
        "health": evaluations[-1],
        "initial_health": evaluations[0],
        "collapse": collapse_reasons(
            representation_health(torch.from_numpy(pretrained)),
            reference=representation_health(torch.from_numpy(initial)),
        ),
        "held_out_loss": (evaluations[0]["loss"], evaluations[-1]["loss"]),
        "train_seconds": seconds,
    }


def run_benchmark(
    seeds,
    folder: Path,
    max_steps: int = 200,
    learning_rate: float = 1.5e-3,
    batch_size: int = 4,
    num_train: int = 16,
    num_validation: int = 4,
    num_test: int = 16,
    num_views: int = 4,
) -> tuple[list[dict], dict]:
    """Every seed's results (see `run_seed`) and the raw voxels' identification, the runs kept in `folder`."""
    args = argparse.Namespace(max_steps=max_steps, learning_rate=learning_rate, batch_size=batch_size)
    config = StructureMAEConfig(**MODEL)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = write_cohort(folder, num_train, num_validation)
    views, subjects, sessions = test_views(T1VolumeFeatureExtractor(**PROCESSOR), num_test, num_views)
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
    parser.add_argument("--num_test", type=int, default=16)
    parser.add_argument("--num_views", type=int, default=4)
    parser.add_argument("--output_dir", default=None, help="Keep the runs here (a temporary folder otherwise).")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        options = {name: value for name, value in vars(args).items() if name not in ("seeds", "output_dir")}
        results, voxels = run_benchmark(args.seeds, Path(args.output_dir or scratch), **options)
    print(
        f"T1 identification, {args.num_test} unseen anatomies x {args.num_views} augmented views (top-1 chance "
        f"{1 / args.num_test:.3f}, mean-rank chance {(args.num_test + 1) / 2:.1f}); {args.max_steps} steps; load "
        f"average {load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(
        "seed  top1 pre  top1 init  rank pre  rank init  held-out loss  spread  rank(RankMe)  collapse  train s   "
        "(health: held-out anatomies, last step; collapse: test views vs initial weights)"
    )
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
