"""The small cohort's shape, shared by the cohort tests and their fixtures."""

# 4 time patches of 25 frames at TR 1.4 s: the 100 frames written fill the window exactly.
NUM_TIME_PATCHES = 4
NUM_TIMEPOINTS = 100
SESSIONS = [("01", "1"), ("01", "2"), ("02", "1"), ("03", None), ("04", "1")]
BROKEN = ("04", "1")
