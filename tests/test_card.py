"""dint.card: distribution cards and the conformal verification system."""
import numpy as np
import pandas as pd
import pytest

from dint import card


def _scores(p: dict, truth: dict, answers=("x", "y", "z"), outside=0.1):
    rows = []
    for fact, probs in p.items():
        for c, (a, q) in enumerate(zip(answers, probs)):
            rows.append({"fact": fact, "form": "qa", "candidate": c, "answer": a, "p_set": q,
                         "mass_outside": outside, "is_true": a == truth[fact]})
    return pd.DataFrame(rows)


FACTS = pd.DataFrame({"fact": [0, 1, 2, 3], "split": ["heldout"] * 4, "misconception": ["y", "", "", "z"]})
TRUTH = {0: "x", 1: "x", 2: "y", 3: "z"}


def test_card_by_hand():
    base = _scores({f: [1 / 3] * 3 for f in range(4)}, TRUTH)
    post = _scores({0: [0.2, 0.7, 0.1], 1: [0.8, 0.1, 0.1], 2: [0.1, 0.8, 0.1], 3: [0.6, 0.2, 0.2]}, TRUTH)
    c = card.card("post", base, post, FACTS, n_resamples=200)
    assert c.n == 4 and c.accuracy.statistic == pytest.approx(0.5)       # facts 1, 2 right
    # misconception mass on facts 0 (y: 0.7) and 3 (z: 0.2)
    assert c.misconception_mass.statistic == pytest.approx(0.45) and c.misconception_mass.n == 2
    assert c.mass_outside.statistic == pytest.approx(0.1)
    ent = -np.sum(np.array([[0.2, 0.7, 0.1], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.6, 0.2, 0.2]]) *
                  np.log([[0.2, 0.7, 0.1], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.6, 0.2, 0.2]]), axis=1).mean()
    assert c.entropy.statistic == pytest.approx(ent)
    same = card.card("base", base, base, FACTS, n_resamples=200)
    assert same.kl_from_base.statistic == pytest.approx(0.0, abs=1e-12) and c.kl_from_base.statistic > 0
    row = card.cards(base, {"base": base, "post": post}, FACTS, n_resamples=100)
    assert list(row.model) == ["base", "post"] and {"accuracy_low", "ece_high"} <= set(row.columns)
    with pytest.raises(ValueError, match="form="):
        card.card("post", base, post, FACTS, form="essay")
    with pytest.raises(ValueError, match="facts must"):
        card.card("post", base, post, FACTS.drop(columns="split"))


def test_split_facts_is_a_partition():
    cal, test = card.split_facts(np.arange(10), 0.3, rng=1)
    assert len(cal) == 3 and len(test) == 7 and set(cal) | set(test) == set(range(10)) and not set(cal) & set(test)
    assert np.array_equal(cal, card.split_facts(np.arange(10), 0.3, rng=1)[0])
    with pytest.raises(ValueError, match="share="):
        card.split_facts(np.arange(10), 1.0)


def test_verification_system_holds_alpha_over_splits():
    """Over random calibration/test splits the realised joint error averages at most alpha."""
    rng = np.random.default_rng(0)
    errors = []
    for i in range(300):
        s = rng.random(400)
        y = rng.random(400) < s                     # a calibrated score
        cal = np.zeros(400, bool)
        cal[rng.permutation(400)[:200]] = True
        r = card.verification_system(s, y, cal, alpha=0.05)
        errors.append(r.error.statistic)
        assert 0 <= r.coverage.statistic <= 1 and r.n_calibration == 200
    assert np.mean(errors) <= 0.05 + 2 * np.std(errors) / np.sqrt(len(errors))
    assert np.mean(errors) > 0.03                  # not trivially abstaining
    with pytest.raises(ValueError, match="calibration_mask"):
        card.verification_system(s, y, np.ones(400, bool))
    with pytest.raises(ValueError, match="one length"):
        card.verification_system(s, y[:10], cal)


def test_verification_splits_mean_error_at_most_alpha():
    rng = np.random.default_rng(1)
    s = rng.random(300)
    y = rng.random(300) < s
    r = card.verification_splits(s, y, alpha=0.1, n_splits=300, rng=2)
    assert r["error"].statistic <= 0.1 + 2 * (r["error"].confidence_interval.high - r["error"].statistic)
    assert r["error"].confidence_interval.low <= r["error"].statistic <= r["error"].confidence_interval.high
    assert 0 < r["coverage"].statistic < 1 and r["worst_split"] >= r["error"].statistic
    assert r["error_unverified"].statistic == pytest.approx(1 - y.mean(), abs=0.02)
    again = card.verification_splits(s, y, alpha=0.1, n_splits=300, rng=2)
    assert again["error"].statistic == r["error"].statistic
    with pytest.raises(ValueError, match="n_splits"):
        card.verification_splits(s, y, n_splits=1)


@pytest.mark.parametrize("kw, match", [({"alpha": 1.5}, "alpha=1.5"), ({"alpha": True}, "alpha=True"),
                                        ({"n_splits": 1}, "n_splits=1")])
def test_characterise_iv_before_any_work(kw, match):
    """alpha and n_splits are checked before the card's bootstrap (the tables here would make it fail)."""
    with pytest.raises(ValueError, match=match):
        card.characterise("m", pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), **kw)
