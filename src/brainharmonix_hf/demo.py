# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""The offline end-to-end demo: the whole pipeline on bundled real data, with tiny models, in a few minutes on CPU.

1. Inputs: nilearn's MNI152 T1 template and the LEMON resting-state run that brainspace ships (Schaefer-400, TR
   1.4 s), split in time into training and held-out frames (`sample_data`).
2. Pretraining of tiny versions of the three stages with the Accelerate loops (`training.pretrain`): StructureMAE on
   the T1 (augmented), FunctionJEPA on windows of the run at its native TR and downsampled ×2 and ×3, and the
   Harmonizer on latents the two frozen encoders cached once (`training.latent_cache`).
3. Export: the stages assembled into one `BrainHarmonixModel`, saved with `save_pretrained` (model card included)
   beside its processor, and loaded back with `AutoModel` / `AutoProcessor`.
4. A small BIDS derivatives tree (fMRIPrep / XCP-D names, several subjects and sessions) embedded with
   `embed_cohort`, then a linear probe under the evaluation protocol (repeated stratified splits) on a toy target:
   which half of the sessions got more added noise.
5. A report folder: `metrics.json` and PNG figures (loss curves, embedding scatter, the T1 with the model's box,
   hub-token attention on the cortex).

The models are tiny and trained for a few steps: the numbers show the pipeline works end to end (losses fall, files
load, the probe runs), not what a pretrained BrainHarmonix can do.
"""

import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from .cohort.bids_discovery import find_bids_sessions
from .cohort.embed import embed_cohort
from .cohort.embedding_store import load_embeddings
from .cohort.sample_tree import write_sample_derivatives
from .evaluation.protocol import EmbeddingProbe, run_protocol
from .evaluation.splits import repeated_splits
from .modeling.configuration_function_jepa import FunctionJEPAConfig
from .modeling.configuration_harmonizer import HarmonizerConfig
from .modeling.configuration_structure_mae import StructureMAEConfig
from .modeling.modeling_brainharmonix import BrainHarmonixModel
from .modeling.modeling_function_jepa import FunctionJEPAModel
from .modeling.modeling_harmonizer import HarmonizerModel
from .modeling.modeling_structure_mae import StructureMAEModel
from .processing.feature_extraction_fmri import FMRIFeatureExtractor
from .processing.feature_extraction_t1 import T1VolumeFeatureExtractor
from .processing.processing_brainharmonix import BrainHarmonixProcessor
from .sample_data import load_fmri_sample, load_t1_sample
from .training.latent_cache import cache_latents
from .training.pretrain import parse_arguments, train
from .visualization.embedding_scatter import plot_embedding_scatter
from .visualization.hub_attention import hub_attention_per_roi, plot_hub_attention
from .visualization.loss_curves import plot_loss_curves, read_training_log
from .visualization.t1_input import plot_t1_input

# Frames 0-389 of the LEMON run train, frames 390-651 are held out.
TRAIN_FRAMES = 390
STAGES = ("structure", "function", "harmonizer")
# Tiny stages: two 48-wide layers each; the T1 keeps the published 160 × 192 × 160 box (1200 tokens) and the fMRI
# its 400 ROIs, over 6 time patches (3.5 min of signal).
TINY_LAYERS = {"hidden_size": 48, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 96}
TINY_DECODER = {"decoder_hidden_size": 48, "decoder_num_hidden_layers": 1, "decoder_num_attention_heads": 2}
NUM_TIME_PATCHES = 6


@dataclass
class DemoSettings:
    """How much the demo trains and embeds (the defaults take a few minutes on 2 CPU cores)."""

    steps: dict[str, int] = field(default_factory=lambda: {"structure": 12, "function": 30, "harmonizer": 20})
    bids_subjects: int = 6
    bids_sessions: int = 2
    seed: int = 0


def tiny_stage_configs() -> dict:
    """The three tiny stage configs; the Harmonizer's token counts follow the encoders'."""
    structure = StructureMAEConfig(**TINY_LAYERS, **TINY_DECODER, decoder_intermediate_size=96)
    function = FunctionJEPAConfig(
        **TINY_LAYERS,
        num_time_patches=NUM_TIME_PATCHES,
        predictor_hidden_size=16,
        predictor_num_hidden_layers=1,
        predictor_num_attention_heads=2,
        predictor_intermediate_size=32,
    )
    harmonizer = HarmonizerConfig(
        **TINY_LAYERS,
        **TINY_DECODER,
        decoder_intermediate_size=96,
        num_fmri_tokens=function.num_tokens,
        num_t1_tokens=structure.num_patches,
        latent_size=structure.hidden_size,
        num_hub_tokens=16,
        modality_dropout=0.2,
    )
    return {"structure": structure, "function": function, "harmonizer": harmonizer}


def write_inputs(folder: Path) -> dict[str, Path]:
    """The bundled T1 and fMRI as files, and the manifests of the pretraining and caching steps."""
    folder.mkdir(parents=True, exist_ok=True)
    t1_path = folder / "mni152_T1w.nii.gz"
    nib.save(load_t1_sample(), t1_path)
    fmri = load_fmri_sample()
    np.save(folder / "lemon_train.npy", fmri.series[:, :TRAIN_FRAMES])
    np.save(folder / "lemon_heldout.npy", fmri.series[:, TRAIN_FRAMES:])
    tr = fmri.repetition_time
    # Pretraining draws a random window (and TR multiple) from each row at every epoch.
    fmri_rows = [f"lemon,train{i},lemon_train.npy,{tr},train" for i in range(8)]
    fmri_rows += [f"lemon,heldout{i},lemon_heldout.npy,{tr},validation" for i in range(2)]
    (folder / "fmri.csv").write_text("subject,session,fmri,repetition_time,split\n" + "\n".join(fmri_rows) + "\n")
    t1_rows = [f"mni,{i},mni152_T1w.nii.gz,train" for i in range(4)] + ["mni,heldout,mni152_T1w.nii.gz,validation"]
    (folder / "t1.csv").write_text("subject,session,t1,split\n" + "\n".join(t1_rows) + "\n")
    # The Harmonizer trains on cached latents of "subjects" = windows of the run at TR 1.4 s and 2.8 s with the T1.
    window = NUM_TIME_PATCHES * round(35.28 / tr)
    latent_rows = []
    for split, starts in (("train", range(0, TRAIN_FRAMES - window, 30)), ("validation", (TRAIN_FRAMES, 500))):
        for index, start in enumerate(starts):
            rate = 1 + index % 2
            frames = fmri.series[:, start : start + window : rate]  # TR' = rate · TR: the same seconds
            name = f"window_{split}_{index}.npy"
            np.save(folder / name, frames)
            latent_rows.append(f"{split}{index},{'mni152_T1w.nii.gz' if index % 3 else ''},{name},{tr * rate},{split}")
    (folder / "latents.csv").write_text("subject,t1,fmri,repetition_time,split\n" + "\n".join(latent_rows) + "\n")
    return {"t1": t1_path, "fmri_manifest": folder / "fmri.csv", "t1_manifest": folder / "t1.csv"}


def pretrain_stage(stage: str, run_dir: Path, config_dir: Path, steps: int, seed: int, **data: str):
    """One short Accelerate pretraining run of `stage` (its model is exported to `run_dir / "model"`)."""
    flags = [stage, "--output_dir", str(run_dir), "--model_config", str(config_dir), "--max_steps", str(steps)]
    flags += ["--eval_steps", str(max(steps // 3, 1)), "--seed", str(seed), "--warmup_ratio", "0.1"]
    flags += ["--learning_rate", "1e-3"]
    if stage == "function":
        flags += ["--fmri_downsample_rates", "1", "2", "3"]
    for name, value in data.items():
        flags += [f"--{name}", value]
    return train(parse_arguments(flags))


def loss_summary(run_dir: Path) -> dict:
    """First and last logged train and held-out losses of a run."""
    log = read_training_log(run_dir)
    summary = {}
    for split in ("train", "validation"):
        losses = log.loc[log["split"] == split, "loss"].to_numpy()
        if len(losses):
            summary[split] = {"first": float(losses[0]), "last": float(losses[-1]), "points": len(losses)}
    return summary


def run_pipeline(output_dir: str | Path, settings: DemoSettings | None = None, log: Callable[[str], None] = print):
    """Run the whole demo into `output_dir` (which must not hold an earlier run); returns the report folder."""
    settings = settings or DemoSettings()
    output_dir = Path(output_dir)
    if output_dir.exists() and any(output_dir.iterdir()):
        raise FileExistsError(f"{output_dir} is not empty: give the demo a new folder with --output.")
    data, runs, models, report = (output_dir / name for name in ("data", "runs", "models", "report"))
    report.mkdir(parents=True)
    timings, start = {}, time.perf_counter()

    def step(name: str):
        timings[name] = round(time.perf_counter() - start - sum(timings.values()), 1)
        log(f"[{time.perf_counter() - start:6.1f} s] {name} done")

    torch.manual_seed(settings.seed)
    inputs = write_inputs(data)
    configs = tiny_stage_configs()
    for stage, config in configs.items():
        config.save_pretrained(models / "configs" / stage)
    step("inputs")

    pretrain_stage(
        "structure",
        runs / "structure",
        models / "configs" / "structure",
        settings.steps["structure"],
        settings.seed,
        manifest=str(inputs["t1_manifest"]),
    )
    step("StructureMAE pretraining")
    pretrain_stage(
        "function",
        runs / "function",
        models / "configs" / "function",
        settings.steps["function"],
        settings.seed,
        manifest=str(inputs["fmri_manifest"]),
    )
    step("FunctionJEPA pretraining")

    # Frozen encoders + a fresh Harmonizer: the encoders' latents are cached once, the Harmonizer trains on them.
    encoders = BrainHarmonixModel.from_stages(
        StructureMAEModel.from_pretrained(runs / "structure" / "model"),
        FunctionJEPAModel.from_pretrained(runs / "function" / "model"),
        HarmonizerModel(configs["harmonizer"]),
    )
    # The processors the encoders were pretrained with, exported beside them.
    processor = BrainHarmonixProcessor(
        T1VolumeFeatureExtractor.from_pretrained(runs / "structure" / "model"),
        FMRIFeatureExtractor.from_pretrained(runs / "function" / "model"),
    )
    cache_latents(encoders, processor, data / "latents.csv", data / "latent_cache", batch_size=2)
    step("latent caching")
    pretrain_stage(
        "harmonizer",
        runs / "harmonizer",
        models / "configs" / "harmonizer",
        settings.steps["harmonizer"],
        settings.seed,
        latents=str(data / "latent_cache"),
    )
    step("Harmonizer pretraining")

    model_dir = models / "brainharmonix"
    BrainHarmonixModel.from_stages(
        encoders.structure, encoders.function, HarmonizerModel.from_pretrained(runs / "harmonizer" / "model")
    ).save_pretrained(model_dir)
    processor.save_pretrained(model_dir)
    from transformers import AutoModel, AutoProcessor

    model, processor = AutoModel.from_pretrained(model_dir).eval(), AutoProcessor.from_pretrained(model_dir)
    step("export and reload")

    sessions_wanted = [
        (f"{subject:02d}", str(session))
        for subject in range(1, settings.bids_subjects + 1)
        for session in range(1, settings.bids_sessions + 1)
    ]
    window = NUM_TIME_PATCHES * round(35.28 / load_fmri_sample().repetition_time)  # frames the tiny model holds
    bids_root = write_sample_derivatives(data / "bids", sessions_wanted, num_timepoints=window)
    sessions = find_bids_sessions(bids_root)
    embedding_run = embed_cohort(model, sessions, output_dir / "embeddings", processor=processor, progress=False)
    step("cohort embedding")

    table = load_embeddings(output_dir / "embeddings").to_pandas()
    keys = [f"{row.subject}_{row.session}" for row in table.itertuples()]
    order = {key: index for index, key in enumerate(f"{s}_{t}" for s, t in sessions_wanted)}
    # Toy target: the sample tree adds noise growing with the session's position; label = the noisier half.
    labels = np.array([int(order[key] >= len(order) // 2) for key in keys])
    embeddings = np.stack(table["embedding"].to_list())
    subjects = table["subject"].to_numpy()
    # Splits by subject: both sessions of a subject are always on the same side.
    splits = repeated_splits(labels, subjects, num_repeats=3, num_folds=3, num_validation_folds=2, seed=settings.seed)
    probe = run_protocol(
        splits,
        labels,
        {"linear_probe": EmbeddingProbe(embeddings, labels)},
        subjects=subjects,
        sessions=table["session"].to_numpy(),
        settings={"target": "noisier half of the sample sessions", "repeats": 3, "folds": 3},
    )
    step("linear probe")

    figures = {
        "loss_curves_" + stage: plot_loss_curves(runs / stage, report / f"loss_curves_{stage}.png") for stage in STAGES
    }
    figures["embedding_scatter"] = plot_embedding_scatter(
        embeddings, labels, report / "embedding_scatter.png", label_name="noisier half"
    )
    figures["t1_input"] = plot_t1_input(inputs["t1"], processor.t1_feature_extractor, report / "t1_input.png")
    fmri = load_fmri_sample()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the run is longer than the tiny model's window: it is cropped, as said
        subject = processor(
            fmri=fmri.series, repetition_time=fmri.repetition_time, layout="rois_first", return_tensors="pt"
        )
    attention = hub_attention_per_roi(model, subject)
    figures["hub_attention"] = plot_hub_attention(attention, report / "hub_attention.png")
    step("figures")

    metrics = {
        "pretraining_losses": {stage: loss_summary(runs / stage) for stage in STAGES},
        "embedding": {
            "sessions": len(sessions),
            "embedded": embedding_run.embedded,
            "failed": embedding_run.failed,
            "dimension": int(embeddings.shape[1]),
        },
        "linear_probe": probe,
        "seconds": timings,
        "model": str(model_dir),
        "figures": sorted(str(report / f"{name}.png") for name in figures),
    }
    (report / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
    return report


def describe(report: Path) -> list[str]:
    """Report lines: losses per stage, the probe's summary, figures and where everything is."""
    metrics = json.loads((report / "metrics.json").read_text())
    lines = []
    for stage, splits in metrics["pretraining_losses"].items():
        parts = [f"{split} {losses['first']:.3f} -> {losses['last']:.3f}" for split, losses in splits.items()]
        lines.append(f"{stage:>10} pretraining loss: {', '.join(parts)}")
    embedding = metrics["embedding"]
    lines.append(
        f"embedded {embedding['embedded']} of {embedding['sessions']} BIDS sessions ({embedding['failed']} failed), "
        f"{embedding['dimension']}-d embeddings"
    )
    probe = metrics["linear_probe"]
    lines.append(
        f"linear probe, splits by subject ({probe['num_subjects']} subjects, {probe['num_sessions']} sessions):"
    )
    for metric in ("balanced_accuracy", "auroc"):
        summary = probe["models"]["linear_probe"]["summary"].get(metric)
        if summary is not None:
            lines.append(
                f"  {metric}: {summary['mean']:.3f} ± {summary['sd']:.3f} (95% CI {summary['ci_low']:.3f} to "
                f"{summary['ci_high']:.3f}, chance {probe['chance'][metric]:.3f})"
            )
    lines.append(f"model: {metrics['model']}")
    lines.append(f"report: {report} (metrics.json and {len(metrics['figures'])} figures)")
    return lines
