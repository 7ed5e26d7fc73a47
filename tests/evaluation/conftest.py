"""Fixtures of the small real cohort (tests/real_cohort.py)."""

from real_cohort import cohort, lemon_series, tiny_model_dir

__all__ = ["cohort", "lemon_series", "tiny_model_dir"]
