# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Spatiotemporal JEPA masks on the ROI × time-patch token grid.

Each series gets a context (what the encoder sees) and targets (what the predictor must predict), drawn on its own
valid part of the grid (`num_rois × n` with `n` its valid time patches), so padded tokens are never context or
targets and the rules work for any grid width W:

1. Observation block: a random subset of `observation_roi_fraction` of the ROIs × a contiguous run of
   `observation_time_fraction` of the valid time patches (8–9 of 10 with the defaults).
2. α target (cross-ROI): `alpha_roi_fraction` of the ROIs (random subset) × a contiguous run of `alpha_time_fraction`
   of the valid patches inside the observation window. The α ROIs leave the context at all times.
3. β/γ targets (cross-time): at the right and at the left edge of the series, `int(n · edge_time_fraction)` columns
   drawn from the outermost `ceil(n · edge_time_high) - 1` columns (columns {7, 8, 9} and {0, 1, 2} for n = 10),
   on `edge_roi_fraction` of the ROIs, taken in equal proportion from the ROIs inside both the observation block and
   α and from the others. Those columns leave the context for every ROI.
4. Context = observation block minus the removals above; targets = the union of α, β and γ (no duplicates), so the
   two are disjoint. Both are flat token indices `roi * W + t`, sorted. Index lists of a batch share one length, the
   shortest series' count: a longer list keeps a uniformly random subset of that size (then sorted), so every ROI and
   every valid time patch of every series is as likely to be kept as any other (cutting the sorted lists would drop
   the last ROIs of long series).

Block sizes (the fractions) are drawn once per batch and block positions per series, all from one
`torch.Generator`, so a seed reproduces a batch. A series whose draw leaves fewer than `min_keep` context tokens is
redrawn (up to `max_attempts` times); targets always hold at least the α block. The sampler only needs the valid
patch counts, so a data collator can call it before the model runs (see
`brainharmonix_hf.modeling.tape.valid_time_patches`).
"""

import math
from dataclasses import dataclass

import torch


@dataclass
class JEPAMasks:
    """The JEPA masking of one batch as token indices, flat over the ROI-major grid (`roi * num_time_patches + t`).

    Attributes:
        context_indices: `(batch, num_context)` long, sorted; the tokens the context encoder sees.
        target_indices: `(batch, num_targets)` long, sorted; the tokens the predictor predicts.
    """

    context_indices: torch.Tensor
    target_indices: torch.Tensor


def _draw_fraction(fraction_range: tuple[float, float], generator: torch.Generator | None) -> float:
    low, high = fraction_range
    return low + torch.rand(1, generator=generator).item() * (high - low)


def _random_subset(population: torch.Tensor, size: int, generator: torch.Generator | None) -> torch.Tensor:
    return population[torch.randperm(len(population), generator=generator)[:size]]


def _equal_length_subsets(index_lists: tuple[torch.Tensor, ...], generator: torch.Generator | None) -> torch.Tensor:
    """`(batch, shortest)`: a uniformly random, sorted subset of each sorted index list, all of the shortest length."""
    length = min(map(len, index_lists))
    return torch.stack(
        [
            indices if len(indices) == length else _random_subset(indices, length, generator).sort().values
            for indices in index_lists
        ]
    )


def _random_start(max_start: int, generator: torch.Generator | None) -> int:
    """A uniform integer in `[0, max_start]`."""
    return int(torch.randint(0, max_start + 1, (1,), generator=generator))


class SpatiotemporalMaskSampler:
    """Draw JEPA context and target token indices for a batch (see the module docstring for the rules).

    Args:
        num_rois: ROIs in the grid (R).
        num_time_patches: time patches in the grid (W).
        observation_roi_fraction, observation_time_fraction, alpha_roi_fraction, alpha_time_fraction,
        edge_roi_fraction, edge_time_fraction: `(low, high)` ranges of the block sizes, as fractions of the ROIs or
            of a series' valid time patches.
        min_keep: fewest context tokens a series may have.
        max_attempts: redraws per series before giving up with an error.

    Example:

    ```python
    >>> sampler = SpatiotemporalMaskSampler(num_rois=400, num_time_patches=18)
    >>> masks = sampler(torch.tensor([18, 9]), generator=torch.Generator().manual_seed(0))
    >>> masks.context_indices.shape[0], masks.target_indices.shape[0]
    (2, 2)
    ```
    """

    def __init__(
        self,
        num_rois: int,
        num_time_patches: int,
        observation_roi_fraction: tuple[float, float] = (0.84, 1.0),
        observation_time_fraction: tuple[float, float] = (0.84, 1.0),
        alpha_roi_fraction: tuple[float, float] = (0.45, 0.6),
        alpha_time_fraction: tuple[float, float] = (0.2, 0.6),
        edge_roi_fraction: tuple[float, float] = (0.15, 0.3),
        edge_time_fraction: tuple[float, float] = (0.0, 0.4),
        min_keep: int = 4,
        max_attempts: int = 20,
    ):
        self.num_rois = num_rois
        self.num_time_patches = num_time_patches
        self.observation_roi_fraction = tuple(observation_roi_fraction)
        self.observation_time_fraction = tuple(observation_time_fraction)
        self.alpha_roi_fraction = tuple(alpha_roi_fraction)
        self.alpha_time_fraction = tuple(alpha_time_fraction)
        self.edge_roi_fraction = tuple(edge_roi_fraction)
        self.edge_time_fraction = tuple(edge_time_fraction)
        self.min_keep = min_keep
        self.max_attempts = max_attempts

    @classmethod
    def from_config(cls, config) -> "SpatiotemporalMaskSampler":
        """The sampler a `FunctionJEPAConfig` describes (its `num_*` grid and `mask_*` fields)."""
        return cls(
            num_rois=config.num_rois,
            num_time_patches=config.num_time_patches,
            observation_roi_fraction=config.mask_observation_roi_fraction,
            observation_time_fraction=config.mask_observation_time_fraction,
            alpha_roi_fraction=config.mask_alpha_roi_fraction,
            alpha_time_fraction=config.mask_alpha_time_fraction,
            edge_roi_fraction=config.mask_edge_roi_fraction,
            edge_time_fraction=config.mask_edge_time_fraction,
            min_keep=config.mask_min_keep,
        )

    def __call__(self, num_valid_time_patches: torch.Tensor, generator: torch.Generator | None = None) -> JEPAMasks:
        """Masks for a batch.

        Args:
            num_valid_time_patches: `(batch,)` valid time patches per series (1..W).
            generator: source of randomness (the global one when `None`).

        Returns:
            `JEPAMasks` on the device of `num_valid_time_patches`.
        """
        counts = num_valid_time_patches.reshape(-1).tolist()
        if not counts or not all(1 <= count <= self.num_time_patches for count in counts):
            raise ValueError(
                f"num_valid_time_patches must hold values in [1, {self.num_time_patches}], got {counts}: compute them "
                "with `valid_time_patches(num_frames, patch_length, num_time_patches)`."
            )
        # The right (β) and left (γ) blocks share the edge ranges but draw their own sizes.
        ranges = {
            "observation_roi": self.observation_roi_fraction,
            "observation_time": self.observation_time_fraction,
            "alpha_roi": self.alpha_roi_fraction,
            "alpha_time": self.alpha_time_fraction,
            "right_roi": self.edge_roi_fraction,
            "right_time": self.edge_time_fraction,
            "left_roi": self.edge_roi_fraction,
            "left_time": self.edge_time_fraction,
        }
        fractions = {name: _draw_fraction(fraction_range, generator) for name, fraction_range in ranges.items()}
        contexts, targets = zip(*(self._sample_series(count, fractions, generator) for count in counts), strict=True)
        device = num_valid_time_patches.device
        return JEPAMasks(
            context_indices=_equal_length_subsets(contexts, generator).to(device),
            target_indices=_equal_length_subsets(targets, generator).to(device),
        )

    def _sample_series(
        self, num_valid: int, fractions: dict[str, float], generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Context and target token indices of one series with `num_valid` valid time patches."""
        for _ in range(self.max_attempts):
            context, targets = self._draw_grids(num_valid, fractions, generator)
            if context.sum() >= self.min_keep:
                return self._flat_indices(context), self._flat_indices(targets)
        raise ValueError(
            f"No mask with at least min_keep = {self.min_keep} context tokens was found in "
            f"{self.max_attempts} draws on a {self.num_rois} × {num_valid} grid: lower min_keep, or shrink the α/edge "
            "fractions, or use longer series."
        )

    def _draw_grids(
        self, num_valid: int, fractions: dict[str, float], generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Boolean `(num_rois, num_valid)` context and target grids."""
        all_rois = torch.arange(self.num_rois)
        context = torch.zeros(self.num_rois, num_valid, dtype=torch.bool)
        targets = torch.zeros_like(context)

        observation_rois = _random_subset(
            all_rois, max(1, int(self.num_rois * fractions["observation_roi"])), generator
        )
        observation_width = min(max(1, int(num_valid * fractions["observation_time"])), num_valid)
        observation_start = _random_start(num_valid - observation_width, generator)
        context[observation_rois, observation_start : observation_start + observation_width] = True

        alpha_rois = _random_subset(all_rois, max(1, int(self.num_rois * fractions["alpha_roi"])), generator)
        alpha_width = min(max(1, int(num_valid * fractions["alpha_time"])), observation_width)
        alpha_start = observation_start + _random_start(observation_width - alpha_width, generator)
        targets[alpha_rois, alpha_start : alpha_start + alpha_width] = True
        context[alpha_rois] = False

        in_observation = torch.zeros(self.num_rois, dtype=torch.bool)
        in_observation[observation_rois] = True
        in_alpha = torch.zeros(self.num_rois, dtype=torch.bool)
        in_alpha[alpha_rois] = True
        in_both = in_observation & in_alpha
        edge_band = min(num_valid, max(0, math.ceil(num_valid * self.edge_time_fraction[1]) - 1))
        for side in ("right", "left"):
            num_columns = min(int(num_valid * fractions[f"{side}_time"]), edge_band)
            if num_columns == 0:
                continue
            columns = torch.randperm(edge_band, generator=generator)[:num_columns]
            if side == "right":
                columns = num_valid - edge_band + columns
            roi_fraction = fractions[f"{side}_roi"]
            edge_rois = torch.cat(
                [
                    _random_subset(all_rois[group], int(int(group.sum()) * roi_fraction), generator)
                    for group in (in_both, ~in_both)
                ]
            )
            targets[edge_rois.unsqueeze(1), columns.unsqueeze(0)] = True
            context[:, columns] = False
        return context, targets

    def _flat_indices(self, grid: torch.Tensor) -> torch.Tensor:
        """Sorted flat indices `roi * W + t` of the true cells of a `(num_rois, n)` grid."""
        rois, times = grid.nonzero(as_tuple=True)
        return rois * self.num_time_patches + times


__all__ = ["JEPAMasks", "SpatiotemporalMaskSampler"]
