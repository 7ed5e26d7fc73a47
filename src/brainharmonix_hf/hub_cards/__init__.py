# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Model cards for saved folders and Hub repos (`build_model_card`), written on every `save_pretrained`."""

from .builder import PROVENANCE_NAME, build_model_card, read_saved_folder, write_model_card

__all__ = ["PROVENANCE_NAME", "build_model_card", "read_saved_folder", "write_model_card"]
