# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Saved folders that load without the package: `auto_map` plus a flat copy of the code they need.

transformers loads remote code from ONE folder: the file an `auto_map` entry names and, recursively, the files it
imports with single-dot relative imports (`from .x import y`); everything else must be an installed package
(`transformers.dynamic_module_utils`: `get_relative_import_files`, `check_imports`). The package spans several
subpackages (`modeling/`, `processing/`, ...), so at save time this module:

1. finds every package module a saved class needs, by walking its imports (relative at any depth, or absolute
   `brainharmonix_hf.*`) with `ast` from the class's own module: no hand-kept file list;
2. writes each as `<module basename>.py` into the saved folder, with its package imports rewritten to single-dot
   sibling imports (two modules with the same basename are refused, naming both);
3. adds `auto_map` entries to the folder's config (`config.json`, `preprocessor_config.json` or
   `processor_config.json`) for the Auto classes the package registers the class with (`AUTO_CLASSES`).

So `AutoModel.from_pretrained(folder, trust_remote_code=True)` and `AutoProcessor.from_pretrained(...)` work where
only transformers (and the processors' numpy / scipy / nibabel / nilearn) are installed. With the package imported,
its registrations win: transformers uses the installed classes and never runs the copied code.

The copied modules read no package data files: transformers copies only the `.py` files of remote code into its module
cache, so data the saved code needs is Python (the Schaefer-400 orders are the generated module
`processing/schaefer400_orders.py`; a model's ROI tables live in its weights), and a module that imports
`importlib.resources` is refused at save time. Package modules are imported only with `from <module> import <names>`
(never `import brainharmonix_hf.x` or `from <subpackage> import <module>`).
"""

import ast
import importlib.util
import json
import os
from pathlib import Path

from transformers import FeatureExtractionMixin, PreTrainedModel, ProcessorMixin
from transformers.utils import CONFIG_NAME, FEATURE_EXTRACTOR_NAME, PROCESSOR_NAME

PACKAGE = __name__.split(".")[0]
_HEADER = "# Copied from {module} by {package}.remote_code, imports made flat; edit the package, not this copy.\n"


def package_dependencies(module_name: str) -> dict[str, Path]:
    """`module_name` and every package module it imports, directly or not: module name -> source file."""
    found, pending = {}, [module_name]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        found[name] = Path(importlib.util.find_spec(name).origin)
        pending.extend(target for _, target in _package_imports(name, found[name]))
    return found


def write_flat_modules(module_names: set[str], folder: str | os.PathLike) -> list[Path]:
    """Copy the modules in `module_names` and their package dependencies into `folder` as flat siblings."""
    modules = {}
    for module_name in sorted(module_names):
        modules.update(package_dependencies(module_name))
    by_file = {}
    for name in sorted(modules):
        clash = by_file.setdefault(_flat_name(name), name)
        if clash != name:
            raise ValueError(
                f"{clash} and {name} would both be saved as {_flat_name(name)}.py beside the weights; rename one of "
                "them (saved code is one flat folder)."
            )
    written = []
    for name, path in sorted(modules.items()):
        target = Path(folder) / f"{_flat_name(name)}.py"
        target.write_text(_flattened_source(name, path), encoding="utf-8")
        written.append(target)
    return written


def write_remote_code(obj, save_directory: str | os.PathLike, overwrite_card: bool = False) -> None:
    """Save hook: make the folder `obj` was just saved to loadable with `trust_remote_code=True`."""
    from .auto_classes import AUTO_CLASSES  # the package's registrations (which register this hook)

    if not isinstance(obj, (PreTrainedModel, ProcessorMixin, FeatureExtractionMixin)):
        return
    if isinstance(obj, PreTrainedModel):
        config_class = type(obj.config)
        entries = {"AutoConfig": config_class} | {
            auto.__name__: target
            for auto, target in AUTO_CLASSES.get(config_class, {}).items()
            if issubclass(target, PreTrainedModel)
        }
        config_file = CONFIG_NAME
    else:
        entries = {
            auto.__name__: target
            for mapping in AUTO_CLASSES.values()
            for auto, target in mapping.items()
            if target is type(obj)
        }
        config_file = PROCESSOR_NAME if isinstance(obj, ProcessorMixin) else FEATURE_EXTRACTOR_NAME
    if not entries:
        return
    write_flat_modules({target.__module__ for target in entries.values()}, save_directory)
    config_path = Path(save_directory) / config_file
    saved = json.loads(config_path.read_text(encoding="utf-8"))
    saved["auto_map"] = saved.get("auto_map", {}) | {
        auto: f"{_flat_name(target.__module__)}.{target.__name__}" for auto, target in entries.items()
    }
    config_path.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _flat_name(module_name: str) -> str:
    return module_name.rsplit(".", 1)[-1]


def _package_imports(module_name: str, path: Path) -> list[tuple[ast.ImportFrom, str]]:
    """The `from ... import ...` statements of a module that import package modules, with the module each names."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import) and any(alias.name.split(".")[0] == PACKAGE for alias in node.names):
            raise ValueError(f"{module_name}: write `from {PACKAGE}.x import y`, not `import {PACKAGE}.x`.")
        if _reads_package_data(node):
            raise ValueError(
                f"{module_name} reads data files with importlib.resources, but saved folders carry only `.py` files "
                "of remote code (transformers copies nothing else into its module cache). Ship the data the saved "
                "code needs as a Python module (e.g. a generated table of constants) or in the config or weights."
            )
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            target = importlib.util.resolve_name("." * node.level + (node.module or ""), module_name.rpartition(".")[0])
        elif node.module and node.module.split(".")[0] == PACKAGE:
            target = node.module
        else:
            continue
        if importlib.util.find_spec(target).submodule_search_locations is not None:
            raise ValueError(
                f"{module_name} imports from the package {target}; import from the module that defines the names "
                "(saved code is one flat folder of modules)."
            )
        found.append((node, target))
    return found


def _reads_package_data(node: ast.AST) -> bool:
    """Whether an import statement brings in `importlib.resources` (`from importlib import resources`, ...)."""
    if isinstance(node, ast.Import):
        return any(alias.name == "importlib.resources" for alias in node.names)
    if isinstance(node, ast.ImportFrom) and not node.level:
        return node.module == "importlib.resources" or (
            node.module == "importlib" and any(alias.name == "resources" for alias in node.names)
        )
    return False


def _flattened_source(module_name: str, path: Path) -> str:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    # Replace from the bottom so earlier line numbers stay valid.
    for node, target in sorted(_package_imports(module_name, path), key=lambda item: -item[0].lineno):
        names = ", ".join(alias.name + (f" as {alias.asname}" if alias.asname else "") for alias in node.names)
        statement = " " * node.col_offset + f"from .{_flat_name(target)} import {names}\n"
        lines[node.lineno - 1 : node.end_lineno] = [statement]
    return _HEADER.format(module=module_name, package=PACKAGE) + "".join(lines)
