# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Training-loss curves from a run folder's `log.jsonl`: one JSON object per line with `step`, `epoch`, `loss`, `lr`,
`samples_per_second` and `split` (`"train"` or `"validation"`), as the pretraining loops write it; validation records
may hold the representation-health metrics (`training.health`) and event records (`event`: `"collapse"`,
`"nonfinite_loss"`) have no loss."""

import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from ..training.health import CollapseThresholds

LOG_FILE = "log.jsonl"
# Health metrics drawn as a fraction of their value at the first evaluation (the initial model).
HEALTH_CURVES = {"relative_spread": "spread between items", "effective_rank": "effective rank (RankMe)"}
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
    """Loss against optimiser step for the train and validation splits (log scale), the learning rate below, and
    when the log has them the held-out representation health: the spread between items and the effective rank as a
    fraction of the initial model's, the collapse threshold dashed and collapse events as red lines.

    Returns:
        the matplotlib Figure; `figure.axes[0].lines` are the loss curves, labelled by split, in `SPLITS` order; the
        health panel (last axes, when drawn) has one line per `HEALTH_CURVES` entry, then the threshold.
    """
    log = read_training_log(run_dir)
    losses = log[log["loss"].notna()]
    has_lr = "lr" in log.columns and log["lr"].notna().any()
    health = log[(log["split"] == "validation") & log["loss"].notna()]
    has_health = all(name in log.columns for name in HEALTH_CURVES) and health["relative_spread"].notna().any()
    heights = [3] + [1] * bool(has_lr) + [1.5] * bool(has_health)
    figure, axes = plt.subplots(
        len(heights),
        1,
        figsize=(6, 3 + 1.5 * (len(heights) - 1)),
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    loss_axis = axes[0, 0]
    for split, marker in zip(SPLITS, ("", "o"), strict=True):
        rows = losses[losses["split"] == split]
        if len(rows):
            loss_axis.plot(rows["step"], rows["loss"], marker=marker, markersize=3, label=split)
    loss_axis.set_ylabel("loss")
    if (losses["loss"] > 0).all():
        loss_axis.set_yscale("log")
    loss_axis.legend()
    loss_axis.set_title(f"Training run {Path(run_dir).name}")
    if has_lr:
        train = log[(log["split"] == "train") & log["lr"].notna()]
        axes[1, 0].plot(train["step"], train["lr"], color="0.3")
        axes[1, 0].set_ylabel("learning rate")
    if has_health:
        _plot_health(axes[-1, 0], health.dropna(subset=list(HEALTH_CURVES)), log)
    axes[-1, 0].set_xlabel("step")
    figure.tight_layout()
    if output is not None:
        figure.savefig(Path(output), dpi=dpi)
    return figure


def _plot_health(axis, health: pd.DataFrame, log: pd.DataFrame) -> None:
    for name, label in HEALTH_CURVES.items():
        axis.plot(health["step"], health[name] / health[name].iloc[0], marker="o", markersize=3, label=label)
    threshold = CollapseThresholds().spread_ratio
    axis.axhline(threshold, color="0.5", linestyle="--", linewidth=1, label="collapse threshold")
    if "event" in log.columns:
        for step in log.loc[log["event"] == "collapse", "step"]:
            axis.axvline(step, color="tab:red", linewidth=1)
    axis.set_ylabel("held-out health\n(x initial)")
    axis.legend(fontsize=7)
