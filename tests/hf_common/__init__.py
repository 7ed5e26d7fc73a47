"""transformers' own common test mixins, for the installed transformers version.

The mixins ship in the transformers sdist (`tests/test_*common*.py`), not in the wheel. `fetch.ensure_upstream()`
downloads the sdist of exactly the installed version from the package registry once, extracts those files into
`upstream/` (git-ignored) and writes the three one-line modules they import that the sdist lacks. `tests/conftest.py`
calls it before collection; test modules then import from `hf_common.upstream.*`.
"""
