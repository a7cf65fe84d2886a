"""Synthetic score tables shared by the tests of dint.analyses.reliability and dint.analyses.diversity."""
import math

import numpy as np
import pandas as pd
from scipy.special import softmax


def score_tables(n_per_relation=(12, 9), k=(4, 6), seed=0, sharp=2.0):
    """A facts table and a one-form score table with random answer distributions."""
    rng = np.random.default_rng(seed)
    facts, rows, f = [], [], 0
    for r, (n, kr) in enumerate(zip(n_per_relation, k)):
        for i in range(n):
            p = softmax(sharp * rng.normal(size=kr))
            true = int(rng.integers(kr))
            facts.append({"fact": f, "relation": f"rel{r}", "split": "train" if i % 2 else "heldout"})
            for c in range(kr):
                rows.append({"fact": f, "form": "qa", "candidate": c, "answer": f"r{r}v{c}", "logp": math.log(p[c]),
                             "p": p[c], "p_set": p[c], "mass_outside": 0.1, "is_true": c == true})
            f += 1
    return pd.DataFrame(facts), pd.DataFrame(rows)
