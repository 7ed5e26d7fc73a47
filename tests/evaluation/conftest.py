"""Fixtures of the small real cohort (tests/real_cohort.py)."""

from real_cohort import cohort, harmonizer_dir, latent_cache, lemon_series, tiny_model_dir

__all__ = ["cohort", "harmonizer_dir", "latent_cache", "lemon_series", "tiny_model_dir"]
