"""Representation health metrics: values on embeddings with known structure, and the collapse verdict."""

import math

import pytest
import torch

from brainharmonix_hf.training.health import (
    CollapseThresholds,
    collapse_reasons,
    effective_rank,
    representation_health,
)


def test_isotropic_gaussian_embeddings_are_healthy():
    embeddings = torch.randn(256, 16, generator=torch.Generator().manual_seed(0))
    health = representation_health(embeddings)
    assert health.num_samples == 256
    assert health.feature_std == pytest.approx(1.0, abs=0.08)
    assert health.relative_spread == pytest.approx(1.0, abs=0.01)  # zero mean: every bit of size is spread
    assert 13.5 < health.effective_rank <= 16  # nearly the full 16 dimensions
    assert abs(health.mean_cosine_similarity) < 0.02
    assert collapse_reasons(health) == []


def test_identical_embeddings_are_a_complete_collapse():
    embeddings = torch.tensor([[3.0, -1.0, 2.0]]).repeat(10, 1)
    health = representation_health(embeddings)
    assert health.feature_std == 0.0 and health.relative_spread == 0.0
    assert health.effective_rank == 1.0
    assert health.mean_cosine_similarity == pytest.approx(1.0)
    assert "nearly the same embedding" in collapse_reasons(health)[0]


def test_effective_rank_counts_the_directions_of_variation_not_the_shared_mean():
    generator = torch.Generator().manual_seed(1)
    # Three equally strong orthogonal directions around a large common vector.
    directions = torch.linalg.qr(torch.randn(32, 3, generator=generator)).Q.T  # (3, 32) orthonormal rows
    coefficients = torch.linalg.qr(torch.randn(300, 3, generator=generator)).Q  # orthonormal columns, equal norms
    coefficients = coefficients - coefficients.mean(dim=0)
    embeddings = 100.0 * torch.ones(32) + coefficients @ directions
    assert effective_rank(embeddings) == pytest.approx(3.0, abs=0.05)
    health = representation_health(embeddings)
    assert health.mean_cosine_similarity > 0.99  # the raw embeddings share their mean ...
    assert health.relative_spread < 0.01  # ... which is most of their size


def test_collapse_relative_to_the_initial_model():
    generator = torch.Generator().manual_seed(2)
    initial = representation_health(torch.randn(64, 8, generator=generator))
    shrunk = representation_health(1.0 + 0.02 * torch.randn(64, 8, generator=generator))
    reasons = collapse_reasons(shrunk, reference=initial)
    assert any("spread fell" in reason for reason in reasons)
    one_direction = torch.randn(64, 1, generator=generator) * torch.randn(1, 8, generator=generator)
    reasons = collapse_reasons(representation_health(one_direction), reference=initial)
    assert any("effective rank fell" in reason for reason in reasons)
    assert collapse_reasons(initial, reference=initial) == []
    strict = CollapseThresholds(spread_ratio=1.1)
    assert collapse_reasons(initial, reference=initial, thresholds=strict) != []


@pytest.mark.parametrize(
    ("embeddings", "message"),
    [
        (torch.ones(1, 4), "num_samples >= 2"),
        (torch.ones(4), "num_samples >= 2"),
        (torch.full((3, 2), math.nan), "NaN"),
    ],
)
def test_bad_embeddings_are_refused(embeddings, message):
    with pytest.raises(ValueError, match=message):
        representation_health(embeddings)
