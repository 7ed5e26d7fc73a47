# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Identification (fingerprinting): find a subject's other session, or another window of the same scan, among
everyone's, by similarity of their representations (Finn et al. 2015, connectome fingerprinting).

Rows are representations, one per (subject, session); a session may also be a disjoint window of one run
(`cut_windows`). For every ordered pair of sessions (a, b), each subject of session a with a row in session b is a
query, and every subject's row in session b is a candidate; similarity is the Pearson correlation across features
(the fingerprinting convention). A query is identified when its most similar candidate is its own subject (top-1);
its rank is the position of its own subject among the candidates (1 = most similar). Chance: top-1 1 / candidates,
mean rank (candidates + 1) / 2. The metrics come from the package's `identification_accuracy` `evaluate` module.

The floor beside every number: the same identification on functional connectivity (`functional_connectivity`: the
Fisher z of the Pearson correlation between every pair of ROI series, upper triangle) computed from the same series.
"""

from collections.abc import Mapping, Sequence

import numpy as np

from .metrics import load_metric

# Correlations are clipped to ±(1 - 1e-7) before the Fisher z, so perfectly correlated pairs stay finite.
FISHER_Z_CLIP = 1 - 1e-7

METHOD = {
    "queries": "for every ordered pair of sessions (a, b): each subject of session a with a row in session b, "
    "matched against every subject's row in session b",
    "similarity": "Pearson correlation across features",
    "identification_accuracy": "share of queries whose most similar candidate is their own subject (top-1)",
    "mean_rank": "mean rank of the own subject among the candidates (1 = most similar; ties share the mean rank)",
    "chance": "top-1 1 / candidates, mean rank (candidates + 1) / 2, averaged over queries",
    "fc_baseline": "the same identification on functional connectivity of the same series: Fisher z of the Pearson "
    "correlation of every pair of ROI series (upper triangle)",
}


def correlation_similarity(queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """`(num_queries, num_candidates)` Pearson correlations between rows of `(num_queries, dim)` and
    `(num_candidates, dim)` (a constant row correlates 0 with everything)."""

    def standardised(rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.float64)
        centred = rows - rows.mean(axis=1, keepdims=True)
        norms = np.linalg.norm(centred, axis=1, keepdims=True)
        return np.divide(centred, norms, out=np.zeros_like(centred), where=norms > 0)

    return standardised(queries) @ standardised(candidates).T


def identify(embeddings, subjects, sessions=None) -> dict:
    """Top-1 identification and mean rank across sessions (see the module docstring).

    Args:
        embeddings: `(num_rows, dim)` representations.
        subjects: `(num_rows,)` subject ids.
        sessions: `(num_rows,)` session (or window) ids; `None` numbers each subject's rows 0, 1, ... in order.

    Returns:
        JSON-ready dict: `identification_accuracy`, `mean_rank`, their chance levels, `num_queries`, `num_subjects`,
        `num_sessions` over all session pairs, and `session_pairs`, the same per ordered pair `(query, candidates)`.
    """
    embeddings = np.asarray(embeddings, dtype=np.float64)
    subjects = np.asarray(subjects).astype(str)
    if embeddings.ndim != 2 or embeddings.shape[0] != subjects.shape[0]:
        raise ValueError(
            f"Expected (num_rows, dim) embeddings for {subjects.size} subject ids, got {embeddings.shape}."
        )
    if sessions is None:
        counts: dict[str, int] = {}
        sessions = []
        for subject in subjects:
            sessions.append(counts.get(subject, 0))
            counts[subject] = sessions[-1] + 1
    sessions = np.asarray(sessions).astype(str)
    rows = {}
    for index, key in enumerate(zip(subjects, sessions, strict=True)):
        if key in rows:
            raise ValueError(
                f"Subject {key[0]} has two rows in session {key[1]}: identification needs one row per subject and "
                "session (give runs or windows their own session id)."
            )
        rows[key] = index
    session_ids = sorted(set(sessions))
    predictions, references, pairs = [], [], []
    for query_session in session_ids:
        for candidate_session in session_ids:
            if query_session == candidate_session:
                continue
            candidates = sorted(subject for subject, session in rows if session == candidate_session)
            queries = [subject for subject in candidates if (subject, query_session) in rows]
            if not queries or len(candidates) < 2:
                continue
            similarity = correlation_similarity(
                embeddings[[rows[subject, query_session] for subject in queries]],
                embeddings[[rows[subject, candidate_session] for subject in candidates]],
            )
            pair_references = [candidates.index(subject) for subject in queries]
            pair = {"query": query_session, "candidates": candidate_session, "num_queries": len(queries)}
            pairs.append(pair | _scores(similarity, pair_references))
            predictions.extend(similarity)
            references.extend(pair_references)
    if not pairs:
        raise ValueError(
            "No subject has rows in two sessions among at least two subjects: identification needs several subjects, "
            "each with two or more sessions (or windows)."
        )
    overall = _scores(predictions, references)
    return overall | {
        "num_queries": len(references),
        "num_subjects": len(set(subjects)),
        "num_sessions": len(session_ids),
        "session_pairs": pairs,
    }


def _scores(similarities, references) -> dict[str, float]:
    return load_metric("identification_accuracy").compute(
        predictions=[np.asarray(row, dtype=np.float64) for row in similarities], references=references
    )


def functional_connectivity(series: Sequence[np.ndarray]) -> np.ndarray:
    """`(num_series, num_rois * (num_rois - 1) / 2)` functional connectivity of ROI-first `(num_rois, num_timepoints)`
    series: the Fisher z (artanh) of the Pearson correlation of every pair of ROIs, upper triangle, row-major. A
    constant ROI correlates 0; correlations are clipped to ±(1 - 1e-7) before the transform."""
    return np.stack([fisher_z_upper(correlation_similarity(values, values)) for values in series])


def fisher_z_upper(similarity: np.ndarray) -> np.ndarray:
    """`(..., num_rois, num_rois)` correlations (or cosine similarities) -> `(..., num_rois * (num_rois - 1) / 2)`:
    the Fisher z (artanh) of the upper triangle above the diagonal, row-major, clipped to ±(1 - 1e-7) first."""
    rows, columns = np.triu_indices(similarity.shape[-1], k=1)
    return np.arctanh(np.clip(similarity[..., rows, columns], -FISHER_Z_CLIP, FISHER_Z_CLIP))


def cut_windows(series: np.ndarray, num_windows: int) -> list[np.ndarray]:
    """`num_windows` disjoint consecutive windows of equal length of an ROI-first `(num_rois, num_timepoints)` series
    (the last `num_timepoints % num_windows` frames are left out)."""
    series = np.asarray(series)
    length = series.shape[1] // num_windows
    if num_windows < 2 or length < 2:
        raise ValueError(
            f"Cannot cut {series.shape[1]} frames into {num_windows} windows of at least 2 frames: use 2 or more "
            "windows, each of several frames."
        )
    return [series[:, index * length : (index + 1) * length] for index in range(num_windows)]


def identification_report(
    embeddings: Mapping[str, np.ndarray], subjects, sessions=None, series: Sequence[np.ndarray] | None = None
) -> dict:
    """Identification of every source of embeddings, with chance and, given the ROI series the rows were embedded
    from, the functional-connectivity baseline, in one JSON-ready report.

    Args:
        embeddings: source name -> `(num_rows, dim)` embeddings, rows aligned with `subjects`.
        subjects, sessions: as in `identify`.
        series: `num_rows` ROI-first `(num_rois, num_timepoints)` series, or `None` (no FC baseline).
    """
    results = {name: identify(values, subjects, sessions) for name, values in embeddings.items()}
    report = {"method": METHOD, "sources": results}
    if series is not None:
        report["fc_baseline"] = identify(functional_connectivity(series), subjects, sessions)
    first = next(iter(results.values()))
    report["chance"] = {
        "identification_accuracy": first["chance_identification_accuracy"],
        "mean_rank": first["chance_mean_rank"],
    }
    return report


__all__ = [
    "METHOD",
    "correlation_similarity",
    "cut_windows",
    "functional_connectivity",
    "identification_report",
    "identify",
]
