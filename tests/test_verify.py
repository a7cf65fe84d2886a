
import numpy as np
import pandas as pd
import pytest

from dint.calibration import selective_error
from dint.interventions import bestofn
from dint.interventions.rag import StoreConfig, build_store
from dint.verify import (
    LearnedVerifier,
    NumericVerifier,
    ReferenceVerifier,
    Verifier,
    best_of_n_by_verifier,
    parse_number,
    sample_until_verified,
    sample_until_verified_mc,
    verify_candidates,
)


# ------------------------------------------------------------------------------ reference
def test_reference_verifier_clean_and_stale_store(micro_world):
    facts = micro_world.facts
    clean = build_store(micro_world, StoreConfig(stale_share=0.0), seed=0)
    stale = build_store(micro_world, StoreConfig(stale_share=1.0), seed=0)
    stale_values = stale.table.drop_duplicates("fact").set_index("fact").loc[facts["fact"], "value"].tolist()
    truth = facts["value"].tolist()

    v_clean, v_stale = ReferenceVerifier(clean), ReferenceVerifier(stale)
    assert isinstance(v_clean, Verifier)
    assert v_clean.check(facts, truth).all()
    assert not v_clean.check(facts, stale_values).any()
    # a stale store accepts exactly its stale claims and rejects the truth
    assert v_stale.check(facts, stale_values).all()
    assert not v_stale.check(facts, truth).any()
    # completions with a leading space and items keyed by fact only
    prompts = micro_world.prompts("qa")
    assert v_clean.check(prompts[["fact"]], [" " + t for t in prompts["target"]]).all()
    assert (v_clean.cost(facts, truth) == 0).all()
    # the world's facts table is the ideal reference
    assert ReferenceVerifier.from_world(micro_world).check(facts, truth).all()


def test_verify_candidates_matches_targets(micro_world):
    prompts = micro_world.prompts("statement")
    checks = verify_candidates(ReferenceVerifier.from_world(micro_world), prompts, prompts["candidates"])
    for i, (cands, target) in enumerate(zip(prompts["candidates"], prompts["target"])):
        expect = np.array([c == target for c in cands])
        np.testing.assert_array_equal(checks.score[i, :len(cands)], expect)
        assert checks.mask[i, :len(cands)].all() and not checks.mask[i, len(cands):].any()
    assert checks.score[~checks.mask].sum() == 0 and checks.verifier == "truth"


def test_reference_verifier_iv(micro_world):
    with pytest.raises(ValueError, match="store"):
        ReferenceVerifier(pd.DataFrame({"entity": ["a"]}))
    v = ReferenceVerifier.from_world(micro_world)
    with pytest.raises(ValueError, match="items"):
        v.check(pd.DataFrame({"x": [1]}), ["red"])
    with pytest.raises(ValueError, match="answers"):
        v.check(micro_world.facts.head(2), ["red"])
    with pytest.raises(TypeError, match="answers"):
        v.check(micro_world.facts.head(1), "red")
    with pytest.raises(TypeError, match="verifier"):
        verify_candidates(object(), micro_world.facts.head(1), [["red"]])
    with pytest.raises(ValueError, match="candidates"):
        verify_candidates(v, micro_world.facts.head(2), [["red"]])


# ------------------------------------------------------------------------------ numeric
@pytest.mark.parametrize("text, value", [
    ("42", 42.0), (" 42", 42.0), ("-3.5", -3.5), ("\u22127", -7.0), ("1,234", 1234.0),
    ("$1,234.50.", 1234.5), ("the answer is 12.", 12.0), ("x = 3, so y = 4", 4.0), ("1e3", 1000.0),
    (".5", 0.5), ("3/4", 0.75), ("#### 18", 18.0), (7, 7.0), (2.5, 2.5), ("1, 2, 3", 3.0),
])
def test_parse_number(text, value):
    assert parse_number(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "no number", None, True, "abc x2", "1/0"])
def test_parse_number_none(text):
    assert np.isnan(parse_number(text))


def test_numeric_verifier_edge_cases():
    v = NumericVerifier(0.01)
    ref = [100, 0, -50, 0.5, 1e6]
    got = v.check(ref, ["101", "0.01", "-50.4", "0.509", "1,010,000"])
    np.testing.assert_array_equal(got, [True, True, True, True, True])
    got = v.check(ref, ["101.5", "0.02", "-49", "n/a", "1,010,001"])
    np.testing.assert_array_equal(got, [False, False, False, False, False])
    exact = NumericVerifier(0.0)
    assert exact.check(np.array([3.0]), ["3"])[0] and not exact.check([3.0], ["3.0001"])[0]
    assert NumericVerifier().check([0.3], [0.1 + 0.2])[0]
    items = pd.DataFrame({"target": ["12", "7"]})
    np.testing.assert_array_equal(NumericVerifier().check(items, ["so 12", "8"]), [True, False])
    assert (NumericVerifier().cost(items, ["1", "2"]) == 0).all()


def test_numeric_verifier_iv():
    for bad in (-0.1, float("nan"), float("inf"), True, "0.1"):
        with pytest.raises(ValueError, match="tolerance"):
            NumericVerifier(bad)
    with pytest.raises(ValueError, match="items"):
        NumericVerifier().check(["x"], ["1"])
    with pytest.raises(ValueError, match="answers"):
        NumericVerifier().check([1, 2], ["1"])
    with pytest.raises(ValueError, match="items"):
        NumericVerifier().check(pd.DataFrame({"a": [1]}), ["1"])


# ------------------------------------------------------------------------------ selection
def _brute_force(p, a, c, cost, budget):
    """Enumerate every draw sequence and every verdict; stop at the first accepted draw."""
    totals = np.zeros(5)                        # right, wrong, abstain, draws, tokens

    def walk(weight, t, tokens):
        if t == budget:                         # all draws rejected
            totals[:] += weight * np.array([0, 0, 1, budget, tokens])
            return
        for j in range(len(p)):
            w = weight * p[j]
            totals[:] += w * a[j] * np.array([c[j], 1 - c[j], 0, t + 1, tokens + cost[j]])
            walk(w * (1 - a[j]), t + 1, tokens + cost[j])

    walk(1.0, 0, 0.0)
    return totals


def test_sample_until_verified_against_brute_force():
    rng = np.random.default_rng(0)
    for k, budget in [(2, 1), (3, 2), (3, 4), (4, 3)]:
        p = rng.dirichlet(np.ones(k))
        a = rng.random(k) * (rng.random(k) < 0.7)              # stochastic, some never accepted
        c = np.zeros(k, bool)
        c[rng.integers(k)] = True
        cost = rng.integers(1, 9, k).astype(float)
        got = sample_until_verified(p, a, budget, correct=c, cost=cost).iloc[0]
        want = _brute_force(p, a, c, cost, budget)
        np.testing.assert_allclose(
            [got.p_correct, got.p_wrong, got.p_abstain, got.draws, got.cost], want, rtol=1e-10, atol=1e-12)


def test_sample_until_verified_perfect_verifier_against_theory():
    p = np.array([[0.1, 0.6, 0.3], [0.02, 0.9, 0.08], [0.0, 0.5, 0.5]])
    target = np.array([0, 2, 0])
    correct = np.zeros_like(p, dtype=bool)
    correct[np.arange(3), target] = True
    out = sample_until_verified(p, correct, [1, 3, 10], correct=target)
    p_true = p[np.arange(3), target]
    for b, g in out.groupby("budget"):
        np.testing.assert_allclose(g["p_correct"], 1 - (1 - p_true) ** b, rtol=1e-12)
        np.testing.assert_allclose(g["p_wrong"], 0.0, atol=1e-15)
        np.testing.assert_allclose(g["p_abstain"], (1 - p_true) ** b, rtol=1e-12)
    # an item whose truth has p = 0 can never be verified: full budget, always abstain
    last = out[out["item"] == 2]
    np.testing.assert_array_equal(last["draws"], [1, 3, 10])
    np.testing.assert_array_equal(last["p_abstain"], 1.0)


def test_sample_until_verified_accept_all_is_plain_sampling():
    p = np.array([0.2, 0.5, 0.3])
    out = sample_until_verified(p, np.ones(3, bool), 5, correct=np.array(1), cost=7.0).iloc[0]
    assert out.p_correct == pytest.approx(0.5) and out.p_abstain == 0.0
    assert out.draws == 1.0 and out.cost == 7.0


def test_sample_until_verified_mc_agrees_with_exact():
    rng = np.random.default_rng(1)
    m, k = 4, 5
    p = rng.dirichlet(np.ones(k), size=m)
    p[0, 3] = 0.0
    p[0] /= p[0].sum()
    accept = rng.random((m, k)) < 0.5
    accept[1] = rng.random(k)                                     # one stochastic row
    target = rng.integers(k, size=m)
    cost = rng.integers(1, 20, (m, k))
    exact = sample_until_verified(p, accept, [1, 4], correct=target, cost=cost)
    size = 20000
    mc = sample_until_verified_mc(p, accept, [1, 4], correct=target, cost=cost, rng=np.random.default_rng(2),
                                  size=size)
    assert list(mc.columns[:-1]) == list(exact.columns) and (mc["size"] == size).all()
    for col in ("p_correct", "p_wrong", "p_abstain"):
        se = np.sqrt(exact[col] * (1 - exact[col]) / size) + 1e-9
        assert (np.abs(mc[col] - exact[col]) <= 4.5 * se).all(), col
    np.testing.assert_allclose(mc["draws"], exact["draws"], rtol=0.03)
    np.testing.assert_allclose(mc["cost"], exact["cost"], rtol=0.04)
    # seeded: same generator state, same numbers
    again = sample_until_verified_mc(p, accept, [1, 4], correct=target, cost=cost, rng=2, size=size)
    pd.testing.assert_frame_equal(mc, again)


def test_best_of_n_by_verifier():
    p = np.array([[0.5, 0.3, 0.2], [0.7, 0.2, 0.1]])
    score = np.array([[0.1, 0.9, 0.4], [0.2, 0.2, 0.8]])
    target = np.array([1, 0])
    out = best_of_n_by_verifier(p, score, [1, 3], correct=target, cost=np.array([2.0, 3.0]))
    for n, g in out.groupby("budget"):
        q = bestofn.exact(p, score, n)
        np.testing.assert_allclose(g["p_correct"], q[np.arange(2), target], rtol=1e-12)
        np.testing.assert_allclose(g["p_abstain"], 0.0, atol=1e-12)
        np.testing.assert_array_equal(g["cost"], [2.0 * n, 3.0 * n])
    # with a threshold, abstain exactly when all draws score below it
    out = best_of_n_by_verifier(p, score, 3, correct=target, threshold=0.5).set_index("item")
    below = np.array([0.5 + 0.2, 0.7 + 0.2])                        # P(score < 0.5) per item
    np.testing.assert_allclose(out["p_abstain"], below ** 3, rtol=1e-12)
    assert out.loc[0, "p_correct"] == pytest.approx(1 - 0.7 ** 3)


def test_selection_iv():
    p = np.array([[0.5, 0.5]])
    ok = np.array([[True, False]])
    with pytest.raises(ValueError, match="p must"):
        sample_until_verified([[0.5, 0.6]], ok, 2, correct=[0])
    with pytest.raises(ValueError, match="p must"):
        sample_until_verified([[-0.5, 1.5]], ok, 2, correct=[0])
    with pytest.raises(ValueError, match="accept"):
        sample_until_verified(p, [[1.2, 0.0]], 2, correct=[0])
    with pytest.raises(ValueError, match="accept"):
        sample_until_verified(p, [[1, 0, 0]], 2, correct=[0])
    for bad in (0, 2.5, True, [], [1, 0]):
        with pytest.raises(ValueError, match="budget"):
            sample_until_verified(p, ok, bad, correct=[0])
    with pytest.raises(ValueError, match="correct"):
        sample_until_verified(p, ok, 2, correct=[2])
    with pytest.raises(ValueError, match="correct"):
        sample_until_verified(p, ok, 2, correct=[[0.5, 0.5]])
    with pytest.raises(ValueError, match="correct"):               # (k,) masks only for one item
        sample_until_verified(np.full((2, 2), 0.5), np.ones((2, 2)), 2, correct=[True, False])
    with pytest.raises(ValueError, match="accept"):
        sample_until_verified(np.full((2, 2), 0.5), [1, 0], 2, correct=[0, 1])
    with pytest.raises(ValueError, match="cost"):
        sample_until_verified(p, ok, 2, correct=[0], cost=-1.0)
    with pytest.raises(TypeError, match="rng"):
        sample_until_verified_mc(p, ok, 2, correct=[0], rng=None)
    with pytest.raises(ValueError, match="size"):
        sample_until_verified_mc(p, ok, 2, correct=[0], rng=0, size=0)
    with pytest.raises(ValueError, match="score"):
        best_of_n_by_verifier(p, [[np.nan, 0.0]], 2, correct=[0])
    with pytest.raises(ValueError, match="threshold"):
        best_of_n_by_verifier(p, ok, 2, correct=[0], threshold=float("nan"))


# ------------------------------------------------------------------------------ learned
class _MockReward:
    """Rewards looked up by prompt "q<i>" and whether the completion is "yes"."""

    def __init__(self, right, wrong):
        self.right, self.wrong = np.asarray(right), np.asarray(wrong)

    def score(self, prompts, completions):
        i = np.array([int(p[1:]) for p in prompts])
        yes = np.array([c.strip() == "yes" for c in completions])
        return np.where(yes, self.right[i], self.wrong[i])

    def encode(self, prompts, completions):
        return [[0] * (len(f"{p} {c}".split()) + 1) for p, c in zip(prompts, completions)]


def test_learned_verifier_scores_and_cost():
    rm = _MockReward(right=[2.0, 0.0], wrong=[-1.0, 0.0])
    prompts = ["q0", "q1"]
    v = LearnedVerifier(rm, prompts)
    assert isinstance(v, Verifier)
    np.testing.assert_allclose(v.check(np.array([0, 0, 1]), ["yes", "no", "yes"]),
                               1 / (1 + np.exp(-np.array([2.0, -1.0, 0.0]))))
    np.testing.assert_array_equal(v.cost([0, 1], [" yes", "no way"]), [3, 4])
    # items may carry the prompts, or positions in an item column
    df = pd.DataFrame({"prompt": ["q1"], "item": [0]})
    assert v.check(df, ["yes"])[0] == pytest.approx(1 / (1 + np.exp(-2.0)))
    assert LearnedVerifier(rm).check(df, ["yes"])[0] == 0.5
    checks = verify_candidates(v, np.array([0, 1]), [["yes", "no"], ["yes"]])
    assert checks.score.shape == (2, 2) and checks.cost[1, 1] == 0 and not checks.mask[1, 1]
    with pytest.raises(RuntimeError, match="calibrate"):
        v.accept([0], ["yes"])


def test_learned_verifier_calibration_holds_error_rate():
    """Conformal risk control: mean P(accepted and wrong) over calibration draws <= alpha."""
    rng = np.random.default_rng(0)
    alpha, n, reps = 0.1, 400, 200
    joint, coverage = [], []
    for _ in range(reps):
        m = 2 * n
        correct = rng.random(m) < 0.6
        reward = np.where(correct, rng.normal(1.0, 1.0, m), rng.normal(-1.0, 1.0, m))
        rm = _MockReward(right=reward, wrong=reward)
        v = LearnedVerifier(rm, [f"q{i}" for i in range(m)], scale=2.0)
        answers = ["yes"] * m
        res = v.calibrate(np.arange(n), answers[:n], correct[:n], alpha=alpha)
        assert v.threshold == res.threshold and res.alpha == alpha
        test = np.arange(n, m)
        ev = selective_error(v.threshold, v.check(test, answers[n:]), correct[n:])
        np.testing.assert_array_equal(v.accept(test, answers[n:]), v.check(test, answers[n:]) >= res.threshold)
        joint.append(ev["error_joint"])
        coverage.append(ev["coverage"])
    joint = np.array(joint)
    assert joint.mean() <= alpha + 3 * joint.std() / np.sqrt(reps)
    assert joint.mean() > alpha / 2                    # not vacuous: it uses the error budget
    assert np.mean(coverage) > 0.4


def test_learned_verifier_iv():
    rm = _MockReward([0.0], [0.0])
    with pytest.raises(TypeError, match="reward_model"):
        LearnedVerifier(object(), ["q0"])
    with pytest.raises(ValueError, match="scale"):
        LearnedVerifier(rm, ["q0"], scale=0.0)
    with pytest.raises(TypeError, match="prompts"):
        LearnedVerifier(rm, "q0")
    v = LearnedVerifier(rm, ["q0"])
    with pytest.raises(ValueError, match="items"):
        v.check([3], ["yes"])
    with pytest.raises(ValueError, match="prompts"):
        LearnedVerifier(rm).check([0], ["yes"])
    with pytest.raises(ValueError, match="alpha"):
        v.calibrate([0], ["yes"], [True], alpha=1.5)
