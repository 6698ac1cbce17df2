"""One selection round of the pool paradigm, written once for the simulator and the session.

Round ``r`` of a run with seed ``s`` draws from its own generator ``default_rng([s, r])``, so a
round's picks depend only on the labels before it, the model's probabilities and the seed: the
simulator (:class:`~iml_tui.engine.paradigms.pool.PoolRun`) and a labelling session answered
by the same oracle (:class:`~iml_tui.engine.session.pool_backend.PoolBackend`) pick the same
clips, and a resumed run needs no saved generator state.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from iml_tui.engine.strategies import INIT_RULE, SelectionState, initial_round, select

PROB_RULES = ("mp", "mfft")


def round_rng(seed: int, round_index: int) -> np.random.Generator:
    """The generator of round ``round_index`` (0 = the first) of a run with ``seed``."""
    return np.random.default_rng([seed, round_index])


def round_rule(strategy: str, has_labels: bool, has_probs: bool) -> str:
    """The rule a round uses: the strategy's first-round rule before any label, and also for
    mp / mfft while no model has scored the pool; else the strategy itself."""
    if not has_labels:
        return INIT_RULE[strategy]
    return strategy if has_probs or strategy not in PROB_RULES else INIT_RULE[strategy]


def pick_round(
    strategy: str,
    x: np.ndarray,
    labeled: npt.ArrayLike,
    labeled_targets: np.ndarray | None,
    probs: np.ndarray | None,
    threshold: float,
    n: int,
    rng: np.random.Generator,
    k_pos: int = 0,
    clip_targets: np.ndarray | None = None,
) -> tuple[np.ndarray, str]:
    """``n`` new pool indices and the rule that chose them.

    x: (N, D) pooled embeddings; labeled: (L,) indices in labelling order with labeled_targets
    (L, C) 0/1 clip labels; probs: (N, C) clip probabilities of the current model (None: no
    model); k_pos and clip_targets (N, C): a warm first round (see ``initial_round``).
    """
    lab = np.asarray(labeled, dtype=np.int64)
    rule = round_rule(strategy, lab.size > 0, probs is not None)
    if lab.size == 0:
        picks = initial_round(strategy, x, n, rng, k_pos=k_pos, clip_targets=clip_targets)
    else:
        if labeled_targets is None:
            raise ValueError("labelled indices need their clip targets")
        state = SelectionState(
            x=x,
            labeled=lab,
            labeled_targets=labeled_targets,
            probs=probs if rule in PROB_RULES else None,
            threshold=threshold,
        )
        picks = select(rule, state, n, rng)
    return np.asarray(picks, dtype=np.int64), rule
