"""Sizes of the small real cohort the training tests share (see conftest.py)."""

from small_configs import small_brainharmonix_config

NUM_SUBJECTS = 12
# 2 time patches of 35.28 s: at TR 1.4 s a patch is round(35.28 / 1.4) = 25 frames, the window 50 frames.
WINDOW_FRAMES = 50


def tiny_config(**overrides):
    """T1 32³ (8 tokens), fMRI 400 ROIs × 2 time patches (800 tokens), 24-wide one-layer stages, 4 hub tokens."""
    return small_brainharmonix_config(image_size=(32, 32, 32), num_time_patches=2, **overrides)
