# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Package attributes imported on first use (PEP 562), so importing a package costs nothing until a name is used.

`brainharmonix --help` imports the package and the command-line modules only: with eager `__init__` imports it would
wait seconds for torch and transformers.
"""

import importlib
import sys
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`, whose public `name` lives in the module `exports[name]` (relative to
    the package). A name is imported on first access and then kept on the package.

    Usage, in a package `__init__.py`: `__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)`.
    """

    def __getattr__(name: str) -> object:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name], package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
