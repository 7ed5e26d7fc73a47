# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Spatiotemporal JEPA mask sampler: disjoint, never padded, block sizes in range, reproducible."""

import pytest
import torch

from brainharmonix_hf import FunctionJEPAConfig, SpatiotemporalMaskSampler

NUM_ROIS, NUM_TIME_PATCHES = 40, 10


def grid_cells(indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat ROI-major indices -> (roi, time patch)."""
    return indices // NUM_TIME_PATCHES, indices % NUM_TIME_PATCHES


def sample(sampler, num_valid, seed):
    return sampler(torch.tensor(num_valid), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("seed", range(5))
def test_context_and_targets_are_disjoint_sorted_and_never_padded(seed):
    sampler = SpatiotemporalMaskSampler(NUM_ROIS, NUM_TIME_PATCHES)
    num_valid = [10, 6, 3, 10]
    masks = sample(sampler, num_valid, seed)
    assert masks.context_indices.shape[0] == masks.target_indices.shape[0] == 4
    for row, valid in enumerate(num_valid):
        context, targets = masks.context_indices[row], masks.target_indices[row]
        assert len(context) >= 4 and len(targets) >= 1
        assert torch.equal(context, context.unique()) and torch.equal(targets, targets.unique())  # sorted, no repeats
        assert not set(context.tolist()) & set(targets.tolist())
        assert int(grid_cells(context)[1].max()) < valid and int(grid_cells(targets)[1].max()) < valid


def fixed_half_alpha_sampler() -> SpatiotemporalMaskSampler:
    """Everything observed; half the ROIs form the α block over half the patches; no edge blocks."""
    return SpatiotemporalMaskSampler(
        NUM_ROIS,
        NUM_TIME_PATCHES,
        observation_roi_fraction=(1.0, 1.0),
        observation_time_fraction=(1.0, 1.0),
        alpha_roi_fraction=(0.5, 0.5),
        alpha_time_fraction=(0.5, 0.5),
        edge_time_fraction=(0.0, 0.0),
    )


def test_exact_block_sizes_with_fixed_fractions():
    # Everything observed; half the ROIs (20) form the α block over half the patches (5); no edge blocks.
    sampler = fixed_half_alpha_sampler()
    masks = sample(sampler, [10], seed=0)
    context_rois, _context_times = grid_cells(masks.context_indices[0])
    target_rois, target_times = grid_cells(masks.target_indices[0])
    assert masks.context_indices.shape == (1, 20 * 10)  # the 20 other ROIs at every time
    assert masks.target_indices.shape == (1, 20 * 5)
    assert set(context_rois.tolist()).isdisjoint(target_rois.tolist())
    window = sorted(set(target_times.tolist()))
    assert window == list(range(window[0], window[0] + 5))  # one contiguous α window


@pytest.mark.parametrize("seed", range(5))
def test_default_block_sizes_stay_in_their_ranges(seed):
    sampler = SpatiotemporalMaskSampler(NUM_ROIS, NUM_TIME_PATCHES)
    masks = sample(sampler, [10], seed)
    context_rois, context_times = grid_cells(masks.context_indices[0])
    target_rois, _target_times = grid_cells(masks.target_indices[0])
    # Observation 33–40 ROIs (84–100%) minus 18–23 α ROIs (45–60%), whose removal is over all times.
    assert int(40 * 0.84) - int(40 * 0.6) <= len(context_rois.unique()) <= 40 - int(40 * 0.45)
    # Observation window of 8–9 patches of 10, minus removed edge columns: a span of at most 9.
    assert int(context_times.max() - context_times.min()) + 1 <= 9
    # Targets: α ROIs (18–23) plus the β/γ ROIs; at least the α block of 18 ROIs × 2 patches.
    assert len(target_rois.unique()) >= int(40 * 0.45)
    assert len(target_rois) >= int(40 * 0.45) * 2


def test_edge_columns_come_from_the_three_outer_columns_on_a_ten_patch_grid():
    # One α ROI at one time patch, so every other target is a β/γ edge target.
    sampler = SpatiotemporalMaskSampler(
        NUM_ROIS,
        NUM_TIME_PATCHES,
        observation_roi_fraction=(1.0, 1.0),
        observation_time_fraction=(1.0, 1.0),
        alpha_roi_fraction=(0.025, 0.025),
        alpha_time_fraction=(0.1, 0.1),
    )
    removed_columns = set()
    for seed in range(20):
        masks = sample(sampler, [10], seed)
        context_times = set(grid_cells(masks.context_indices[0])[1].tolist())
        missing = set(range(10)) - context_times
        assert missing <= {0, 1, 2, 7, 8, 9}
        removed_columns |= missing
        # Each removed column holds targets on 15–30% of the 39 non-α ROIs (the α ROI may add one more).
        _target_rois, target_times = grid_cells(masks.target_indices[0])
        for column in missing:
            assert int(39 * 0.15) <= int((target_times == column).sum()) <= int(39 * 0.3) + 1
    assert removed_columns == {0, 1, 2, 7, 8, 9}


def test_same_seed_same_masks_other_seed_other_masks():
    sampler = SpatiotemporalMaskSampler(NUM_ROIS, NUM_TIME_PATCHES)
    first, again, other = (sample(sampler, [10, 7], seed) for seed in (3, 3, 4))
    assert torch.equal(first.context_indices, again.context_indices) and torch.equal(
        first.target_indices, again.target_indices
    )
    assert not torch.equal(first.context_indices, other.context_indices)


def test_lists_share_the_shortest_length_as_random_subsets():
    # Fixed fractions: a 10-patch series gets 20 × 10 context and 20 × 5 targets, a 5-patch one 20 × 5 and 20 × 2.
    sampler = fixed_half_alpha_sampler()
    masks = sample(sampler, [10, 5], seed=0)
    assert masks.context_indices.shape == (2, 100) and masks.target_indices.shape == (2, 40)
    full = sample(sampler, [10], seed=0)  # the same first draw, alone: nothing cut
    assert set(masks.context_indices[0].tolist()) < set(full.context_indices[0].tolist())
    # A random half of the long series' context, not its lowest indices (which would be its first 10 ROIs).
    context_rois, _ = grid_cells(masks.context_indices[0])
    assert len(context_rois.unique()) > 15


def cell_frequencies(sampler, num_valid: list[int], draws: int) -> dict[str, torch.Tensor]:
    """How often each ROI and each time patch of the first series is context / target over `draws` batches, as a
    distribution (each sums to 1)."""
    counts = {
        name: torch.zeros(size)
        for name, size in (
            ("context_roi", NUM_ROIS),
            ("context_time", NUM_TIME_PATCHES),
            ("target_roi", NUM_ROIS),
            ("target_time", NUM_TIME_PATCHES),
        )
    }
    generator = torch.Generator().manual_seed(0)
    for _ in range(draws):
        masks = sampler(torch.tensor(num_valid), generator=generator)
        for kind, indices in (("context", masks.context_indices[0]), ("target", masks.target_indices[0])):
            rois, times = grid_cells(indices)
            counts[f"{kind}_roi"] += torch.bincount(rois, minlength=NUM_ROIS)
            counts[f"{kind}_time"] += torch.bincount(times, minlength=NUM_TIME_PATCHES)
    return {name: count / count.sum() for name, count in counts.items()}


def test_mask_sampler_unbiased_in_mixed_length_batches():
    # A full 10-patch series batched with a 3-patch one loses most of its indices to the common length; what it keeps
    # must be spread over the ROIs and time patches as when it is sampled alone.
    sampler = SpatiotemporalMaskSampler(NUM_ROIS, NUM_TIME_PATCHES)
    alone = cell_frequencies(sampler, [10], draws=2000)
    mixed = cell_frequencies(sampler, [10, 3], draws=2000)
    for name, expected in alone.items():
        assert (expected > 0).all(), name  # every ROI and valid patch is context and target sometimes
        relative_error = ((mixed[name] - expected).abs() / expected).max()
        assert relative_error < 0.25, (name, relative_error.item(), mixed[name], expected)


def test_sampler_from_config_reads_the_mask_fields():
    config = FunctionJEPAConfig(
        num_rois=12, num_gradient_components=3, num_time_patches=6, mask_alpha_roi_fraction=(0.3, 0.4), mask_min_keep=2
    )
    sampler = SpatiotemporalMaskSampler.from_config(config)
    assert (sampler.num_rois, sampler.num_time_patches, sampler.min_keep) == (12, 6, 2)
    assert sampler.alpha_roi_fraction == (0.3, 0.4)


def test_impossible_min_keep_and_bad_counts_are_refused():
    greedy = SpatiotemporalMaskSampler(4, 2, min_keep=50)
    with pytest.raises(ValueError, match="min_keep = 50"):
        greedy(torch.tensor([2]), generator=torch.Generator().manual_seed(0))
    sampler = SpatiotemporalMaskSampler(NUM_ROIS, NUM_TIME_PATCHES)
    with pytest.raises(ValueError, match=r"values in \[1, 10\]"):
        sampler(torch.tensor([11]))
