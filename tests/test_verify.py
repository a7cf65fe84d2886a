
import numpy as np
import pandas as pd
import pytest

from dint.selective import selective_error
from dint.interventions.rag import StoreConfig, build_store
from dint.verify import LearnedVerifier, NumericVerifier, ReferenceVerifier, Verifier, parse_number, verify_candidates


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
