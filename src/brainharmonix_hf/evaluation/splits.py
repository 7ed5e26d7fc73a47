# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Repeated stratified splits of a cohort by subject: a subject's sessions and runs never straddle train / validation /
test.

A cohort is a list of rows (one per subject-session, or per run), each with a label and a subject. Repeat r (seed
`seed + r`) cuts the rows into `num_folds` folds with `StratifiedGroupKFold`, the groups being the subjects, or a
coarser grouping (e.g. site) when one is given, so whole subjects (or whole sites) move together. Each fold is the
test set once; the rest is cut again the same way into `num_validation_folds` folds, one of which is the validation
set and the others the training set. Regression targets are stratified by quantile bins. Every model evaluated on a
cohort sees the same (train, validation, test) index triples.
"""

import dataclasses

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold


@dataclasses.dataclass(frozen=True)
class Split:
    """Row index arrays of one split of a cohort (disjoint, covering it, no subject in two of them)."""

    repeat: int
    fold: int
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def stratification_target(labels: np.ndarray, regression: bool, num_bins: int = 5) -> np.ndarray:
    """Class labels, or quantile-bin indices of regression targets."""
    labels = np.asarray(labels)
    if not regression:
        return labels
    edges = np.quantile(labels.astype(np.float64), np.linspace(0, 1, num_bins + 1)[1:-1])
    return np.digitize(labels.astype(np.float64), edges)


def split_units(subjects, groups=None) -> np.ndarray:
    """The unit that moves whole between parts of a split, one per row: the subject, or the row's group when a
    coarser grouping is given (every subject must sit in one group; a finer grouping is refused)."""
    subjects = np.asarray(subjects).astype(str)
    if groups is None:
        return subjects
    groups = np.asarray(groups).astype(str)
    if groups.shape != subjects.shape:
        raise ValueError(f"Got {groups.size} group values for {subjects.size} rows.")
    for subject in np.unique(subjects):
        values = np.unique(groups[subjects == subject])
        if values.size > 1:
            raise ValueError(
                f"subject {subject} has {values.size} values of the group column ({', '.join(values[:5])}): a group "
                "column must be coarser than subjects (e.g. site), so that whole subjects move together; splits are "
                "by subject without one."
            )
    return groups


def repeated_splits(
    labels,
    subjects,
    *,
    groups=None,
    num_repeats: int = 5,
    num_folds: int = 5,
    num_validation_folds: int = 4,
    seed: int = 0,
    regression: bool = False,
) -> list[Split]:
    """`num_repeats × num_folds` (train, validation, test) splits of the rows, stratified by label, whole subjects
    (or whole groups) in each part.

    Args:
        labels: one label (or regression target) per row.
        subjects: one subject id per row; a subject's rows are always in the same part.
        groups: one group (e.g. site) per row, coarser than subjects, or `None`; a group never spans two parts.
        num_repeats, num_folds: repeats of the outer k-fold and its folds (the test sets).
        num_validation_folds: the non-test part is cut the same way into this many folds; one is the validation set.
        seed: repeat r uses `seed + r`.
        regression: stratify continuous targets by quantile bins.
    """
    target = stratification_target(labels, regression)
    units = split_units(subjects, groups)
    if units.shape != target.shape:
        raise ValueError(f"Got {units.size} subjects for {target.size} labels.")
    num_units = np.unique(units).size
    if num_units < num_folds:
        raise ValueError(
            f"{num_folds} folds need at least {num_folds} subjects (or groups), the cohort has {num_units}: "
            "use fewer folds."
        )
    splits = []
    for repeat in range(num_repeats):
        outer = StratifiedGroupKFold(n_splits=num_folds, shuffle=True, random_state=seed + repeat)
        for fold, (rest, test) in enumerate(outer.split(np.zeros(len(target)), target, units)):
            inner = StratifiedGroupKFold(n_splits=num_validation_folds, shuffle=True, random_state=seed + repeat)
            train, validation = next(inner.split(np.zeros(len(rest)), target[rest], units[rest]))
            splits.append(Split(repeat, fold, np.sort(rest[train]), np.sort(rest[validation]), np.sort(test)))
    return splits


def subjects_in_two_parts(split: Split, subjects) -> list[str]:
    """Subjects with rows in more than one part of `split` (empty for splits made by `repeated_splits`)."""
    subjects = np.asarray(subjects).astype(str)
    parts = [set(subjects[part].tolist()) for part in (split.train, split.validation, split.test)]  # plain str
    return sorted((parts[0] & parts[1]) | (parts[0] & parts[2]) | (parts[1] & parts[2]))


__all__ = ["Split", "repeated_splits", "split_units", "stratification_target", "subjects_in_two_parts"]
