# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""An `argparse` parser with one option per field of a dataclass, the conventions of transformers' `HfArgumentParser`
(`--name value`, `--flag` / `--flag false` / `--no_flag` for booleans, `nargs="+"` for lists, defaults in the help)
plus the dashed spelling `--name-with-dashes`.

Own code rather than `HfArgumentParser` because importing that costs 0.8 s (it loads transformers' package
machinery), while `brainharmonix pretrain --help` and its usage errors must answer at once
(`benchmarks/cli_startup.py`).
"""

import argparse
import dataclasses
import types
import typing

TRUE_WORDS = ("yes", "true", "t", "y", "1")
FALSE_WORDS = ("no", "false", "f", "n", "0")


def parse_bool(text: str) -> bool:
    """'true' / 'false' (and yes/no, 1/0, t/f, y/n; any case) -> bool."""
    if text.lower() in TRUE_WORDS:
        return True
    if text.lower() in FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _without_none(annotation):
    """`X | None` -> X; other annotations unchanged."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        arguments = [argument for argument in typing.get_args(annotation) if argument is not type(None)]
        if len(arguments) == 1:
            return arguments[0]
    return annotation


def _add_field(parser: argparse.ArgumentParser, field: dataclasses.Field) -> None:
    names = [f"--{field.name}"] + ([f"--{field.name.replace('_', '-')}"] if "_" in field.name else [])
    options = {"dest": field.name, "help": field.metadata.get("help", "")}
    if field.default is not dataclasses.MISSING:
        options["default"] = field.default
    elif field.default_factory is not dataclasses.MISSING:
        options["default"] = field.default_factory()
    else:
        options["required"] = True
    annotation = _without_none(field.type)
    if annotation is bool:
        parser.add_argument(*names, type=parse_bool, nargs="?", const=True, metavar="{true,false}", **options)
        if options.get("default") is True:
            parser.add_argument(f"--no_{field.name}", dest=field.name, action="store_false", help=argparse.SUPPRESS)
    elif typing.get_origin(annotation) is list:
        (item_type,) = typing.get_args(annotation)
        parser.add_argument(*names, type=item_type, nargs="+", **options)
    elif annotation in (str, int, float):
        parser.add_argument(*names, type=annotation, **options)
    else:
        raise TypeError(f"Field {field.name!r}: no command-line form for the type {field.type!r}.")


def dataclass_parser(dataclass_type: type, prog: str) -> argparse.ArgumentParser:
    """A parser whose namespace has one attribute per field of `dataclass_type` (keyword arguments of its init)."""
    parser = argparse.ArgumentParser(prog=prog, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for field in dataclasses.fields(dataclass_type):
        if field.init:
            _add_field(parser, field)
    return parser


__all__ = ["dataclass_parser", "parse_bool"]
