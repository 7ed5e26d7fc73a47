"""Saved folders load with `trust_remote_code=True` where brainharmonix_hf cannot be imported, and give the package's
outputs; with the package imported, the copied code is never used."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from small_configs import small_brainharmonix_config
from transformers import AutoModel, AutoProcessor

from brainharmonix_hf import BrainHarmonixModel, BrainHarmonixProcessor
from brainharmonix_hf.remote_code import package_dependencies, write_flat_modules

# Runs first in the child: any `import brainharmonix_hf` fails, as where only transformers is installed.
BLOCK_PACKAGE = """
import sys
class _Blocker:
    def find_spec(self, name, path=None, target=None):
        if name == "brainharmonix_hf" or name.startswith("brainharmonix_hf."):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden for this test)")
sys.meta_path.insert(0, _Blocker())
"""


@pytest.fixture(scope="module")
def composite_folder(tmp_path_factory):
    """A tiny composite model + its processor saved in one folder, and the package's outputs on fixed inputs."""
    torch.manual_seed(0)
    config = small_brainharmonix_config(image_size=(32, 32, 32), num_time_patches=2)
    model = BrainHarmonixModel(config).eval()
    processor = BrainHarmonixProcessor.for_config(config)
    processor.t1_feature_extractor.check_mni_space = False  # the random volume below is no brain
    folder = tmp_path_factory.mktemp("composite")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    processor.fmri_feature_extractor.save_pretrained(folder.parent / "fmri_extractor")
    rng = np.random.default_rng(0)
    series = rng.standard_normal((400, 60)).astype(np.float32)
    volume = rng.standard_normal((40, 40, 40)).astype(np.float32)
    np.save(folder.parent / "series.npy", series)
    np.save(folder.parent / "volume.npy", volume)
    inputs = processor(
        t1=volume, fmri=series, repetition_time=1.0, layout="rois_first", affine=np.eye(4), return_tensors="pt"
    )
    with torch.no_grad():
        expected = model(**inputs).last_hidden_state
    return folder, inputs, expected


def test_saved_folder_carries_auto_map_and_flat_code(composite_folder):
    folder, _, _ = composite_folder
    config = json.loads((folder / "config.json").read_text())
    processor = json.loads((folder / "processor_config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_brainharmonix.BrainHarmonixConfig",
        "AutoModel": "modeling_brainharmonix.BrainHarmonixModel",
        "AutoModelForSequenceClassification": "modeling_brainharmonix.BrainHarmonixForSequenceClassification",
    }
    assert processor["auto_map"] == {"AutoProcessor": "processing_brainharmonix.BrainHarmonixProcessor"}
    for name in ("modeling_brainharmonix.py", "modeling_function_jepa.py", "processing_brainharmonix.py", "tape.py"):
        source = (folder / name).read_text()
        assert "from .." not in source and "brainharmonix_hf." not in source.split("\n", 1)[1].replace(
            "brainharmonix_hf.remote_code", ""
        )


def test_without_the_package_auto_classes_load_remote_code_with_equal_outputs(composite_folder, tmp_path):
    folder, inputs, expected = composite_folder
    torch.save(dict(inputs), tmp_path / "inputs.pt")
    script = BLOCK_PACKAGE + textwrap.dedent(f"""
        import numpy as np, torch
        from transformers import AutoFeatureExtractor, AutoModel, AutoProcessor
        try:
            import brainharmonix_hf
            raise SystemExit("the package is importable")
        except ModuleNotFoundError:
            pass
        model = AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
        processor = AutoProcessor.from_pretrained({str(folder)!r}, trust_remote_code=True)
        assert type(model).__module__.startswith("transformers_modules."), type(model).__module__
        assert type(processor).__module__.startswith("transformers_modules."), type(processor).__module__
        series = np.load({str(folder.parent / "series.npy")!r})
        volume = np.load({str(folder.parent / "volume.npy")!r})
        inputs = processor(
            t1=volume, fmri=series, repetition_time=1.0, layout="rois_first", affine=np.eye(4), return_tensors="pt"
        )
        reference = torch.load({str(tmp_path / "inputs.pt")!r})
        for key, value in reference.items():
            assert torch.equal(inputs[key], value), key
        extractor_folder = {str(folder.parent / "fmri_extractor")!r}
        extractor = AutoFeatureExtractor.from_pretrained(extractor_folder, trust_remote_code=True)
        assert type(extractor).__module__.startswith("transformers_modules."), type(extractor).__module__
        alone = extractor(series, repetition_time=1.0, layout="rois_first", return_tensors="pt")
        assert torch.equal(alone["fmri_values"], reference["fmri_values"])
        with torch.no_grad():
            torch.save(model(**inputs).last_hidden_state, {str(tmp_path / "remote.pt")!r})
        assert not any(name.startswith("brainharmonix_hf") for name in sys.modules)
    """)
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    remote = torch.load(tmp_path / "remote.pt")
    assert remote.shape == expected.shape == (1, 5, 24)
    torch.testing.assert_close(remote, expected, rtol=0, atol=0)


def test_with_the_package_registration_wins_over_remote_code(composite_folder):
    folder, inputs, expected = composite_folder
    # Remote code would be imported as transformers_modules.<folder name>.*: no such module may appear.
    for trust in (None, True):
        model = AutoModel.from_pretrained(folder, trust_remote_code=trust).eval()
        assert type(model) is BrainHarmonixModel
        with torch.no_grad():
            torch.testing.assert_close(model(**inputs).last_hidden_state, expected, rtol=0, atol=0)
        assert type(AutoProcessor.from_pretrained(folder, trust_remote_code=trust)) is BrainHarmonixProcessor
    assert not [name for name in sys.modules if name.startswith("transformers_modules.composite")]


def test_dependencies_are_found_by_walking_imports():
    found = package_dependencies("brainharmonix_hf.processing.feature_extraction_t1")
    assert set(found) == {
        "brainharmonix_hf.processing.feature_extraction_t1",
        "brainharmonix_hf.processing.nifti_io",
        "brainharmonix_hf.processing.reference_grid",
        "brainharmonix_hf.modeling.hub_mixin",
        "brainharmonix_hf.modeling.user_warnings",
    }
    assert all(path.is_file() for path in found.values())
    # Across subpackages: the one TR rule module and the private-internals shim come along; the ROI-table builders
    # (roi_positions) and training code never do. The Schaefer-400 orders travel as a module, not a data file.
    model_code = package_dependencies("brainharmonix_hf.modeling.modeling_function_jepa")
    fmri_code = package_dependencies("brainharmonix_hf.processing.feature_extraction_fmri")
    assert {"brainharmonix_hf.modeling._compat", "brainharmonix_hf.modeling.repetition_time"} <= set(model_code)
    assert {"brainharmonix_hf.modeling.repetition_time", "brainharmonix_hf.processing.schaefer400_orders"} <= set(
        fmri_code
    )
    assert not [name for name in {*model_code, *fmri_code} if ".roi_positions" in name or ".training" in name]


def write_package(root, files: dict[str, str]) -> None:
    """Write a package's modules (`{"pkg/a/util.py": source}`) under `root`, with an `__init__.py` in every folder."""
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        for folder in path.relative_to(root).parents[:-1]:
            (root / folder / "__init__.py").touch()
        path.write_text(source)


def test_module_reading_package_data_files_is_refused(tmp_path, monkeypatch):
    """transformers copies only `.py` files of remote code: a copied module that reads data files would fail at load
    time where the package is missing, so saving refuses it."""
    tables = "from importlib import resources\n\nNAMES = resources.files(__package__)\n"
    write_package(tmp_path, {"data_pkg/tables.py": tables, "data_pkg/main.py": "from .tables import NAMES\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match=r"data_pkg\.tables reads data files with importlib\.resources"):
        write_flat_modules({"data_pkg.main"}, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_two_modules_with_one_name_are_refused(tmp_path, monkeypatch):
    main = "from .util import X\nfrom ..b.util import Y\n"
    modules = {"clashing_pkg/a/util.py": "X = 1\n", "clashing_pkg/b/util.py": "Y = 2\n", "clashing_pkg/a/main.py": main}
    write_package(tmp_path, modules)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match=r"clashing_pkg\.a\.util and clashing_pkg\.b\.util would both be saved"):
        write_flat_modules({"clashing_pkg.a.main"}, tmp_path / "out")
