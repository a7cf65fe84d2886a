import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session", autouse=True)
def _results_in_tmp(tmp_path_factory):
    """Send every result and figure the tests make to a temporary folder, not the checkout."""
    base = tmp_path_factory.mktemp("dint-out")
    old = {k: os.environ.get(k) for k in ("DINT_RESULTS", "DINT_FIGURES")}
    os.environ["DINT_RESULTS"] = str(base / "results")
    os.environ["DINT_FIGURES"] = str(base / "figures")
    yield base
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def micro_world():
    from dint.world import WorldConfig, build

    return build(WorldConfig(n_entities=16, max_mentions=30, frequent_min=5), seed=3)


@pytest.fixture(scope="session")
def micro_model(micro_world):
    """A word-level GPT-2 pretrained for a few epochs on the micro world's corpus."""
    from dint.models import BaseModelConfig, pretrain, word_tokenizer

    tok = word_tokenizer(micro_world.vocabulary())
    cfg = BaseModelConfig(n_layer=2, n_head=2, n_embd=32, epochs=4, batch_size=32, lr=3e-3, threads=1)
    model, record = pretrain(list(micro_world.corpus), tok, cfg, seed=0, progress=False)
    return model, tok, record
