# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""File fingerprints recorded by the converters (sources), the training checkpoints (seals) and cohort runs (inputs)."""

import hashlib
import os


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


__all__ = ["sha256_of"]
