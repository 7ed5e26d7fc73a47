"""Fetch transformers' common test mixins from the sdist that matches the installed version."""

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import transformers

UPSTREAM = Path(__file__).parent / "upstream"
MIXIN_FILES = (
    "test_modeling_common.py",
    "test_configuration_common.py",
    "test_feature_extraction_common.py",
    "test_sequence_feature_extraction_common.py",
)

# Modules that the mixins import from parts of transformers' repository that the sdist does not ship.
STUB_MODULES = {
    "exporters/test_export.py": "class ExportTesterMixin:\n    pass\n",
    "generation/test_utils.py": "class GenerationTesterMixin:\n    pass\n",
    # The general config kwargs that `ConfigTester.check_config_arguments_init` sets and reads back.
    "utils/test_configuration_utils.py": (
        "config_common_kwargs = {\n"
        '    "return_dict": False,\n'
        '    "output_hidden_states": True,\n'
        '    "output_attentions": True,\n'
        '    "dtype": "float16",\n'
        '    "chunk_size_feed_forward": 5,\n'
        '    "architectures": ["BertModel"],\n'
        '    "id2label": {0: "label"},\n'
        '    "label2id": {"label": "0"},\n'
        '    "problem_type": "regression",\n'
        "}\n"
    ),
}


def ensure_upstream() -> Path:
    """Download and unpack the mixins for `transformers.__version__` unless already there; returns the folder."""
    stamp = UPSTREAM / "VERSION"
    if stamp.exists() and stamp.read_text().strip() == transformers.__version__:
        return UPSTREAM
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"transformers=={transformers.__version__}",
                "-d",
                tmp,
            ],
            check=True,
        )
        (sdist,) = Path(tmp).glob("transformers-*.tar.gz")
        UPSTREAM.mkdir(exist_ok=True)
        with tarfile.open(sdist) as archive:
            for member in archive.getmembers():
                name = Path(member.name)
                if name.parent.name == "tests" and name.name in MIXIN_FILES:
                    (UPSTREAM / name.name).write_bytes(archive.extractfile(member).read())
    for relative, text in STUB_MODULES.items():
        path = UPSTREAM / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").touch()
        path.write_text(text)
    (UPSTREAM / "__init__.py").touch()
    stamp.write_text(transformers.__version__)
    return UPSTREAM


if __name__ == "__main__":
    print(ensure_upstream())
