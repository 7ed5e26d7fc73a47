# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""TAPE: the pseudo-inverse kernel resize and its cache, token grids and masks, mixed-TR batches."""

import math

import pytest
import torch
from transformers.testing_utils import CaptureLogger

from brainharmonix_hf.modeling import tape
from brainharmonix_hf.modeling.tape import TAPEPatchEmbedding, pi_resize_matrix

WINDOW_SECONDS = 35.28
NUM_TIME_PATCHES = 18


def bicubic_resize_matrix(base_length: int, new_length: int) -> torch.Tensor:
    """`B` (new_length × base_length): column i is the one-hot e_i resized to new_length (bicubic, antialiased)."""
    basis = torch.eye(base_length, dtype=torch.float64).reshape(base_length, 1, 1, base_length)
    resized = torch.nn.functional.interpolate(basis, size=(1, new_length), mode="bicubic", antialias=True)
    return resized.reshape(base_length, new_length).T


def embedding(hidden_size: int = 64, seed: int = 0) -> TAPEPatchEmbedding:
    torch.manual_seed(seed)
    module = TAPEPatchEmbedding(hidden_size, NUM_TIME_PATCHES, 48, WINDOW_SECONDS)
    torch.nn.init.trunc_normal_(module.proj.weight, std=0.02)
    torch.nn.init.normal_(module.proj.bias, std=0.02)
    return module.eval()


def slow_oscillations(times: torch.Tensor, num_rois: int, seed: int) -> torch.Tensor:
    """`(num_rois, len(times))` sums of five 0.01–0.1 Hz sinusoids (BOLD-like) with random phases and amplitudes."""
    generator = torch.Generator().manual_seed(seed)
    frequency = 0.01 + 0.09 * torch.rand(num_rois, 5, 1, generator=generator, dtype=torch.float64)
    phase = 2 * math.pi * torch.rand(num_rois, 5, 1, generator=generator, dtype=torch.float64)
    amplitude = torch.randn(num_rois, 5, 1, generator=generator, dtype=torch.float64)
    return (amplitude * torch.sin(2 * math.pi * frequency * times.double() + phase)).sum(1).float()


def test_base_patch_length_is_the_identity():
    torch.testing.assert_close(pi_resize_matrix(48, 48), torch.eye(48, dtype=torch.float64))
    module = embedding()
    series = torch.randn(2, 5, 48 * NUM_TIME_PATCHES)
    with torch.no_grad():
        tokens = module(series, torch.tensor([0.735, 0.735])).embeddings
        expected = module.proj(series.unsqueeze(1)).flatten(2).transpose(1, 2)
    assert torch.equal(tokens, expected)


def test_resize_matrix_is_the_pseudo_inverse_of_the_bicubic_resize():
    resize = bicubic_resize_matrix(48, 24)
    expected = torch.linalg.pinv(resize.T)
    torch.testing.assert_close(pi_resize_matrix(48, 24), expected)
    # Upsampling keeps every inner product exactly: <B x, pinv(Bᵀ) w> = <x, w>.
    generator = torch.Generator().manual_seed(0)
    signal, kernel = (
        torch.randn(48, generator=generator, dtype=torch.float64),
        torch.randn(48, generator=generator, dtype=torch.float64),
    )
    upsampled = bicubic_resize_matrix(48, 96) @ signal
    torch.testing.assert_close(upsampled @ (pi_resize_matrix(48, 96) @ kernel), signal @ kernel)


def test_same_signal_at_tr_and_twice_tr_gives_close_tokens():
    module = embedding()
    duration = 6 * WINDOW_SECONDS  # six full windows
    fine_times = torch.arange(round(duration / 0.735)) * 0.735
    coarse_times = torch.arange(round(duration / 1.47)) * 1.47
    fine = slow_oscillations(fine_times, num_rois=10, seed=1)
    coarse = slow_oscillations(coarse_times, num_rois=10, seed=1)  # the same oscillations, every other frame
    unrelated = slow_oscillations(fine_times, num_rois=10, seed=2)
    with torch.no_grad():
        fine_tokens, coarse_tokens, unrelated_tokens = (
            module(series[None], torch.tensor([tr])).embeddings[0].view(10, NUM_TIME_PATCHES, -1)[:, :6]
            for series, tr in ((fine, 0.735), (coarse, 1.47), (unrelated, 0.735))
        )
    same = torch.nn.functional.cosine_similarity(fine_tokens, coarse_tokens, dim=-1)
    different = torch.nn.functional.cosine_similarity(fine_tokens, unrelated_tokens, dim=-1).abs()
    assert same.mean() > 0.98 and same.min() > 0.95, same
    assert different.mean() < 0.5, different
    assert same.mean() - different.mean() > 0.5


@pytest.mark.parametrize(
    ("repetition_time", "patch_length"), [(0.72, 49), (0.8, 44), (1.4, 25), (2.0, 18), (2.5, 14), (3.0, 12)]
)
def test_token_grid_and_mask_at_common_trs(repetition_time, patch_length):
    num_frames = round(300 / repetition_time)  # five minutes
    module = embedding(hidden_size=16)
    with torch.no_grad():
        outputs = module(torch.randn(2, 7, num_frames), torch.tensor([repetition_time] * 2))
    num_valid = math.ceil(num_frames / patch_length)
    assert outputs.embeddings.shape == (2, 7 * NUM_TIME_PATCHES, 16)
    assert outputs.num_valid_time_patches.tolist() == [num_valid, num_valid]
    expected_mask = (torch.arange(NUM_TIME_PATCHES) < num_valid).long().repeat(7)
    assert torch.equal(outputs.token_mask, expected_mask.expand(2, -1))


def test_mixed_trs_in_one_batch_equal_per_tr_batches():
    module = embedding()
    series = torch.randn(4, 5, 400)
    repetition_time = torch.tensor([2.0, 0.8, 2.0, 3.0])
    attention_mask = torch.ones(4, 400, dtype=torch.long)
    attention_mask[0, 150:] = 0
    attention_mask[3, 100:] = 0
    with torch.no_grad():
        mixed = module(series, repetition_time, attention_mask)
        for tr in (2.0, 0.8, 3.0):
            rows = (repetition_time == tr).nonzero().squeeze(1)
            alone = module(series[rows], repetition_time[rows], attention_mask[rows])
            torch.testing.assert_close(mixed.embeddings[rows], alone.embeddings, atol=1e-6, rtol=1e-6)
            assert torch.equal(mixed.token_mask[rows], alone.token_mask)
    assert mixed.num_valid_time_patches.tolist() == [9, 10, 18, 9]  # 150 / 18, 400 / 44, 400 / 18 → 18, 100 / 12


def test_lengths_read_once_serve_every_embedding_of_the_batch():
    module = embedding()
    series = torch.randn(3, 5, 400)
    repetition_time = torch.tensor([2.0, 0.8, 3.0])
    attention_mask = torch.ones(3, 400, dtype=torch.long)
    attention_mask[0, 150:] = 0
    lengths = module.read_series_lengths(series, repetition_time, attention_mask)
    assert lengths.patch_lengths == [18, 44, 12] and lengths.num_frames == [150, 400, 400]
    with torch.no_grad():
        read_here = module(series, repetition_time, attention_mask)
        read_before = module(series, repetition_time, attention_mask, series_lengths=lengths)
    assert torch.equal(read_before.embeddings, read_here.embeddings)
    assert torch.equal(read_before.token_mask, read_here.token_mask)
    with pytest.raises(ValueError, match="describes 3 series for a batch of 2"):
        module(series[:2], repetition_time[:2], attention_mask[:2], series_lengths=lengths)


def test_tokens_take_the_weights_dtype_for_float32_inputs_and_under_autocast():
    module = embedding()
    series = torch.randn(2, 5, 400)
    repetition_time = torch.tensor([2.0, 0.8])  # two patch lengths: two conv outputs written into one tensor
    with torch.no_grad():
        reference = module(series, repetition_time).embeddings
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast = module(series, repetition_time).embeddings
        bfloat16 = module.to(torch.bfloat16)(series, repetition_time).embeddings
    assert autocast.dtype == torch.float32 and bfloat16.dtype == torch.bfloat16
    torch.testing.assert_close(autocast, reference, atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(bfloat16.float(), reference, atol=2e-2, rtol=2e-2)


def test_frames_past_the_mask_do_not_change_tokens():
    module = embedding()
    series = torch.randn(1, 5, 200)
    attention_mask = torch.ones(1, 200, dtype=torch.long)
    attention_mask[0, 150:] = 0
    noisy = series.clone()
    noisy[..., 150:] = 1e3
    with torch.no_grad():
        torch.testing.assert_close(
            module(series, torch.tensor([2.0]), attention_mask).embeddings,
            module(noisy, torch.tensor([2.0]), attention_mask).embeddings,
        )


def test_series_shorter_than_one_patch_gives_one_valid_patch():
    module = embedding(hidden_size=8)
    with torch.no_grad():
        outputs = module(torch.randn(1, 3, 5), torch.tensor([2.0]))
    assert outputs.num_valid_time_patches.tolist() == [1]
    assert outputs.token_mask.view(3, NUM_TIME_PATCHES)[:, 0].tolist() == [1, 1, 1]
    assert int(outputs.token_mask.sum()) == 3


def test_long_series_are_cropped_with_one_warning_naming_the_seconds(monkeypatch):
    monkeypatch.setattr(tape, "_crop_reported", False)
    module = embedding(hidden_size=8)
    long_series = torch.randn(1, 3, 18 * 18 + 10)  # 10 frames (20 s at TR 2) past the 18-patch window
    logger = tape.logger
    with CaptureLogger(logger) as first:
        cropped = module(long_series, torch.tensor([2.0])).embeddings
    with CaptureLogger(logger) as second:
        module(long_series, torch.tensor([2.0]))
    assert "20.0 s were dropped" in first.out
    assert second.out == ""
    with torch.no_grad():
        torch.testing.assert_close(cropped, module(long_series[..., : 18 * 18], torch.tensor([2.0])).embeddings)


def test_resized_kernel_passes_gradients_to_the_stored_kernel():
    module = embedding().train()
    tokens = module(torch.randn(2, 3, 200), torch.tensor([2.0, 1.47])).embeddings
    tokens.square().sum().backward()
    assert module.proj.weight.grad is not None and module.proj.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_pi_resize_cache_built_in_inference_mode_serves_training(dtype):
    # A (base, new) length pair no other test uses, so the resize matrix is first built inside inference mode; in
    # float64, the dtype it is computed in, no cast stands between the cached tensor and the kernel.
    torch.manual_seed(0)
    module = TAPEPatchEmbedding(8, 4, base_patch_length=11, window_seconds=11.0).to(dtype)
    series, repetition_time = torch.randn(2, 3, 28, dtype=dtype), torch.tensor([1.57, 1.57])  # 7 frames per patch
    with torch.inference_mode():
        inferred = module(series, repetition_time).embeddings
    module.train()
    trained = module(series, repetition_time).embeddings
    trained.square().sum().backward()
    assert module.proj.weight.grad is not None and module.proj.weight.grad.abs().sum() > 0
    torch.testing.assert_close(trained.detach(), inferred)


def test_bad_inputs_are_refused_with_the_fix():
    module = embedding(hidden_size=8)
    with pytest.raises(ValueError, match=r"fmri_values\[None\]"):
        module(torch.randn(3, 100), torch.tensor([2.0]))
    with pytest.raises(ValueError, match="one TR per series"):
        module(torch.randn(3, 4, 100), torch.tensor([2.0, 2.0]))
