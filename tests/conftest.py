import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from hf_common.fetch import ensure_upstream

ensure_upstream()

# Mixin modules and their stubs are libraries, not test files.
collect_ignore_glob = ["hf_common/*"]
