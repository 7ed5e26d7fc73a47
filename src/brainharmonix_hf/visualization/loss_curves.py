# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Training-loss curves from a run folder's `log.jsonl`: one JSON object per line with `step`, `epoch`, `loss`, `lr`,
`samples_per_second` and `split` (`"train"` or `"validation"`), as the pretraining loops write it."""

import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

LOG_FILE = "log.jsonl"
SPLITS = ("train", "validation")


def read_training_log(run_dir: str | os.PathLike) -> pd.DataFrame:
    """The records of `<run_dir>/log.jsonl` (or of the given `.jsonl` file) as a DataFrame, in file order."""
    path = Path(run_dir)
    path = path / LOG_FILE if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: pass a training run folder that holds {LOG_FILE}.")
    log = pd.DataFrame.from_records(
        [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    )
    missing = [column for column in ("step", "loss", "split") if column not in log.columns]
    if missing:
        raise ValueError(f"{path} has no {missing} field(s); each line needs step, loss and split (train/validation).")
    return log


def plot_loss_curves(run_dir: str | os.PathLike, output: str | os.PathLike | None = None, dpi: int = 100):
    """Loss against optimiser step for the train and validation splits (log scale), and the learning rate below.

    Returns:
        the matplotlib Figure; `figure.axes[0].lines` are the loss curves, labelled by split, in `SPLITS` order.
    """
    log = read_training_log(run_dir)
    has_lr = "lr" in log.columns and log["lr"].notna().any()
    figure, axes = plt.subplots(
        2 if has_lr else 1,
        1,
        figsize=(6, 4.5 if has_lr else 3),
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": [3, 1]} if has_lr else None,
    )
    loss_axis = axes[0, 0]
    for split, marker in zip(SPLITS, ("", "o"), strict=True):
        rows = log[log["split"] == split]
        if len(rows):
            loss_axis.plot(rows["step"], rows["loss"], marker=marker, markersize=3, label=split)
    loss_axis.set_ylabel("loss")
    if (log["loss"] > 0).all():
        loss_axis.set_yscale("log")
    loss_axis.legend()
    loss_axis.set_title(f"Training run {Path(run_dir).name}")
    if has_lr:
        train = log[(log["split"] == "train") & log["lr"].notna()]
        axes[1, 0].plot(train["step"], train["lr"], color="0.3")
        axes[1, 0].set_ylabel("learning rate")
    axes[-1, 0].set_xlabel("step")
    figure.tight_layout()
    if output is not None:
        figure.savefig(Path(output), dpi=dpi)
    return figure
