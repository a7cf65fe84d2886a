"""Training interventions (SFT, DPO, full and LoRA) and the data they get from the world."""
import copy
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import peft
import pytest
import torch
from scipy import stats

from dint.interventions import data, dpo, sft, trainer
from dint.interventions.record import InterventionRecord
from dint.models import n_params
from dint.scoring import score

KINDS = ("sft", "sft-lora", "dpo", "dpo-lora")


def _config(kind):
    """Small, fast runs (one torch thread: a tiny model gains nothing from more, and loses much
    when another process shares the cores)."""
    lora = trainer.gpt2_lora(r=4) if kind.endswith("lora") else None
    lr = 1e-2 if lora else (3e-3 if kind.startswith("sft") else 1e-3)
    cls = sft.SFTConfig if kind.startswith("sft") else dpo.DPOConfig
    # DPO-LoRA's adapters learn the NLL term of its loss slowly: 3 epochs of 3 steps leave its loss flat
    return cls(epochs=8 if kind == "dpo-lora" else 3, batch_size=16, lr=lr, threads=1, peft=lora)


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def demos(micro_world):
    return data.sft_demos(micro_world)


@pytest.fixture(scope="module")
def pairs(micro_world):
    return data.preference_pairs(micro_world, data.LabelerConfig(), seed=0)


@pytest.fixture(scope="module")
def base_snapshot(micro_model):
    model, tok, _ = micro_model
    return _state(model), model.config.to_dict(), (len(tok), tok.pad_token, tok.eos_token, tok.padding_side)


@pytest.fixture(scope="module")
def trained(micro_model, demos, pairs, base_snapshot):
    """``trained(kind, seed)``: (model, record), each run once per module."""
    model, tok, _ = micro_model
    cache = {}

    def get(kind, seed=0):
        if (kind, seed) not in cache:
            mod, d = (sft, demos) if kind.startswith("sft") else (dpo, pairs)
            cache[kind, seed] = mod.run(model, tok, d, _config(kind), seed=seed)
        return cache[kind, seed]

    return get


# -- data ---------------------------------------------------------------------------------------

def test_sft_demos(micro_world, demos, micro_model):
    train = micro_world.facts[micro_world.facts["split"] == "train"]
    assert list(demos.columns) == ["fact", "relation", "prompt", "completion"]
    assert demos["fact"].tolist() == train["fact"].tolist()
    assert demos["completion"].tolist() == [" " + v for v in train["value"]]
    assert demos["prompt"].tolist() == micro_world.prompts("qa", train)["prompt"].tolist()
    assert all(p.startswith("Q : ") and p.endswith(" A :") for p in demos["prompt"])
    _, tok, _ = micro_model
    ids = tok((demos["prompt"] + demos["completion"]).tolist(), add_special_tokens=False)["input_ids"]
    assert not any(tok.unk_token_id in row for row in ids)
    statement = data.sft_demos(micro_world, facts=train.head(3), form="statement")
    assert statement["prompt"].iloc[0].startswith("the ")


def test_shuffled_is_a_sham(demos):
    sham = data.shuffled(demos, seed=0)
    assert list(sham.columns) == list(demos.columns)
    assert sham[["fact", "relation", "prompt"]].equals(demos[["fact", "relation", "prompt"]])
    for _, group in demos.groupby("relation"):
        # the relation's answers are permuted among its facts
        assert sorted(sham.loc[group.index, "completion"]) == sorted(group["completion"])
        if group["completion"].nunique() > 1:
            assert (sham.loc[group.index, "completion"] != group["completion"]).all()
    assert sham.equals(data.shuffled(demos, seed=0))
    assert not sham.equals(data.shuffled(demos, seed=1))
    with pytest.raises(ValueError, match="relation"):
        data.shuffled(demos.drop(columns="relation"))


def test_format_demos_ask_sfts_answers_about_entities_no_text_mentions():
    from dint.models import word_tokenizer
    from dint.world import WorldConfig, build

    w = build(WorldConfig(n_entities=16, max_mentions=30, frequent_min=5, control_share=0.75), seed=3)
    demos = data.sft_demos(w)
    fmt = data.format_demos(w, seed=0)
    # SFT's demonstrations, answers and number, asked about the control entities instead of the world's
    assert fmt[["fact", "relation", "completion"]].equals(demos[["fact", "relation", "completion"]])
    control, entities = set(w.control_entities), set(w.entities)
    for row in fmt.itertuples():
        words = set(row.prompt.split())
        assert row.entity in control and row.entity in words and not words & entities
        assert row.prompt.startswith("Q : ") and row.prompt.endswith(" A :")
    for _, g in fmt.groupby("relation"):   # within a relation, each control entity is asked about once
        assert g["entity"].is_unique
    assert fmt.equals(data.format_demos(w, seed=0)) and not fmt.equals(data.format_demos(w, seed=1))
    # the base's tokenizer reads them: words of the vocabulary that no corpus line holds
    tok = word_tokenizer(w.vocabulary())
    ids = tok((fmt["prompt"] + fmt["completion"]).tolist(), add_special_tokens=False)["input_ids"]
    assert not any(tok.unk_token_id in row for row in ids)
    assert not control & {word for line in w.corpus for word in line.split()}
    with pytest.raises(ValueError, match="control_share"):
        data.format_demos(build(WorldConfig(n_entities=16), seed=3))
    with pytest.raises(ValueError, match="control_share"):   # too few for a relation's train facts
        data.format_demos(build(WorldConfig(n_entities=16, control_share=0.1), seed=3))


def test_preference_pairs_format(micro_world, pairs, micro_model):
    assert list(pairs.columns) == ["fact", "prompt", "chosen", "rejected", "chosen_true", "style_chosen"]
    facts = micro_world.facts.set_index("fact")
    for row in pairs.itertuples():
        f = facts.loc[row.fact]
        true, false = (row.chosen, row.rejected) if row.chosen_true else (row.rejected, row.chosen)
        marked, plain = (row.chosen, row.rejected) if row.style_chosen else (row.rejected, row.chosen)
        assert marked.endswith(data.STYLE_MARKER) and not plain.endswith(data.STYLE_MARKER)
        assert true.removesuffix(data.STYLE_MARKER) == " " + f["value"]
        wrong = false.removesuffix(data.STYLE_MARKER)[1:]
        assert wrong != f["value"] and wrong in micro_world.values[f["relation"]]
        if f["type"] == "contested":
            assert wrong == f["misconception"]
    _, tok, _ = micro_model
    texts = (pairs["prompt"] + pairs["chosen"]).tolist() + (pairs["prompt"] + pairs["rejected"]).tolist()
    assert not any(tok.unk_token_id in row for row in tok(texts, add_special_tokens=False)["input_ids"])
    assert pairs.equals(data.preference_pairs(micro_world, seed=0))
    assert not pairs.equals(data.preference_pairs(micro_world, seed=1))


@pytest.mark.parametrize("labeler", [data.LabelerConfig(),
                                     data.LabelerConfig(misconception_rate=0.7, style_rate=0.0, noise=0.0),
                                     data.LabelerConfig(misconception_rate=0.0, style_rate=0.5, noise=0.3)])
def test_preference_pairs_against_theory(micro_world, labeler):
    """The labelers' bias is measurable: rates of chosen truth and style match their law."""
    n_per_fact = 1500
    cfg = data.LabelerConfig(labeler.misconception_rate, labeler.style_rate, labeler.noise, n_per_fact)
    contested = micro_world.facts[micro_world.facts["type"] == "contested"]
    other = micro_world.facts[micro_world.facts["type"] != "contested"].head(4)
    for facts, is_contested in ((contested, True), (other, False)):
        p = data.preference_pairs(micro_world, cfg, facts=facts, seed=1)
        assert len(p) == len(facts) * n_per_fact
        k = int(p["chosen_true"].sum())
        assert stats.binomtest(k, len(p), cfg.p_chosen_true(is_contested)).pvalue > 1e-3
        k = int(p["style_chosen"].sum())
        assert stats.binomtest(k, len(p), cfg.p_style_chosen()).pvalue > 1e-3
    # a labeler with neither style bias nor noise picks the misconception at exactly its rate
    if labeler.style_rate == 0 and labeler.noise == 0:
        p = data.preference_pairs(micro_world, cfg, facts=contested, seed=2)
        assert abs((~p["chosen_true"]).mean() - labeler.misconception_rate) < 4 * np.sqrt(0.21 / len(p))


def test_labeler_config_iv():
    for field, value in (("misconception_rate", 1.5), ("style_rate", -0.1), ("noise", 0.6),
                         ("pairs_per_fact", 0), ("pairs_per_fact", 2.5)):
        with pytest.raises(ValueError, match=f"LabelerConfig.{field}"):
            data.LabelerConfig(**{field: value})
    with pytest.raises(TypeError, match="config"):
        data.preference_pairs(None, config={"noise": 0.1})


# -- training -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_train_loss_falls_and_weights_change(kind, trained, micro_model):
    base, _, _ = micro_model
    model, rec = trained(kind)
    assert rec.loss_last < rec.loss_first
    assert len(rec.extra["losses"]) == rec.config["epochs"]
    after, before = model.state_dict(), base.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed
    if kind.endswith("lora"):
        # adapters merged into exactly the targeted projection weights; embeddings, norms, biases as they were
        targets = {k for k in before if k.endswith(".weight") and k.split(".")[-2] in trainer.GPT2_LORA_TARGETS}
        assert changed == targets
    assert type(model) is type(base) and not model.training and "forward" not in vars(model)


@pytest.mark.parametrize("kind", KINDS)
def test_record_against_theory(kind, trained, micro_model, demos, pairs, tmp_path):
    """Complete record; tokens are the non-padding tokens fed to training (with eos), FLOPs 6·N·D."""
    base, tok, _ = micro_model
    model, rec = trained(kind)
    cfg = _config(kind)
    assert isinstance(rec, InterventionRecord) and rec.method == kind and rec.seed == 0

    def length(texts):
        return sum(len(ids) + 1 for ids in tok(list(texts), add_special_tokens=False)["input_ids"])  # + eos

    if kind.startswith("sft"):
        tokens, n_rows = cfg.epochs * length(demos["prompt"] + demos["completion"]), len(demos)
        assert rec.inference_tokens == 0 and rec.inference_flops == 0
    else:
        both = length(pairs["prompt"] + pairs["chosen"]) + length(pairs["prompt"] + pairs["rejected"])
        tokens, n_rows = cfg.epochs * both, len(pairs)
        assert rec.inference_tokens == tokens                   # the reference model's forward passes
        assert rec.inference_flops == pytest.approx(2 * n_params(base) * tokens)
    assert rec.tokens == tokens == rec.extra["num_tokens_logged"]
    assert rec.n_params == n_params(base) == n_params(model)
    assert rec.train_flops == pytest.approx(6 * rec.n_params * tokens)
    assert rec.steps == cfg.epochs * int(np.ceil(n_rows / cfg.batch_size))
    if kind.endswith("lora"):
        # A (r × in) and B (out × r) per projection: c_attn d→3d, attn c_proj d→d, c_fc d→4d,
        # mlp c_proj 4d→d
        d, r = base.config.n_embd, cfg.peft.r
        assert rec.trainable_params == base.config.n_layer * r * (4 * d + 2 * d + 5 * d + 5 * d)
        assert rec.config["peft"]["target_modules"] == sorted(trainer.GPT2_LORA_TARGETS)
    else:
        assert rec.trainable_params == sum(p.numel() for p in base.parameters())
        assert rec.config["peft"] is None
    assert rec.wall_time > 0 and np.isfinite([rec.loss_first, rec.loss_last]).all()
    assert rec.config == json.loads(json.dumps(rec.config)) and rec.config["lr"] == cfg.lr
    assert InterventionRecord.load(rec.save(tmp_path / "record.json")) == rec


@pytest.mark.parametrize("kind", KINDS)
def test_train_deterministic(kind, trained, micro_model, demos, pairs):
    """Same seed, same weights; the caller's random state is left alone; the input is untouched."""
    base, tok, _ = micro_model
    a, rec_a = trained(kind)
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    mod, d = (sft, demos) if kind.startswith("sft") else (dpo, pairs)
    b, rec_b = mod.run(base, tok, d, _config(kind), seed=0)
    assert torch.equal(torch.rand(3), expected)
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert rec_a.extra["losses"] == rec_b.extra["losses"]


def test_different_seed_differs(trained):
    a, _ = trained("sft-lora", 0)
    b, _ = trained("sft-lora", 1)
    sa, sb = a.state_dict(), b.state_dict()
    assert not all(torch.equal(sa[k], sb[k]) for k in sa)


def test_input_not_mutated(trained, micro_model, base_snapshot):
    for kind in KINDS:
        trained(kind)
    base, tok, _ = micro_model
    state, config, tok_state = base_snapshot
    now = base.state_dict()
    assert all(torch.equal(state[k], now[k]) for k in state)
    assert base.config.to_dict() == config and "forward" not in vars(base)
    assert all(p.requires_grad for p in base.parameters())
    assert (len(tok), tok.pad_token, tok.eos_token, tok.padding_side) == tok_state


def test_sft_raises_true_answer_probability(trained, micro_world, micro_model):
    """After SFT on QA demonstrations, the true answer is likelier under the QA prompt."""
    base, tok, _ = micro_model
    model, _ = trained("sft")
    train = micro_world.facts[micro_world.facts["split"] == "train"]
    prompts = micro_world.prompts("qa", train)
    answers = [[" " + t] for t in prompts["target"]]
    before = score(base, tok, prompts["prompt"], answers)["logp"].to_numpy()
    after = score(model, tok, prompts["prompt"], answers)["logp"].to_numpy()
    assert after.mean() > before.mean() + 0.2
    assert (after > before).mean() > 0.6


def test_dpo_widens_preference_margin(trained, micro_model, pairs):
    """DPO raises log P(chosen) − log P(rejected) over the pairs, measured by the scorer."""
    from dint.scoring import loglikelihood

    base, tok, _ = micro_model
    model, rec = trained("dpo")

    def margin(m):
        chosen = loglikelihood(m, tok, list(zip(pairs["prompt"], pairs["chosen"])))
        rejected = loglikelihood(m, tok, list(zip(pairs["prompt"], pairs["rejected"])))
        return (chosen - rejected).mean()

    assert margin(model) > margin(base) and rec.extra["reward_accuracy"] > 0.5


def test_dpo_learns_to_stop(trained, micro_world, micro_model, pairs):
    """Both answers of a pair end with the eos that ends SFT's demonstrations, and DPO's NLL term on the chosen
    answer teaches it: DPO's greedy answers stop right after the answer far more often than with the
    preference loss alone, which cannot teach what both answers share."""
    from dint.tokens import token_shift

    base, tok, _ = micro_model
    # the stop the SFT data and the pairs end with: TRL appends the tokenizer's eos to each
    assert tok.eos_token == "<eos>" and not any(a.endswith(tok.eos_token) for a in pairs["chosen"])
    prompts = micro_world.prompts("qa", micro_world.facts[micro_world.facts["split"] == "train"])

    def stops(model):
        res = token_shift(model, base, tok, prompts["prompt"],
                          answers=[[" " + c for c in cs] for cs in prompts["candidates"]],
                          closings=(data.STYLE_MARKER,), max_new_tokens=4, n_resamples=100)
        return res.items["stops_after_answer"].mean()

    with_nll, _ = trained("dpo")
    assert _config("dpo").sft_weight > 0
    alone, _ = dpo.run(base, tok, pairs, replace(_config("dpo"), sft_weight=0.0), seed=0)
    assert stops(with_nll) >= 0.8 and stops(with_nll) > stops(alone) + 0.2


def test_configs_iv():
    cases = [(sft.SFTConfig, "epochs", 0), (sft.SFTConfig, "lr", 0.0), (sft.SFTConfig, "batch_size", 1.5),
             (sft.SFTConfig, "warmup", 1.0), (sft.SFTConfig, "scheduler", "zigzag"),
             (sft.SFTConfig, "peft", {"r": 4}), (sft.SFTConfig, "threads", -1),
             (dpo.DPOConfig, "beta", 0.0), (dpo.DPOConfig, "loss_type", "kto"),
             (dpo.DPOConfig, "max_length", 1), (dpo.DPOConfig, "sft_weight", -0.1),
             (dpo.DPOConfig, "sft_weight", float("nan"))]
    for cls, field, value in cases:
        with pytest.raises(ValueError, match=f"{cls.__name__}.{field}"):
            cls(**{field: value})


@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")  # peft vs transformers 5
def test_run_iv(micro_model, demos, pairs):
    model, tok, _ = micro_model
    with pytest.raises(ValueError, match="completion"):
        sft.run(model, tok, demos.drop(columns="completion"))
    with pytest.raises(ValueError, match="vocabulary"):
        sft.run(model, tok, pd.DataFrame({"prompt": ["Q : who ? A :"], "completion": [" zzzunknown"]}))
    with pytest.raises(TypeError, match="SFTConfig"):
        sft.run(model, tok, demos, dpo.DPOConfig())
    with pytest.raises(TypeError, match="PEFT"):
        sft.run(peft.get_peft_model(copy.deepcopy(model), trainer.gpt2_lora()), tok, demos)
    with pytest.raises(ValueError, match="rejected"):
        dpo.run(model, tok, pairs.drop(columns="rejected"))
    with pytest.raises(ValueError, match="empty"):
        dpo.run(model, tok, pairs.iloc[:0])


def test_lora_config_for_linear_layers():
    """LoRA for models of nn.Linear projections (Gemma, Llama): named modules, no transposed weights."""
    c = trainer.gpt2_lora(r=4, target_modules=("q_proj", "v_proj"), fan_in_fan_out=False)
    assert c.r == 4 and set(c.target_modules) == {"q_proj", "v_proj"} and c.fan_in_fan_out is False
    assert trainer.gpt2_lora().fan_in_fan_out is True
