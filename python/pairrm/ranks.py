"""llm-blender's numpy helpers over ranks and comparison matrices (``blender_utils`` and ``gpt_eval.utils``), with
the same dtypes and tie rules, so code that post-processes ``Blender.rank`` keeps working unchanged."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


def get_topk_candidates_from_ranks(ranks: Sequence[Sequence[int]], candidates: Sequence[Sequence[str]],
                                   top_k: Optional[int]) -> np.ndarray:
    """The candidates of each input ordered by rank (best first), the first ``top_k`` of them (None = all): a 2-D
    numpy array of str. ``np.argsort``'s default kind, as llm-blender, so ties come out in the same order."""
    ranks = np.array(ranks)
    sorted_idxs = np.argsort(ranks, axis=1)
    candidates = np.array(candidates)
    return candidates[np.arange(len(candidates))[:, None], sorted_idxs[:, :top_k]]


def get_scores_from_cmps(cmp_results, policy: str = "max_logits") -> np.ndarray:
    """Scores (n, c) float32 from comparison matrices (n, c, c), cmp[i][j] > 0 when candidate i beats j.
    "max_logits": the mean over j (diagonal included) of cmp[i][j] - cmp[j][i] (what ``rank`` returns);
    "max_wins": the wins plus the mean of the losses, as llm-blender writes it."""
    cmp_results = np.asarray(cmp_results)
    bz, c, _ = cmp_results.shape
    scores = np.zeros((bz, c), dtype=np.float32)
    for i in range(bz):
        if policy == "max_logits":
            scores[i] = (cmp_results[i] - cmp_results[i].T).mean(axis=-1)
        elif policy == "max_wins":
            scores[i] = (cmp_results[i] > 0).sum(axis=-1) + (cmp_results[i] < 0).mean(axis=-2)
    return scores


def get_ranks_from_scores(scores) -> np.ndarray:
    """Ranks (int32, 1 = best) of scores (c,) or (n, c); equal scores share the best of their ranks (1, 1, 3)."""
    scores = np.asarray(scores)
    orig_shape = scores.shape
    rows = scores.reshape(1, -1) if scores.ndim == 1 else scores
    ranks = np.zeros(rows.shape, dtype=np.int32)
    for i, row in enumerate(rows):
        # 1 + the number of strictly higher scores = the position of the first equal score in a descending sort.
        ranks[i] = 1 + (row[None, :] > row[:, None]).sum(axis=1)
    return ranks.reshape(orig_shape)

