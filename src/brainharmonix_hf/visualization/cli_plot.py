# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""`brainharmonix plot attention|losses|embeddings|t1`: one PNG per call."""

import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..cohort.embedding_store import EMBEDDINGS_FILE
from ..modeling.modeling_brainharmonix import BrainHarmonixModel
from ..processing.feature_extraction_t1 import T1VolumeFeatureExtractor
from ..processing.fmri_files import default_layout
from ..processing.processing_brainharmonix import BrainHarmonixProcessor
from .embedding_scatter import plot_embedding_scatter
from .hub_attention import hub_attention_per_roi, plot_hub_attention
from .loss_curves import plot_loss_curves
from .t1_input import plot_t1_input


def add_plot_command(subcommands) -> None:
    """Register `plot` (with one sub-subcommand per picture) on the `brainharmonix` subcommand parser."""
    plot = subcommands.add_parser("plot", help="Draw a picture (PNG): attention, losses, embeddings or t1.")
    pictures = plot.add_subparsers(dest="picture", required=True)

    attention = pictures.add_parser("attention", help="Hub-token attention over fMRI ROIs, on the cortex.")
    attention.add_argument("--model", required=True, help="BrainHarmonixModel folder.")
    attention.add_argument("--fmri", type=Path, help="ROI series (.tsv table or ROI .csv); default: bundled LEMON run.")
    attention.add_argument("--repetition-time", type=float, help="TR in seconds of --fmri.")
    attention.add_argument("--t1", type=Path, help="MNI-space T1 NIfTI (default: none, fMRI only).")
    attention.add_argument("--hub-token", type=int, nargs="+", default=[0, 1, 2], help="Hub tokens to draw.")
    attention.add_argument("--layer", type=int, default=-1, help="Harmonizer layer (default the last).")
    attention.set_defaults(run=run_plot_attention)

    losses = pictures.add_parser("losses", help="Training-loss curves from a run folder's log.jsonl.")
    losses.add_argument("--run-dir", type=Path, required=True, help="Training run folder (with log.jsonl).")
    losses.set_defaults(run=lambda args: _save(plot_loss_curves(args.run_dir), args.output))

    embeddings = pictures.add_parser("embeddings", help="PCA scatter of a `brainharmonix embed` table.")
    embeddings.add_argument("--embeddings", type=Path, required=True, help="embed output folder or its .parquet.")
    embeddings.add_argument("--labels", type=Path, help="CSV/TSV with a subject column (and session) and labels.")
    embeddings.add_argument("--label-column", default="label", help="Column of --labels to colour by.")
    embeddings.set_defaults(run=run_plot_embeddings)

    t1 = pictures.add_parser("t1", help="The T1 with the box the model sees.")
    t1.add_argument("--t1", type=Path, required=True, help="T1 NIfTI.")
    t1.add_argument("--model", help="Model folder whose processor decides the box (default: the standard one).")
    t1.set_defaults(run=run_plot_t1)

    for picture in (attention, losses, embeddings, t1):
        picture.add_argument("--output", type=Path, required=True, help="PNG file to write.")


def run_plot_attention(args: argparse.Namespace) -> None:
    from ..sample_data import load_fmri_sample

    model = BrainHarmonixModel.from_pretrained(args.model)
    if args.fmri is None:
        sample = load_fmri_sample()
        fmri, repetition_time = sample.series, sample.repetition_time
    else:
        if args.repetition_time is None:
            raise SystemExit("--fmri needs --repetition-time (seconds).")
        fmri, repetition_time = str(args.fmri), args.repetition_time
    inputs = BrainHarmonixProcessor.for_model(args.model, model.config)(
        t1=None if args.t1 is None else str(args.t1),
        fmri=fmri,
        repetition_time=repetition_time,
        layout="rois_first" if args.fmri is None else default_layout(args.fmri),
        return_tensors="pt",
    )
    attention = hub_attention_per_roi(model, inputs, layer=args.layer)
    atlas = model.config.function_config.atlas
    _save(plot_hub_attention(attention, hub_tokens=args.hub_token, atlas=atlas), args.output)


def run_plot_embeddings(args: argparse.Namespace) -> None:
    path = args.embeddings / EMBEDDINGS_FILE if args.embeddings.is_dir() else args.embeddings
    table = pd.read_parquet(path)
    labels = None
    if args.labels is not None:
        separator = "\t" if args.labels.suffix == ".tsv" else ","
        label_table = pd.read_csv(args.labels, sep=separator, dtype={"subject": str, "session": str})
        keys = ["subject", "session"] if "session" in label_table.columns else ["subject"]
        if "session" in keys:
            label_table["session"] = label_table["session"].fillna("")  # rows without a session have session ""
        table = table.merge(label_table[[*keys, args.label_column]], on=keys, how="inner")
        if table.empty:
            raise SystemExit(f"No subject of {path} is in {args.labels}.")
        labels = table[args.label_column]
    figure = plot_embedding_scatter(np.stack(table["embedding"].to_numpy()), labels, label_name=args.label_column)
    _save(figure, args.output)


def run_plot_t1(args: argparse.Namespace) -> None:
    if args.model is None:
        extractor = T1VolumeFeatureExtractor()
    else:
        extractor = BrainHarmonixProcessor.for_model(
            args.model, BrainHarmonixModel.from_pretrained(args.model).config
        ).t1_feature_extractor
    _save(plot_t1_input(str(args.t1), extractor), args.output)


def _save(figure, output: Path) -> None:
    figure.savefig(output, dpi=100)
    plt.close(figure)
    print(f"Wrote {output}")
