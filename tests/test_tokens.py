"""Tests for dint.tokens: URIAL's token classes, each decoded token's role and the answer-token shares."""
import numpy as np
import pytest


def test_token_shift_positions_by_hand():
    from dint.tokens import token_shift_positions
    # vocabulary of 5; base ranks at position 0: tok 2 (0.4) > tok 0 (0.3) > tok 1 (0.15) > 3 = 4 (0.075)
    base = np.log(np.array([[0.3, 0.15, 0.4, 0.075, 0.075],
                            [0.2, 0.2, 0.2, 0.2, 0.2],
                            [0.1, 0.6, 0.1, 0.1, 0.1]]))
    post = np.log(np.array([[0.1, 0.1, 0.7, 0.05, 0.05],
                            [0.05, 0.05, 0.05, 0.05, 0.8],
                            [0.1, 0.1, 0.1, 0.1, 0.6]]))
    out = token_shift_positions(post, base, np.array([2, 4, 4]))
    # tok 2 is the base's top token; tok 4 ties all others at position 1 (nothing strictly higher);
    # at position 2, tok 4 has tok 1 above it: rank 2 -> marginal
    np.testing.assert_array_equal(out["base_rank"], [1, 1, 2])
    assert list(out["shift"]) == ["unshifted", "unshifted", "marginal"]
    p, q = np.exp(post), np.exp(base)
    np.testing.assert_allclose(out["kl"], np.sum(p * np.log(p / q), axis=1), rtol=1e-12)
    np.testing.assert_allclose(out["base_logp_token"], np.log([0.4, 0.2, 0.1]))
    shifted = token_shift_positions(post[:1], base[:1], np.array([3]))
    assert shifted["base_rank"][0] == 4 and shifted["shift"][0] == "shifted"


def test_token_shift_positions_iv():
    from dint.tokens import token_shift_positions
    lp = np.log(np.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match="one shape"):
        token_shift_positions(lp, lp[:, :2], np.array([0, 1]))
    with pytest.raises(ValueError, match="tokens must be 2 integer"):
        token_shift_positions(lp, lp, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="tokens must lie in"):
        token_shift_positions(lp, lp, np.array([0, 3]))


def test_answer_roles_by_hand():
    from dint.tokens import ANSWER_ROLES, answer_roles
    # values: 5 | 6 7 | 6 8 | 9 10 (the only value that begins with 9); eos 2; closing marker 3
    cands = [[5], [6, 7], [6, 8], [9, 10]]

    def roles(tokens, candidates=cands, **kw):
        r, matched = answer_roles(np.array(tokens), candidates, eos=2, closings=[[3]], **kw)
        assert set(r) <= set(ANSWER_ROLES)
        return list(r), matched

    # the second word of the only value beginning with 9 is forced; then the closing marker and the stop
    assert roles([9, 10, 3, 2]) == (["answer", "forced", "closing", "stop"], True)
    # after 6 the candidates differ (7 or 8): both tokens are chosen
    assert roles([6, 7, 2]) == (["answer", "answer", "stop"], True)
    # base-like text after the answer is "after"; the stop counts as the stop wherever it is
    assert roles([5, 11, 12, 2]) == (["answer", "after", "after", "stop"], True)
    assert roles([5, 11, 3]) == (["answer", "after", "after"], True)   # the marker closes only right after
    assert roles([9, 10, 3]) == (["answer", "forced", "closing"], True)    # no stop within the budget
    # the longest value that begins the output; a value that may end where another goes on forces nothing
    assert roles([6, 7, 2], [[6], [6, 7], [8]]) == (["answer", "answer", "stop"], True)
    # no value begins the output: its first word is the answer, nothing forced
    assert roles([11, 12, 2], first_word=1) == (["answer", "after", "stop"], False)
    assert roles([11, 12, 2], first_word=2) == (["answer", "answer", "stop"], False)
    assert roles([2]) == (["stop"], False)                                  # stopped at once: no answer
    # without candidates every token before the stop is an answer token
    assert roles([4, 5, 2, 7], None) == (["answer", "answer", "stop", "after"], False)
    # a single candidate forces its every token, the first included
    assert roles([9, 10, 2], [[9, 10]]) == (["forced", "forced", "stop"], True)


def test_shift_shares_counts_the_roles_asked():
    import pandas as pd

    from dint.tokens import shift_shares
    table = pd.DataFrame({"item": [0, 0, 0, 1, 1, 2, 2],
                          "role": ["answer", "forced", "stop", "answer", "stop", "answer", "after"],
                          "shift": ["shifted", "unshifted", "shifted", "unshifted", "shifted", "shifted", "unshifted"]})
    answer = shift_shares(table, n_resamples=200)
    assert answer["unshifted"].statistic == pytest.approx(1 / 3) and answer["shifted"].statistic == pytest.approx(2 / 3)
    assert answer["unshifted"].n == 3 and answer["unshifted"].method == "cluster bootstrap by item"
    with_forced = shift_shares(table, ("answer", "forced"), n_resamples=200)
    assert with_forced["unshifted"].statistic == pytest.approx(2 / 4)
    every = shift_shares(table, None, n_resamples=200)
    assert every["unshifted"].statistic == pytest.approx(3 / 7) and every["unshifted"].n == 7
    assert sum(every[c].statistic for c in ("unshifted", "marginal", "shifted")) == pytest.approx(1.0)
    one = shift_shares(table[table.item == 0], ("answer", "forced"))
    assert one["unshifted"].statistic == 0.5 and np.isnan(one["unshifted"].confidence_interval.low)
    assert np.isnan(shift_shares(table, ("closing",))["unshifted"].statistic)
    with pytest.raises(ValueError, match="roles="):
        shift_shares(table, ("eos",))


def test_token_shift_models(micro_model, micro_world):
    import copy

    import torch

    from dint.tokens import token_shift
    model, tok, _ = micro_model
    prompts = micro_world.prompts("statement")["prompt"].tolist()[:12]
    same = token_shift(model, model, tok, prompts, max_new_tokens=3, n_resamples=200)
    # a model against itself: every greedy token is the base's top token and the KL is 0
    assert same.shares["unshifted"].statistic == 1.0
    assert same.table["kl"].abs().max() < 1e-10
    assert same.n_items == 12 and same.n_positions == len(same.table) >= 12
    # the stop is never an answer token
    assert not ((same.table.token == tok.eos_token_id) & same.table.role.isin(["answer", "forced"])).any()
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.lm_head.weight.add_(torch.randn(other.lm_head.weight.shape, generator=torch.Generator().manual_seed(0)))
    res = token_shift(other, model, tok, prompts, max_new_tokens=3, n_resamples=200)
    assert res.kl.statistic > 0 and res.kl.confidence_interval.low > 0
    total = sum(res.shares[c].statistic for c in ("unshifted", "marginal", "shifted"))
    assert total == pytest.approx(1.0)
    assert res.shares["unshifted"].statistic < 1.0


def test_token_shift_answer_tokens(micro_model, micro_world):
    from dint.tokens import token_shift
    model, tok, _ = micro_model
    frame = micro_world.prompts("statement").iloc[:12]
    free = token_shift(model, model, tok, frame["prompt"], max_new_tokens=4, n_resamples=200)
    words = [tok.convert_ids_to_tokens(g.token[g.token != tok.eos_token_id].tolist())
             for _, g in free.table.groupby("item")]
    # candidates: the output's own first two words as a value (its second word forced, as the only value
    # beginning with its first), beside a value of the world that begins otherwise
    other = next(v for v in micro_world.values["home"] if len(v.split()) == 2)
    answers = [[" " + " ".join(w[:2])] + ([" " + other] if w[:1] != other.split()[:1] else []) for w in words]
    res = token_shift(model, model, tok, frame["prompt"], answers=answers, closings=(" .",), max_new_tokens=4,
                      n_resamples=200)
    t, items = res.table, res.items
    assert len(items) == 12 and items["item"].tolist() == list(range(12)) and items["matched"].all()
    for i, w in enumerate(words):
        roles = t.loc[t.item == i, "role"].tolist()
        assert roles[:len(w[:2])] == ["answer", "forced"][:len(w[:2])]
        assert roles.count("stop") == (tok.eos_token_id in t.loc[t.item == i, "token"].tolist())
    # the items table counts the table's roles, and an output that stops after its answer has nothing after it
    counts = t.groupby(["item", "role"]).size().unstack(fill_value=0).reindex(range(12), fill_value=0)
    for role in ("forced", "closing", "after"):
        got = counts[role] if role in counts else 0
        assert (items[f"{role}_positions"].to_numpy() == got).all()
    assert (items["answer_positions"].to_numpy() == counts.get("answer", 0) + counts.get("forced", 0)).all()
    assert (items.loc[items.stops_after_answer, "after_positions"] == 0).all()
    assert (items.stops_after_answer <= items.stopped).all()
    assert res.shares["unshifted"].statistic == 1.0 and res.shares["unshifted"].n == (t.role == "answer").sum()
    with pytest.raises(ValueError, match="answers has 1 entries for 12 prompts"):
        token_shift(model, model, tok, frame["prompt"], answers=answers[:1])
