# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Strict mapping of a reference state dict onto one of our models' state dicts.

Every reference key is claimed by exactly one rule (the first whose pattern matches the whole key):

- `Load`: the tensor goes to a named model key; shapes must be equal (or equal after dropping leading singleton axes,
  when the rule allows it);
- `Regenerate`: a fixed table the model rebuilds itself (sin-cos positions); it is checked against the table the
  model rebuilds for the stored shape and then dropped;
- `SameAs`: a second copy of another reference key (a module shared by two parts of the reference model); it must
  equal that key;
- `Skip`: deliberately not loaded, with the reason.

Every model key must be filled, by a loaded key or by a value the caller supplies (e.g. ROI tables read from CSV).
Anything else (an unclaimed reference key, an unfilled model key, two keys for one place, a wrong shape, a table
that differs) raises `ConversionError` naming the key. Shapes and keys are checked in `plan_conversion`, which works
on meta tensors too; values in `apply_plan`.
"""

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import torch

# Largest difference between a stored sin-cos table and the one the model rebuilds. A different table layout (another
# axis order or grid) differs by order one; float32 storage of the same table by < 1e-6.
TABLE_TOLERANCE = 1e-3


class ConversionError(ValueError):
    """A reference checkpoint does not fit the model it is converted into; the message names the key."""


@dataclass(frozen=True)
class Load:
    """Load the reference key(s) matching `pattern` into `re.sub(pattern, target, key)`."""

    pattern: str
    target: str
    squeeze_leading: bool = False


@dataclass(frozen=True)
class Regenerate:
    """A fixed table the model rebuilds: `table(stored_shape)` gives the expected values (or raises
    `ConversionError` when the shape does not fit the model)."""

    pattern: str
    table: Callable[[tuple[int, ...]], torch.Tensor]
    reason: str


@dataclass(frozen=True)
class SameAs:
    """A second copy of the reference key `re.sub(pattern, original, key)`; must equal it."""

    pattern: str
    original: str
    reason: str


@dataclass(frozen=True)
class Skip:
    """Deliberately not loaded."""

    pattern: str
    reason: str


Rule = Load | Regenerate | SameAs | Skip


def transformer_block_rules(source_prefix: str, target_prefix: str) -> list[Rule]:
    """Rules for a stack of reference ViT blocks (`{source_prefix}.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1,
    mlp.fc2}.{weight, bias}`) onto our `TransformerLayer`s (`{target_prefix}.N.{..., attention.qkv, ...}`)."""
    source, target = re.escape(source_prefix), target_prefix
    return [
        Load(rf"{source}\.(\d+)\.attn\.(qkv|proj)\.(weight|bias)", rf"{target}.\1.attention.\2.\3"),
        Load(rf"{source}\.(\d+)\.(norm1|norm2|mlp\.fc1|mlp\.fc2)\.(weight|bias)", rf"{target}.\1.\2.\3"),
    ]


@dataclass
class ConversionPlan:
    """Where every reference key goes, and what fills every model key.

    Attributes:
        loads: model key -> reference key.
        squeezed: model key -> its shape, for reference tensors stored with extra leading singleton axes.
        regenerated: reference key -> (reason, expected table in the stored shape).
        duplicates: reference key -> (the reference key it must equal, reason).
        skipped: reference key -> reason.
        supplied: model key -> where the caller's value comes from.
        reference_shapes: reference key -> stored shape.
        table_differences: reference key -> largest |stored - regenerated| (filled by `apply_plan`).
    """

    loads: dict[str, str] = field(default_factory=dict)
    squeezed: dict[str, tuple[int, ...]] = field(default_factory=dict)
    regenerated: dict[str, tuple[str, torch.Tensor]] = field(default_factory=dict)
    duplicates: dict[str, tuple[str, str]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    supplied: dict[str, str] = field(default_factory=dict)
    reference_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    table_differences: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict:
        """JSON-ready record of the conversion (for `conversion.json`)."""
        return {
            "loaded": len(self.loads),
            "regenerated": {key: reason for key, (reason, _) in sorted(self.regenerated.items())},
            "regenerated_max_abs_difference": dict(sorted(self.table_differences.items())),
            "duplicates_checked_equal": {
                key: {"same_as": original, "reason": reason}
                for key, (original, reason) in sorted(self.duplicates.items())
            },
            "not_loaded": dict(sorted(self.skipped.items())),
            "supplied": dict(sorted(self.supplied.items())),
        }

    def to_reference(self, model_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Our state dict back in the reference layout: every loaded key, every duplicate, and every regenerated table
        (rebuilt for its stored grid). Deliberately skipped keys are absent."""
        reference = {}
        for model_key, reference_key in self.loads.items():
            reference[reference_key] = model_state[model_key].reshape(self.reference_shapes[reference_key]).clone()
        for reference_key, (original, _) in self.duplicates.items():
            reference[reference_key] = reference[original].clone()
        for reference_key, (_, table) in self.regenerated.items():
            reference[reference_key] = table.clone()
        return reference


def _claim(key: str, rules: Iterable[Rule]) -> tuple[Rule, re.Match] | None:
    for rule in rules:
        match = re.fullmatch(rule.pattern, key)
        if match is not None:
            return rule, match
    return None


def _fits(stored: tuple[int, ...], wanted: tuple[int, ...], squeeze_leading: bool) -> bool:
    if stored == wanted:
        return True
    if not squeeze_leading:
        return False
    extra = len(stored) - len(wanted)
    return extra > 0 and all(size == 1 for size in stored[:extra]) and stored[extra:] == wanted


def plan_conversion(
    reference: Mapping[str, torch.Tensor],
    model_state: Mapping[str, torch.Tensor],
    rules: Iterable[Rule],
    supplied: Mapping[str, str] | None = None,
    checkpoint_name: str = "the checkpoint",
) -> ConversionPlan:
    """Check keys and shapes and say where every reference key goes.

    Args:
        reference: the reference state dict (real or meta tensors: only shapes are read).
        model_state: our model's `state_dict()` (real or meta tensors).
        rules: claim every reference key (first match wins).
        supplied: model keys the caller fills itself, with where the values come from.
        checkpoint_name: names the file in error messages.

    Raises:
        ConversionError: naming every key that does not fit.
    """
    rules = list(rules)
    supplied = dict(supplied or {})
    plan = ConversionPlan(supplied=supplied)
    problems = []
    for key, tensor in reference.items():
        shape = tuple(tensor.shape)
        plan.reference_shapes[key] = shape
        claimed = _claim(key, rules)
        if claimed is None:
            problems.append(f"reference key {key!r} {shape} is unknown: no model weight takes it")
            continue
        rule, match = claimed
        if isinstance(rule, Skip):
            plan.skipped[key] = rule.reason
        elif isinstance(rule, SameAs):
            plan.duplicates[key] = (match.expand(rule.original), rule.reason)
        elif isinstance(rule, Regenerate):
            try:
                table = rule.table(shape)
            except ConversionError as error:
                problems.append(f"reference key {key!r}: {error}")
                continue
            plan.regenerated[key] = (rule.reason, table)
        else:
            target = match.expand(rule.target)
            if target not in model_state:
                problems.append(f"reference key {key!r} {shape} maps to {target!r}, which the model does not have")
            elif target in plan.loads or target in supplied:
                problems.append(f"model key {target!r} would be filled twice (by {key!r} and another source)")
            elif not _fits(shape, tuple(model_state[target].shape), rule.squeeze_leading):
                problems.append(
                    f"reference key {key!r} has shape {shape} but model key {target!r} has "
                    f"{tuple(model_state[target].shape)}"
                )
            else:
                plan.loads[target] = key
                if shape != tuple(model_state[target].shape):
                    plan.squeezed[target] = tuple(model_state[target].shape)
    for key, (original, _) in plan.duplicates.items():
        if original not in reference:
            problems.append(f"reference key {key!r} is a copy of {original!r}, which the checkpoint lacks")
        elif plan.reference_shapes[key] != tuple(reference[original].shape):
            problems.append(f"reference key {key!r} should equal {original!r} but their shapes differ")
    unfilled = sorted(set(model_state) - set(plan.loads) - set(supplied))
    problems.extend(f"model key {key!r} {tuple(model_state[key].shape)} gets no weight" for key in unfilled)
    if problems:
        listed = "\n  - ".join(problems)
        raise ConversionError(
            f"{checkpoint_name} does not fit the model ({len(problems)} problem(s)):\n  - {listed}\nCheck that the "
            "file is the right stage's checkpoint and that the config's sizes (layers, widths, tokens) match it."
        )
    return plan


def apply_plan(
    plan: ConversionPlan,
    reference: Mapping[str, torch.Tensor],
    supplied_values: Mapping[str, torch.Tensor] | None = None,
    checkpoint_name: str = "the checkpoint",
) -> dict[str, torch.Tensor]:
    """Build our state dict from a checked plan, after checking regenerated tables and duplicates by value.

    Returns:
        model key -> float tensor (a copy, contiguous, in our shapes).

    Raises:
        ConversionError: a regenerated table differs from the stored one, a duplicate differs from its original, or a
            supplied value is missing.
    """
    supplied_values = dict(supplied_values or {})
    problems = []
    for key, (_, table) in plan.regenerated.items():
        difference = (reference[key].double() - table.double()).abs().max().item() if table.numel() else 0.0
        plan.table_differences[key] = difference
        if not difference <= TABLE_TOLERANCE:
            problems.append(
                f"fixed table {key!r} differs from the table the model rebuilds by up to {difference:.3g} (tolerance "
                f"{TABLE_TOLERANCE:g}): the checkpoint uses another position layout"
            )
    for key, (original, _) in plan.duplicates.items():
        if not torch.equal(reference[key], reference[original]):
            problems.append(f"reference key {key!r} should be the same tensor as {original!r} but differs")
    missing = sorted(set(plan.supplied) - set(supplied_values))
    problems.extend(f"no value supplied for model key {key!r}" for key in missing)
    if problems:
        listed = "\n  - ".join(problems)
        raise ConversionError(f"{checkpoint_name} cannot be converted:\n  - {listed}")
    state = {}
    for model_key, reference_key in plan.loads.items():
        tensor = reference[reference_key]
        if model_key in plan.squeezed:
            tensor = tensor.reshape(plan.squeezed[model_key])
        state[model_key] = tensor.detach().clone().contiguous()
    for model_key in plan.supplied:
        state[model_key] = supplied_values[model_key].detach().clone().contiguous()
    return state


def convert_into(
    model_class: type,
    config,
    reference: Mapping[str, torch.Tensor],
    rules: Iterable[Rule],
    supplied: Mapping[str, tuple[torch.Tensor, str]] | None = None,
    checkpoint_name: str = "the checkpoint",
):
    """Build `model_class(config)` and fill it from `reference` under `rules` (strictly; see the module docstring).

    Args:
        supplied: model key -> (value, where it comes from) for weights the checkpoint does not hold.

    Returns:
        the model in eval mode and its `ConversionPlan`.
    """
    supplied = dict(supplied or {})
    model = model_class(config)
    plan = plan_conversion(
        reference,
        model.state_dict(),
        rules,
        {key: source for key, (_, source) in supplied.items()},
        checkpoint_name,
    )
    weights = apply_plan(plan, reference, {key: value for key, (value, _) in supplied.items()}, checkpoint_name)
    model.load_state_dict(weights, strict=True)
    return model.eval(), plan


def table_with_cls_row(table: torch.Tensor, stored_shape: tuple[int, ...], key_description: str) -> torch.Tensor:
    """`(num_positions, width)` table with a zero CLS row in front, shaped like the stored `(1, 1 + num_positions,
    width)` reference table; raises `ConversionError` when the stored shape is not that."""
    expected = torch.cat([table.new_zeros(1, table.shape[1]), table]).unsqueeze(0)
    if tuple(stored_shape) != tuple(expected.shape):
        raise ConversionError(
            f"{key_description} is stored as {tuple(stored_shape)}, but the model's grid gives {tuple(expected.shape)}"
        )
    return expected
