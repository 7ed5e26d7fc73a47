# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""TAPE: temporal adaptive patch embedding, one patch kernel for every repetition time (TR).

A token covers a fixed stretch of time, the canonical window τ (35.28 s = 48 frames at TR 0.735 s), so a scan at TR
covers a token with `p = round(τ / TR)` frames (the rule lives in `repetition_time`). The patch kernel is stored for
`p0 = 48` frames; for another `p` it is resized with the pseudo-inverse ("PI-resize") rule: if `B` (p × p0) resizes a
length-p0 signal to length p (bicubic with antialiasing, applied to each basis vector), the resized kernel
`pinv(Bᵀ) · w` gives the same token for a resized signal as `w` gives for the original one. The resize matrix depends
only on `(p0, p)`: each module caches it per `(p, device, dtype)`, always built outside inference mode so that a cache
filled during inference serves training too. The resized kernel itself is a small matmul recomputed each forward so
gradients always reach the stored weights.

Every sample keeps the same token grid `num_rois × num_time_patches` whatever its TR, so a batch may mix TRs.
"""

from dataclasses import dataclass

import torch
from torch import nn
from transformers.utils import logging

from .repetition_time import patch_length_for_tr, valid_time_patch_count

logger = logging.get_logger(__name__)

# Cropping is reported once per process: every encoder of a model sees the same series.
_crop_reported = False


def token_mask_for(num_valid_time_patches: torch.Tensor, num_rois: int, num_time_patches: int) -> torch.Tensor:
    """ROI-major token mask `(batch, num_rois * num_time_patches)`: token `roi * W + t` is real when `t < n`."""
    time_index = torch.arange(num_time_patches, device=num_valid_time_patches.device)
    per_time = (time_index.unsqueeze(0) < num_valid_time_patches.unsqueeze(1)).long()
    return per_time.repeat(1, num_rois)


def pi_resize_matrix(base_length: int, new_length: int) -> torch.Tensor:
    """`pinv(Bᵀ)` (new_length × base_length, float64) mapping a length-`base_length` kernel to length `new_length`.

    Column i of `B` (new_length × base_length) is the one-hot vector `e_i` resized to `new_length` with bicubic,
    antialiased interpolation. For `new_length == base_length` this is the identity. A new tensor on every call:
    `TAPEPatchEmbedding` caches it.
    """
    if new_length == base_length:
        return torch.eye(base_length, dtype=torch.float64)
    basis = torch.eye(base_length, dtype=torch.float64).reshape(base_length, 1, 1, base_length)
    resized = nn.functional.interpolate(
        basis, size=(1, new_length), mode="bicubic", antialias=True, align_corners=False
    )
    resize_transposed = resized.reshape(base_length, new_length)  # row i = resize(e_i), i.e. Bᵀ
    return torch.linalg.pinv(resize_transposed)


@dataclass
class PatchEmbeddingOutput:
    """Tokens of a batch of ROI time series.

    Attributes:
        embeddings: `(batch, num_rois * num_time_patches, hidden_size)`, ROI-major (token `roi * W + t`).
        token_mask: `(batch, num_rois * num_time_patches)` long, 1 for a token holding real frames.
        num_valid_time_patches: `(batch,)` long, valid time patches per series.
    """

    embeddings: torch.Tensor
    token_mask: torch.Tensor
    num_valid_time_patches: torch.Tensor


@dataclass
class SeriesLengths:
    """The sizes of a batch of series that decide its token shapes, read to the host together (one synchronisation)
    by `TAPEPatchEmbedding.read_series_lengths`; a model running several encoders on the same series reads them once.

    Attributes:
        patch_lengths: frames per time patch of each series.
        num_frames: real frames of each series.
    """

    patch_lengths: list[int]
    num_frames: list[int]


class TAPEPatchEmbedding(nn.Module):
    """Embed `(batch, num_rois, num_timepoints)` series into a `num_rois × num_time_patches` token grid at any TR.

    The kernel is stored as `proj`, a `Conv2d(1, hidden_size, kernel_size=(1, base_patch_length))`, so reference
    weights of shape `(hidden_size, 1, 1, 48)` load unchanged.

    Args:
        hidden_size: token width.
        num_time_patches: time patches per ROI (W); series are zero-padded or cropped to `W · p` frames.
        base_patch_length: frames per token the kernel is stored for (p0).
        window_seconds: seconds per token (τ).
    """

    def __init__(self, hidden_size: int, num_time_patches: int, base_patch_length: int, window_seconds: float):
        super().__init__()
        self.num_time_patches = num_time_patches
        self.base_patch_length = base_patch_length
        self.window_seconds = window_seconds
        self.proj = nn.Conv2d(1, hidden_size, kernel_size=(1, base_patch_length), stride=(1, base_patch_length))
        # (patch_length, device, dtype) -> resize matrix; plain tensors, never inference tensors (see module docstring).
        self._resize_matrices: dict[tuple[int, torch.device, torch.dtype], torch.Tensor] = {}

    def resize_matrix(self, patch_length: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """Cached `pi_resize_matrix(base_patch_length, patch_length)` on `device` in `dtype`."""
        key = (patch_length, device, dtype)
        if key not in self._resize_matrices:
            with torch.inference_mode(False), torch.no_grad():
                matrix = pi_resize_matrix(self.base_patch_length, patch_length)
                self._resize_matrices[key] = matrix.to(device=device, dtype=dtype)
        return self._resize_matrices[key]

    def resized_kernel(self, patch_length: int) -> torch.Tensor:
        """The kernel for `patch_length` frames, `(hidden_size, 1, 1, patch_length)`, differentiable in the weights."""
        weight = self.proj.weight
        if patch_length == self.base_patch_length:
            return weight
        resize = self.resize_matrix(patch_length, weight.device, weight.dtype)
        return torch.einsum("pk,ocrk->ocrp", resize, weight)

    def forward(
        self,
        fmri_values: torch.Tensor,
        repetition_time: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        patch_size: torch.Tensor | None = None,
        series_lengths: SeriesLengths | None = None,
    ) -> PatchEmbeddingOutput:
        """
        Args:
            fmri_values: `(batch, num_rois, num_timepoints)` series, right-padded to the longest in the batch.
            repetition_time: `(batch,)` TR in seconds; samples may differ.
            attention_mask: `(batch, num_timepoints)` frame mask (see `FunctionJEPAModel.forward`); `None` means
                every frame is real. Padded frames are ignored whatever they hold (NaN included).
            patch_size: `(batch,)` frames per time patch, as the feature extractor emits it; computed from
                `repetition_time` with `repetition_time.patch_length_for_tr` when `None`.
            series_lengths: `read_series_lengths` of these inputs when it was read already (by a model running
                several encoders on the same series); read here when `None`.
        """
        repetition_time, attention_mask = self._batch_inputs(fmri_values, repetition_time, attention_mask)
        if series_lengths is None:
            series_lengths = self._read_lengths(patch_size, repetition_time, attention_mask)
        batch_size, num_rois, _ = fmri_values.shape
        patch_lengths, num_frames = series_lengths.patch_lengths, series_lengths.num_frames
        if len(patch_lengths) != batch_size or len(num_frames) != batch_size:
            raise ValueError(
                f"series_lengths describes {len(patch_lengths)} series for a batch of {batch_size}: read it from this "
                "batch with `read_series_lengths`."
            )
        # Frames past the real ones are zero whatever the caller padded with (`where`, not a product: NaN · 0 = NaN).
        fmri_values = torch.where(attention_mask[:, None, :].bool(), fmri_values, 0.0)
        num_valid = [
            valid_time_patch_count(frames, length, self.num_time_patches)
            for frames, length in zip(num_frames, patch_lengths, strict=True)
        ]
        self._report_crop(num_frames, patch_lengths, repetition_time)

        # Tokens take the weights' dtype, whatever the inputs' dtype or an autocast region makes of the convolution.
        if len(set(patch_lengths)) == 1:
            embeddings = self._embed_one_length(fmri_values, patch_lengths[0]).to(self.proj.weight.dtype)
        else:
            embeddings = fmri_values.new_empty(
                batch_size, num_rois * self.num_time_patches, self.proj.out_channels, dtype=self.proj.weight.dtype
            )
            for patch_length in sorted(set(patch_lengths)):
                samples = [index for index, length in enumerate(patch_lengths) if length == patch_length]
                samples = torch.tensor(samples, device=fmri_values.device)
                embeddings[samples] = self._embed_one_length(fmri_values[samples], patch_length).to(embeddings.dtype)
        num_valid = torch.tensor(num_valid, device=fmri_values.device)
        return PatchEmbeddingOutput(
            embeddings=embeddings,
            token_mask=token_mask_for(num_valid, num_rois, self.num_time_patches),
            num_valid_time_patches=num_valid,
        )

    def read_series_lengths(
        self,
        fmri_values: torch.Tensor,
        repetition_time: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        patch_size: torch.Tensor | None = None,
    ) -> SeriesLengths:
        """The patch lengths and real frame counts of a batch (arguments as in `forward`), read to the host together:
        the one host synchronisation of the patch embedding."""
        repetition_time, attention_mask = self._batch_inputs(fmri_values, repetition_time, attention_mask)
        return self._read_lengths(patch_size, repetition_time, attention_mask)

    @staticmethod
    def _batch_inputs(
        fmri_values: torch.Tensor, repetition_time: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Check the series' shape; one TR per series `(batch,)` and a frame mask `(batch, num_timepoints)`."""
        if fmri_values.ndim != 3:
            raise ValueError(
                f"fmri_values must be (batch, num_rois, num_timepoints), got shape {tuple(fmri_values.shape)}; "
                "add a batch axis with `fmri_values[None]` for a single series."
            )
        batch_size, _, num_timepoints = fmri_values.shape
        repetition_time = torch.as_tensor(repetition_time, device=fmri_values.device).reshape(-1)
        if repetition_time.numel() == 1:
            repetition_time = repetition_time.expand(batch_size)
        if repetition_time.numel() != batch_size:
            raise ValueError(
                f"repetition_time has {repetition_time.numel()} values for a batch of {batch_size}: pass one TR per "
                "series (or one for all)."
            )
        if attention_mask is None:
            attention_mask = torch.ones(batch_size, num_timepoints, dtype=torch.long, device=fmri_values.device)
        return repetition_time, attention_mask

    def _read_lengths(
        self, patch_size: torch.Tensor | None, repetition_time: torch.Tensor, attention_mask: torch.Tensor
    ) -> SeriesLengths:
        """Per-series patch lengths (`patch_size` as given, checked, or the TR rule applied to each series) and real
        frame counts, read to the host together."""
        batch_size = attention_mask.shape[0]
        num_frames = attention_mask.sum(dim=1)
        if patch_size is None:
            trs, frames = torch.stack([repetition_time, num_frames.to(repetition_time.dtype)]).tolist()
            lengths = [patch_length_for_tr(tr, self.window_seconds) for tr in trs]
            return SeriesLengths(patch_lengths=lengths, num_frames=[int(frame) for frame in frames])
        patch_size = torch.as_tensor(patch_size, device=repetition_time.device).reshape(-1)
        lengths = frames = None
        if patch_size.shape == (batch_size,) and not patch_size.is_floating_point():
            lengths, frames = torch.stack([patch_size.long(), num_frames.long()]).tolist()
        if lengths is None or min(lengths) < 1:
            raise ValueError(
                f"patch_size must hold one positive integer per series ({batch_size}), got {patch_size.tolist()}: "
                "pass the `patch_size` the feature extractor returns, or leave it out to derive it from the TR."
            )
        return SeriesLengths(patch_lengths=lengths, num_frames=frames)

    def _embed_one_length(self, fmri_values: torch.Tensor, patch_length: int) -> torch.Tensor:
        """`(n, num_rois, T)` series sharing one patch length -> `(n, num_rois * W, hidden_size)` tokens."""
        window_frames = self.num_time_patches * patch_length
        num_timepoints = fmri_values.shape[-1]
        if num_timepoints < window_frames:
            fmri_values = nn.functional.pad(fmri_values, (0, window_frames - num_timepoints))
        series = fmri_values[..., :window_frames].unsqueeze(1).to(self.proj.weight.dtype)
        kernel = self.resized_kernel(patch_length)
        tokens = nn.functional.conv2d(series, kernel, self.proj.bias, stride=(1, patch_length))  # (n, D, R, W)
        return tokens.flatten(2).transpose(1, 2)

    def _report_crop(self, num_frames: list[int], patch_lengths: list[int], repetition_time: torch.Tensor):
        """Warn (once per process) when a series has more frames than `num_time_patches` windows hold."""
        global _crop_reported
        if _crop_reported:
            return
        excess_frames = [
            frames - self.num_time_patches * length for frames, length in zip(num_frames, patch_lengths, strict=True)
        ]
        if max(excess_frames) <= 0:
            return
        trs = repetition_time.tolist()
        dropped_seconds = max(max(excess, 0) * tr for excess, tr in zip(excess_frames, trs, strict=True))
        window = self.num_time_patches * self.window_seconds
        logger.warning(
            f"fMRI series longer than the {self.num_time_patches}-patch window (about {window:.0f} s) were cropped: "
            f"up to {dropped_seconds:.1f} s were dropped from the end of a series. Split long scans into windows "
            "(or raise num_time_patches) to keep them. This warning is shown once."
        )
        _crop_reported = True


__all__ = [
    "PatchEmbeddingOutput",
    "SeriesLengths",
    "TAPEPatchEmbedding",
    "pi_resize_matrix",
    "token_mask_for",
]
