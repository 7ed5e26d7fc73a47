# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Representation health: is a pretraining run learning a representation, or collapsing?

A self-supervised loss can fall while the encoder maps every input to (nearly) the same embedding: the JEPA loss of
FunctionJEPA then goes to zero because the targets no longer depend on the input. The loss cannot show this; the
spread of the embeddings of different inputs can. Computed on `(num_samples, dim)` embeddings of a held-out set (one
pooled embedding per sample):

- `feature_std`: the standard deviation over samples of each dimension, averaged over dimensions (the collapse
  monitor of SimSiam, Chen & He 2021), in the embeddings' units.
- `relative_spread`: `sqrt(mean ||e_i - ē||²) / sqrt(mean ||e_i||²)`, the part of the embeddings' size that differs
  between samples: 0 when every sample has the same embedding, 1 when the embeddings have zero mean. Unlike
  `feature_std` it does not depend on the scale, so one threshold fits every model.
- `effective_rank`: RankMe (Garrido et al. 2023), `exp(entropy(σ / Σσ))` of the singular values σ of the embeddings
  after removing their mean over samples, so a direction shared by every sample (for FunctionJEPA the positional part
  that every token carries) does not count. 1 when the samples vary along one direction (or not at all), up to
  `min(num_samples - 1, dim)`.
- `mean_cosine_similarity`: the mean cosine similarity of the raw embeddings over all pairs of distinct samples.

`collapse_reasons` turns these into a verdict. Thresholds (`CollapseThresholds`), and why:

- complete collapse, `relative_spread < 1e-3`: embeddings that differ by less than 0.1 % of their size are the same
  vector once stored in bfloat16 (8 significant bits: a relative step of 0.4 %), as the latent cache stores them;
  no readout can tell the samples apart.
- collapse relative to the start of the run (the initial model is the reference, `reference=`): the spread falls
  below a quarter of the reference's (`spread_ratio`: the variance between samples below 1/16 of the initial
  model's), or the effective rank below a quarter of it (`rank_ratio`). Measured on the real-data benchmark
  (`benchmarks/representation_learning.py`, 7 HCP subjects): a FunctionJEPA whose tokens were dominated by their
  positions collapsed in 150 steps (held-out JEPA loss 0.46 -> 0.007, mean cosine 0.991 -> 1.000) with its spread
  falling to 0.21 of the initial model's; a run whose weights all decay away (the test built to collapse) falls to
  0.12-0.18; runs that learn keep or raise their spread (0.55 -> 0.95) and keep over a third of their initial
  effective rank.
"""

import math
from dataclasses import asdict, dataclass

import torch

HEALTH_METRICS = ("feature_std", "relative_spread", "effective_rank", "mean_cosine_similarity")


@dataclass(frozen=True)
class RepresentationHealth:
    """Health metrics of a set of embeddings (see the module docstring)."""

    num_samples: int
    feature_std: float
    relative_spread: float
    effective_rank: float
    mean_cosine_similarity: float

    def metrics(self) -> dict[str, float]:
        """The four metrics and the sample count by name, for a log record."""
        values = asdict(self)
        return {name: values[name] for name in ("num_samples", *HEALTH_METRICS)}

    @classmethod
    def from_record(cls, record: dict) -> "RepresentationHealth":
        """The health a log record holds (as written from `metrics()`)."""
        return cls(**{name: record[name] for name in ("num_samples", *HEALTH_METRICS)})


@dataclass(frozen=True)
class CollapseThresholds:
    """Where the collapse verdict draws its lines (justified in the module docstring)."""

    min_relative_spread: float = 1e-3
    spread_ratio: float = 0.25
    rank_ratio: float = 0.25


def effective_rank(embeddings: torch.Tensor) -> float:
    """RankMe of `(num_samples, dim)` embeddings after removing their mean over samples: `exp(H(p))`, `p = σ / Σσ`."""
    centered = embeddings.double() - embeddings.double().mean(dim=0)
    singular_values = torch.linalg.svdvals(centered)
    total = float(singular_values.sum())
    if total == 0.0:
        return 1.0
    shares = singular_values / total
    shares = shares[shares > 0]
    return math.exp(float(-(shares * shares.log()).sum()))


def representation_health(embeddings: torch.Tensor) -> RepresentationHealth:
    """Health metrics of `(num_samples, dim)` embeddings (at least two samples), computed in float64."""
    if embeddings.ndim != 2 or embeddings.shape[0] < 2:
        raise ValueError(
            f"Health metrics need (num_samples >= 2, dim) embeddings, got shape {tuple(embeddings.shape)}: use a "
            "held-out set of at least two samples."
        )
    values = embeddings.detach().double().cpu()
    if not bool(torch.isfinite(values).all()):
        raise ValueError("The embeddings hold NaN or Inf values: the encoder's outputs are not finite.")
    num_samples = values.shape[0]
    deviations = values - values.mean(dim=0)
    size = float(values.pow(2).sum(dim=1).mean().sqrt())
    spread = float(deviations.pow(2).sum(dim=1).mean().sqrt())
    unit = torch.nn.functional.normalize(values, dim=1)
    similarity = unit @ unit.T
    off_diagonal = (similarity.sum() - similarity.diagonal().sum()) / (num_samples * (num_samples - 1))
    return RepresentationHealth(
        num_samples=num_samples,
        feature_std=float(values.std(dim=0).mean()),
        relative_spread=spread / size if size > 0 else 0.0,
        effective_rank=effective_rank(values),
        mean_cosine_similarity=float(off_diagonal),
    )


def collapse_reasons(
    health: RepresentationHealth,
    reference: RepresentationHealth | None = None,
    thresholds: CollapseThresholds = CollapseThresholds(),
) -> list[str]:
    """Why `health` shows a collapsed representation (an empty list when it does not).

    Args:
        health: the metrics now.
        reference: the metrics of the same encoder at the start of the run (the initial model), for the relative
            tests; without it only the complete-collapse test runs.
        thresholds: where the lines are drawn.
    """
    reasons = []
    if health.relative_spread < thresholds.min_relative_spread:
        reasons.append(
            f"every sample has nearly the same embedding (relative spread {health.relative_spread:.2e} < "
            f"{thresholds.min_relative_spread:g})"
        )
    if reference is not None:
        if health.relative_spread < thresholds.spread_ratio * reference.relative_spread:
            reasons.append(
                f"the embeddings' spread fell to {health.relative_spread / reference.relative_spread:.1%} of the "
                f"initial model's (below {thresholds.spread_ratio:.0%})"
            )
        if health.effective_rank < thresholds.rank_ratio * reference.effective_rank:
            reasons.append(
                f"the effective rank fell from {reference.effective_rank:.2f} to {health.effective_rank:.2f} (below "
                f"{thresholds.rank_ratio:.0%} of the initial model's)"
            )
    return reasons


__all__ = [
    "HEALTH_METRICS",
    "CollapseThresholds",
    "RepresentationHealth",
    "collapse_reasons",
    "effective_rank",
    "representation_health",
]
