"""A small real pretraining cohort written once per session: the LEMON run (Schaefer-400, TR 1.4 s) split in time
into a training part and a held-out part (`.npy` files), nilearn's MNI152 T1 template (NIfTI), manifests, tiny model
configs, and a Harmonizer latent cache encoded by tiny frozen encoders with the package's latent-cache writer."""

import importlib.util
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from brainharmonix_hf import (
    BrainHarmonixModel,
    BrainHarmonixProcessor,
    FMRIFeatureExtractor,
    FunctionJEPAConfig,
    FunctionJEPAModel,
    HarmonizerConfig,
    HarmonizerModel,
    StructureMAEConfig,
    StructureMAEModel,
    T1VolumeFeatureExtractor,
    sample_data,
)
from brainharmonix_hf.training.data import T1Augmentation
from brainharmonix_hf.training.latent_cache import cache_latents

sys.path.insert(0, str(Path(__file__).parents[1]))
from small_configs import DECODER, LAYER, PREDICTOR

# Frames 0-389 of the LEMON run train, frames 390-651 are held out.
TRAIN_FRAMES = 390
# The T1 box (MNI x -62..65, y -97..62, z -31..96 mm) in 32 mm patches: 4 x 5 x 4 = 80 tokens.
T1_SIZE = [128, 160, 128]
T1_PATCH = 32
NUM_TIME_PATCHES = 4


@pytest.fixture(scope="session")
def cohort(tmp_path_factory) -> Path:
    """Folder with `fmri.csv`, `t1.csv`, the data files, and `function_config/`, `structure_config/`,
    `harmonizer_config/`, `latents/`."""
    if importlib.util.find_spec("brainspace") is None:
        pytest.skip("brainspace is not installed (`pip install --no-deps brainspace`): it ships the real fMRI run")
    folder = tmp_path_factory.mktemp("cohort")
    series = sample_data.load_fmri_sample().series
    np.save(folder / "lemon_train.npy", series[:, :TRAIN_FRAMES])
    np.save(folder / "lemon_heldout.npy", series[:, TRAIN_FRAMES:])
    nib.save(sample_data.load_t1_sample(), folder / "mni152.nii.gz")
    fmri_rows = [f"lemon,train{i},lemon_train.npy,1.4,train" for i in range(8)]
    fmri_rows += [f"lemon,heldout{i},lemon_heldout.npy,1.4,validation" for i in range(4)]
    (folder / "fmri.csv").write_text("subject,session,fmri,repetition_time,split\n" + "\n".join(fmri_rows) + "\n")
    t1_rows = [f"mni,{i},mni152.nii.gz,train" for i in range(4)]
    t1_rows += [f"mni,v{i},mni152.nii.gz,validation" for i in (0, 1)]
    (folder / "t1.csv").write_text("subject,session,t1,split\n" + "\n".join(t1_rows) + "\n")

    function_config = FunctionJEPAConfig(**LAYER, **PREDICTOR, num_time_patches=NUM_TIME_PATCHES)
    structure_config = StructureMAEConfig(
        **LAYER,
        **DECODER,
        image_size=T1_SIZE,
        patch_size=T1_PATCH,
        decoder_hidden_size=24,
        decoder_intermediate_size=48,
    )
    function_config.save_pretrained(folder / "function_config")
    structure_config.save_pretrained(folder / "structure_config")
    harmonizer_config = HarmonizerConfig(
        **LAYER,
        **DECODER,
        num_fmri_tokens=function_config.num_tokens,
        num_t1_tokens=structure_config.num_patches,
        latent_size=24,
        num_hub_tokens=4,
        decoder_hidden_size=16,
        decoder_intermediate_size=32,
        modality_dropout=0.2,
    )
    harmonizer_config.save_pretrained(folder / "harmonizer_config")
    write_latents(folder, series, function_config, structure_config, harmonizer_config)
    return folder


def write_latents(folder: Path, series: np.ndarray, function_config, structure_config, harmonizer_config) -> None:
    """Latent cache (`cache_latents`, the package's one writer) of subjects = LEMON windows (TR 1.4 s and x2) paired
    with augmented MNI152 volumes, from frozen tiny encoders (seeded random weights); windows from the held-out frames
    make the validation rows. Each window is a `.npy` file and each augmented volume a NIfTI file in MNI152 space: the
    processed box saved with the box's MNI affine, so the T1 processor accepts it and maps it back onto the same box."""
    torch.manual_seed(0)
    encoders = BrainHarmonixModel.from_stages(
        StructureMAEModel(structure_config), FunctionJEPAModel(function_config), HarmonizerModel(harmonizer_config)
    )
    processor = BrainHarmonixProcessor(
        T1VolumeFeatureExtractor(volume_size=T1_SIZE),
        FMRIFeatureExtractor(num_time_patches=NUM_TIME_PATCHES, normalization="zscore"),
    )
    t1_processor = processor.t1_feature_extractor
    volume = t1_processor(str(folder / "mni152.nii.gz"))["pixel_values"][0]
    augmentation, rng = T1Augmentation(), np.random.default_rng(0)
    inputs = folder / "latent_inputs"
    inputs.mkdir()
    rows = ["subject,session,t1,fmri,repetition_time,split"]
    for split, starts in (("train", range(0, TRAIN_FRAMES - 100, 24)), ("validation", range(TRAIN_FRAMES, 552, 40))):
        for number, start in enumerate(starts):
            rate = 1 + number % 2
            frames = NUM_TIME_PATCHES * round(35.28 / (1.4 * rate))
            np.save(inputs / f"{split}{number}.npy", series[:, start : start + frames * rate : rate])
            t1 = ""
            if number % 3:
                t1 = f"latent_inputs/{split}{number}.nii"
                nib.save(nib.Nifti1Image(augmentation(volume, rng)[0], t1_processor.input_affine()), folder / t1)
            rows.append(f"{split}{number},,{t1},latent_inputs/{split}{number}.npy,{1.4 * rate},{split}")
    (folder / "latents.csv").write_text("\n".join(rows) + "\n")
    cache_latents(encoders, processor, folder / "latents.csv", folder / "latents", batch_size=4)
