# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""ROI position tables: where FunctionJEPA's per-ROI positions come from.

`surface_mesh` (mesh cutting, finite-element Laplace–Beltrami matrices) and `harmonics` (eigenmodes averaged per
parcel) compute geometric harmonics (`atlas_tables` for any atlas drawn on fs_LR 32k, `volume_harmonics` for a
volumetric atlas with subcortical parcels); `gradients` computes diffusion-map gradients of group connectivity;
`sign_convention` fixes eigenvector signs; `tables` saves, reads and loads the tables shipped in `data/`; `build`
rebuilds the shipped tables from public data (`python -m brainharmonix_hf.roi_positions.build`).
"""
