# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""ROI position tables shipped with the package: geometric harmonics and functional gradients per atlas ROI.

One safetensors file per atlas in `brainharmonix_hf/roi_positions/data/<atlas>_roi_positions.safetensors` holds the
two tables and JSON-encoded metadata (provenance, method, sign rule, licences). `python -m
brainharmonix_hf.roi_positions.build` rebuilds the default file from public data. `register_shipped_tables` (run when
`brainharmonix_hf` is imported) makes them the starting tables of fresh FunctionJEPA models.
"""

import json
from dataclasses import dataclass, field
from functools import cache, partial
from importlib import resources
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..modeling.roi_position_embedding import register_atlas_tables
from ..processing.atlases import SCHAEFER400_7NETWORKS, SCHAEFER400_17NETWORKS, schaefer400_permutation

DEFAULT_ATLAS = "schaefer400_7networks"
_FILE_SUFFIX = "_roi_positions.safetensors"
_HARMONICS_KEY = "geometric_harmonics"
_GRADIENTS_KEY = "functional_gradients"
_RESERVED_METADATA = ("atlas", "roi_order")


@dataclass(frozen=True)
class RoiTables:
    """Per-ROI position tables of one atlas.

    Attributes:
        geometric_harmonics: `(num_rois, num_modes)` float32 parcel means of Laplace–Beltrami eigenmodes.
        functional_gradients: `(num_rois, num_gradients)` float32 diffusion-map gradients of group connectivity.
        atlas: atlas name, e.g. "schaefer400_7networks".
        roi_order: plain-language description of the row order.
        metadata: provenance (source files, method, sign rule, package versions, licences) and build figures.
    """

    geometric_harmonics: torch.Tensor
    functional_gradients: torch.Tensor
    atlas: str
    roi_order: str
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        for name in (_HARMONICS_KEY, _GRADIENTS_KEY):
            table = getattr(self, name)
            if table.ndim != 2 or table.dtype != torch.float32:
                raise ValueError(f"`{name}` must be a 2D float32 tensor; got {tuple(table.shape)} {table.dtype}.")
        if self.geometric_harmonics.shape[0] != self.functional_gradients.shape[0]:
            raise ValueError(
                f"both tables need one row per ROI; got {self.geometric_harmonics.shape[0]} rows of harmonics and "
                f"{self.functional_gradients.shape[0]} rows of gradients."
            )

    @property
    def num_rois(self) -> int:
        return self.geometric_harmonics.shape[0]


def _data_dir():
    return resources.files(__package__).joinpath("data")


def available_atlases() -> list[str]:
    """Names of the atlases whose table files ship with the package."""
    data_dir = _data_dir()
    return sorted(entry.name[: -len(_FILE_SUFFIX)] for entry in data_dir.iterdir() if entry.name.endswith(_FILE_SUFFIX))


def save_roi_tables(tables: RoiTables, path: str | Path) -> None:
    """Write `tables` to a safetensors file (tensors + JSON-encoded metadata strings)."""
    clash = set(_RESERVED_METADATA) & set(tables.metadata)
    if clash:
        raise ValueError(f"metadata keys {sorted(clash)} are reserved; pass them as RoiTables fields instead.")
    metadata = {"atlas": tables.atlas, "roi_order": tables.roi_order, **tables.metadata}
    save_file(
        {
            _HARMONICS_KEY: tables.geometric_harmonics.contiguous(),
            _GRADIENTS_KEY: tables.functional_gradients.contiguous(),
        },
        str(path),
        metadata={key: json.dumps(value) for key, value in metadata.items()},
    )


def read_roi_tables(path: str | Path) -> RoiTables:
    """Read tables written by `save_roi_tables`."""
    with safe_open(str(path), framework="pt") as file:
        metadata = {key: json.loads(value) for key, value in file.metadata().items()}
        harmonics, gradients = file.get_tensor(_HARMONICS_KEY), file.get_tensor(_GRADIENTS_KEY)
    atlas, roi_order = (metadata.pop(key) for key in _RESERVED_METADATA)
    return RoiTables(harmonics, gradients, atlas=atlas, roi_order=roi_order, metadata=metadata)


def load_roi_tables(atlas: str = DEFAULT_ATLAS) -> RoiTables:
    """Load the tables shipped for `atlas`.

    Raises:
        ValueError: no tables ship for `atlas`; the message lists the atlases that do.
    """
    path = _data_dir().joinpath(atlas + _FILE_SUFFIX)
    if not path.is_file():
        raise ValueError(
            f"no ROI position tables ship for atlas {atlas!r}; available: {available_atlases()}. Pass one of those "
            "names, or save your own tables with `save_roi_tables` and load them with `read_roi_tables(path)`."
        )
    with resources.as_file(path) as local_path:
        return read_roi_tables(local_path)


def _shipped_table_pair(atlas: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Copies of the shipped tables (every model build takes a pair; the file is read once per process)."""
    harmonics, gradients = _read_shipped_table_pair(atlas)
    return harmonics.clone(), gradients.clone()


@cache
def _read_shipped_table_pair(atlas: str) -> tuple[torch.Tensor, torch.Tensor]:
    tables = load_roi_tables(atlas)
    return tables.geometric_harmonics, tables.functional_gradients


def _schaefer400_17networks_tables() -> tuple[torch.Tensor, torch.Tensor]:
    """The Schaefer-400 7-network tables with their rows in 17-network order (the same 400 parcels)."""
    rows = torch.from_numpy(schaefer400_permutation(SCHAEFER400_7NETWORKS, SCHAEFER400_17NETWORKS))
    harmonics, gradients = _shipped_table_pair(SCHAEFER400_7NETWORKS)
    return harmonics[rows], gradients[rows]


def register_shipped_tables() -> None:
    """Register every shipped atlas with the model (see `modeling.roi_position_embedding.register_atlas_tables`),
    and Schaefer-400 in 17-network order as the permuted 7-network tables."""
    for atlas in available_atlases():
        register_atlas_tables(atlas, partial(_shipped_table_pair, atlas))
    if SCHAEFER400_17NETWORKS not in available_atlases():
        register_atlas_tables(SCHAEFER400_17NETWORKS, _schaefer400_17networks_tables)
