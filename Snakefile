# The paper's pipeline: shared artifacts are built once, then each claim notebook runs on them.
#   snakemake --cores 2 --config profile=tiny
# A rerun redoes only what changed: code (inputs), the profile's sections (params) or a notebook.
# Floating-point results depend on the thread count, and a job run by the pipeline must give the
# numbers the same notebook gives in JupyterLab. Pretraining uses all the cores it is given
# (Snakemake sets OMP_NUM_THREADS from `threads`). Everything else runs on one thread, two jobs
# side by side on a 2-core machine: training, scoring and every torch call in the notebooks pin the
# profile's thread count (interventions.threads), and the rest of a notebook is statistics whose
# numbers do not depend on it.
import glob
import json
import shutil

from dint import stacks
from dint.config import load_profile, notebook_parameters
from dint.interventions.plan import EXPERIMENT_FIELDS

PROFILE = config.get("profile", "tiny")
P = load_profile(PROFILE)  # an unknown profile or bad parameter stops here, before any work
SECTIONS = P.asdict()
R = f"results/{PROFILE}"
F = f"figures/{PROFILE}"
NOTEBOOKS = ["00_base_model", "01_mechanism", "02_engineering_clues", "03_diagnosability", "04_trust_reliability",
             "05_compound_failure", "06_resources", "07_verification"]
# torch threads of a training or scoring job: the profile's interventions.threads (1 on tiny: two jobs side by side)
JOB_THREADS = max(1, P.interventions.threads)
INTERVENTIONS = ["sft", "sft_lora", "sft_sham", "dpo", "dpo_lora", "reward", "rlhf", "rag"]
ANSWERING = [n for n in INTERVENTIONS if n != "reward"]
INTERVENTION_CODE = ["dint/interventions/" + f for f in ("data.py", "sft.py", "dpo.py", "reward.py", "rl.py", "rag.py",
                                                          "retrieval.py", "plan.py", "record.py", "session.py")]


def section(*names, grids=()):
    """A rule's configuration (its params): a rule reruns when it changes. The interventions section
    counts without the experiment grids a rule does not use (`plan.EXPERIMENT_FIELDS`)."""
    d = {n: SECTIONS[n] for n in names}
    if "interventions" in d:
        d["interventions"] = {k: v for k, v in d["interventions"].items() if k not in EXPERIMENT_FIELDS or k in grids}
    return json.dumps({"seed": P.seed, **d}, sort_keys=True)


# The paper is built where TeX is installed (`latexmk`); elsewhere the pipeline stops at the macros
# and `make paper` says how to install TeX.
HAVE_TEX = shutil.which("latexmk") is not None
# Replications of the validity study in the paper's appendix (`dint validate` defaults to 2000): the table
# gives each estimate's Monte-Carlo standard error.
VALIDITY_REPLICATIONS = {"smoke": 200, "real-smoke": 200, "tiny": 1000, "real": 400}.get(PROFILE, 2000)


# Real profiles also characterise a second real model on the same facts: SmolLM2-135M-Instruct's distribution
# card, calibration and verification (`dint card smollm`), quoted by the paper through the macros.
CARDS = ["smollm"] if P.real else []


# Jobs start longest chain first: SFT and the reward model, then RLHF (from both) and DPO, then the
# jobs they feed (the stacks, the RL sweep), then the long jobs that nothing trained waits for (the
# validity study, the training curve); the notebooks and the other interventions fill the gaps. On a
# real profile RL is the slowest job; on the tiny profile the stacks that start from SFT and DPO are.
# The world and the base model come first of all: they take every core, and a job started beside them
# would hold them back.
# Of the notebooks, the longest (05, 01) start first, so that the last two jobs end together.
PRIORITY = {"world": 50, "base": 50, "sft": 40, "reward": 40, "rlhf": 30, "dpo": 30, "stacks": 20, "rl_sweep": 20,
            "validity": 10, "training_curve": 10, "reward_scores": 10, "notebook_05": 5, "notebook_01": 5}


rule all:
    input:
        expand(f"{R}/{{nb}}/numbers.json", nb=NOTEBOOKS),
        expand(f"{R}/card_{{model}}/numbers.json", model=CARDS),
        expand(f"{F}/{{nb}}.{{ext}}", nb=NOTEBOOKS, ext=["pdf", "png"]),
        f"{R}/macros.tex",
        f"{R}/validity/validity.tex",
        [f"{R}/paper/dint.pdf"] if HAVE_TEX else [],


rule world:
    threads: workflow.cores
    priority: PRIORITY["world"]
    input: "dint/realworld.py" if P.real else "dint/world.py"
    output: f"{R}/world/manifest.json"
    params: cfg=section("world")
    shell: "python -m dint build world --profile {PROFILE}"


rule base_model:
    threads: workflow.cores
    priority: PRIORITY["base"]
    input: "dint/models.py", rules.world.output
    output: f"{R}/models/base/manifest.json"
    params: cfg=section("world", "base")
    shell: "python -m dint build base --profile {PROFILE}"


rule base_scores:
    threads: JOB_THREADS
    input: "dint/scoring.py", "dint/artifacts.py", rules.base_model.output
    output: f"{R}/scores/base/manifest.json"
    params: cfg=section("world", "base", "scoring")
    shell: "python -m dint build scores --profile {PROFILE}"


# Training and scoring use the profile's fixed torch thread count (interventions.threads, 1), so two
# jobs run side by side on a 2-core machine and give the same numbers wherever they run. An
# intervention's job trains it and scores it on every fact in one process.


rule intervention:
    threads: JOB_THREADS
    priority: lambda w: PRIORITY.get(w.name, 0)
    input:
        INTERVENTION_CODE, "dint/artifacts.py", "dint/scoring.py", rules.base_model.output,
        lambda w: [f"{R}/models/{n}/manifest.json" for n in (("sft", "reward") if w.name == "rlhf" else ())],
    output:
        model=f"{R}/models/{{name}}/manifest.json",
        scores=f"{R}/scores/{{name}}/manifest.json",
    wildcard_constraints: name="|".join(ANSWERING)
    params: cfg=section("world", "base", "scoring", "interventions")
    shell: "python -m dint build intervention {wildcards.name} --profile {PROFILE}"


# Stacked interventions (dint.stacks): each stack is trained from its cached prefix and scored. Stacks that
# are single interventions of the plan (sft, dpo, rag, sft+rl = rlhf) come from the rule above; the others
# are built by family, the stacks that share a first step in one job (prefixes first): a job's imports of
# torch, transformers, PEFT and TRL take about 15 s, longer than training a stack on the tiny profile.
STACKS = [stacks.name(s) for s in stacks.PLAN + stacks.ORDERS]
TRAINED_STACKS = sorted((n for n in STACKS if stacks.parse(n) and stacks.parse(n) not in stacks.ALIASES),
                        key=lambda n: len(stacks.parse(n)))
FAMILIES = {first: [n for n in TRAINED_STACKS if stacks.parse(n)[0] == first]
            for first in dict.fromkeys(stacks.parse(n)[0] for n in TRAINED_STACKS)}


def stack_start(name):
    """The manifest of the model a stack's last step starts from (its prefix)."""
    steps = stacks.prefix(name)
    if not steps:
        return rules.base_model.output[0]
    if steps in stacks.ALIASES:
        return f"{R}/models/{stacks.ALIASES[steps]}/manifest.json"
    return f"{R}/stacks/{stacks.name(steps)}/manifest.json"


for first, members in FAMILIES.items():
    rule:
        name: f"stacks_{first}"
        threads: JOB_THREADS
        priority: PRIORITY["stacks"]
        input:
            INTERVENTION_CODE, "dint/stacks.py", "dint/artifacts.py", "dint/scoring.py",
            sorted({stack_start(n) for n in members} - {f"{R}/stacks/{n}/manifest.json" for n in members}),
            [f"{R}/models/reward/manifest.json"] if any("rl" in stacks.parse(n) for n in members) else [],
        output:
            [f"{R}/stacks/{n}/manifest.json" for n in members],
            [f"{R}/scores/stacks/{n}/manifest.json" for n in members],
        params: cfg=section("world", "base", "scoring", "interventions"), names=" ".join(members)
        shell: "python -m dint build stack {params.names} --profile " + PROFILE


rule reward_model:
    threads: JOB_THREADS
    priority: PRIORITY["reward"]
    input: INTERVENTION_CODE, "dint/artifacts.py", rules.base_model.output
    output: f"{R}/models/reward/manifest.json"
    params: cfg=section("world", "base", "interventions")
    shell: "python -m dint build intervention reward --profile {PROFILE}"


rule rl_sweep:
    threads: JOB_THREADS
    priority: PRIORITY["rl_sweep"]
    input:
        "dint/experiments.py", INTERVENTION_CODE, f"{R}/models/sft/manifest.json", f"{R}/models/reward/manifest.json",
        f"{R}/models/rlhf/manifest.json",   # the run at the profile's own beta
    output: f"{R}/rl_sweep/manifest.json"
    params: cfg=section("world", "base", "interventions", grids=("rl_betas",))
    shell: "python -m dint build rl-sweep --profile {PROFILE}"


# The proxy reward of every candidate answer in a prompt form (`experiments.reward_table`), scored once for the
# notebooks that select or verify by it (01, 02 and 07, in the form 07 evaluates).
VERIFY_FORM = notebook_parameters(PROFILE, "07_verification").get("form", "qa")
REWARD_FORMS = sorted({"qa", VERIFY_FORM})


rule reward_scores:
    threads: JOB_THREADS
    priority: PRIORITY["reward_scores"]
    input: "dint/experiments.py", INTERVENTION_CODE, rules.world.output, f"{R}/models/reward/manifest.json"
    output: f"{R}/reward_scores/{{form}}/manifest.json"
    wildcard_constraints: form="|".join(REWARD_FORMS)
    params: cfg=section("world", "base", "interventions")
    shell: "python -m dint build reward-scores {wildcards.form} --profile {PROFILE}"


rule training_curve:
    threads: JOB_THREADS
    priority: PRIORITY["training_curve"]
    input: "dint/resources.py", INTERVENTION_CODE, "dint/artifacts.py", "dint/scoring.py", rules.base_model.output
    output: f"{R}/training_curve/manifest.json"
    params: cfg=section("world", "base", "scoring", "interventions", grids=("sft_epochs", "sft_data"))
    shell: "python -m dint build training-curve --profile {PROFILE}"


PLOT_CODE = sorted(glob.glob("dint/plot/*.py"))
STATS_CODE = ["dint/stats.py", "dint/resampling.py", "dint/proportions.py", *PLOT_CODE, "dint/report.py"]
ANSWERING_SCORES = expand(f"{R}/scores/{{name}}/manifest.json", name=ANSWERING)
STACK_SCORES = [stacks.manifest_path(P, s).replace(str(stacks.artifacts.root(P)), R)
                for s in stacks.plan(P) + stacks.orders(P)]


rule notebook_00:
    threads: 1
    input: "notebooks/00_base_model.ipynb", "dint/reference.py", "dint/stats.py", PLOT_CODE, rules.base_scores.output
    output:
        numbers=f"{R}/00_base_model/numbers.json",
        executed=f"{R}/notebooks/00_base_model.ipynb",
        figures=multiext(f"{F}/00_base_model", ".pdf", ".png"),
    shell: "python -m dint run 00_base_model --profile {PROFILE}"


rule notebook_01:
    threads: 1
    priority: PRIORITY["notebook_01"]
    input:
        "notebooks/01_mechanism.ipynb", "dint/compare.py", "dint/divergence.py", "dint/stats.py", PLOT_CODE,
        "dint/interventions/bestofn.py", "dint/experiments.py", rules.base_scores.output,
        f"{R}/reward_scores/qa/manifest.json", expand(f"{R}/scores/{{name}}/manifest.json", name=ANSWERING),
    output:
        numbers=f"{R}/01_mechanism/numbers.json",
        executed=f"{R}/notebooks/01_mechanism.ipynb",
        figures=multiext(f"{F}/01_mechanism", ".pdf", ".png"),
    shell: "python -m dint run 01_mechanism --profile {PROFILE}"


rule notebook_02:
    threads: 1
    input:
        "notebooks/02_engineering_clues.ipynb", "dint/experiments.py", "dint/fits.py", "dint/reasoning.py",
        "dint/stats.py", PLOT_CODE, rules.base_scores.output, rules.rl_sweep.output,
        f"{R}/models/reward/manifest.json", f"{R}/reward_scores/qa/manifest.json",
        expand(f"{R}/scores/{{name}}/manifest.json", name=ANSWERING),
    output:
        numbers=f"{R}/02_engineering_clues/numbers.json",
        executed=f"{R}/notebooks/02_engineering_clues.ipynb",
        figures=multiext(f"{F}/02_engineering_clues", ".pdf", ".png"),
    shell: "python -m dint run 02_engineering_clues --profile {PROFILE}"


rule notebook_03:
    threads: 1
    input:
        "notebooks/03_diagnosability.ipynb", "dint/taxonomy.py", "dint/composition.py", "dint/divergence.py",
        "dint/compare.py", STATS_CODE, INTERVENTION_CODE, rules.base_scores.output, ANSWERING_SCORES,
    output:
        numbers=f"{R}/03_diagnosability/numbers.json",
        executed=f"{R}/notebooks/03_diagnosability.ipynb",
        figures=multiext(f"{F}/03_diagnosability", ".pdf", ".png"),
    shell: "python -m dint run 03_diagnosability --profile {PROFILE}"


rule notebook_04:
    threads: 1
    input:
        "notebooks/04_trust_reliability.ipynb", "dint/reliability.py", "dint/diversity.py", "dint/calibration.py",
        "dint/compare.py", STATS_CODE, rules.base_scores.output, ANSWERING_SCORES,
    output:
        numbers=f"{R}/04_trust_reliability/numbers.json",
        executed=f"{R}/notebooks/04_trust_reliability.ipynb",
        figures=multiext(f"{F}/04_trust_reliability", ".pdf", ".png"),
    shell: "python -m dint run 04_trust_reliability --profile {PROFILE}"


rule notebook_05:
    threads: 1
    priority: PRIORITY["notebook_05"]
    input:
        "notebooks/05_compound_failure.ipynb", "dint/stacks.py", "dint/fits.py", "dint/calibration.py",
        "dint/compare.py", STATS_CODE, STACK_SCORES,
    output:
        numbers=f"{R}/05_compound_failure/numbers.json",
        executed=f"{R}/notebooks/05_compound_failure.ipynb",
        figures=multiext(f"{F}/05_compound_failure", ".pdf", ".png"),
    shell: "python -m dint run 05_compound_failure --profile {PROFILE}"


rule notebook_06:
    threads: 1
    input:
        "notebooks/06_resources.ipynb", "dint/resources.py", "dint/verify.py", "dint/selection.py",
        "dint/experiments.py", STATS_CODE,
        rules.base_scores.output, rules.training_curve.output, rules.rl_sweep.output,
        f"{R}/models/reward/manifest.json", ANSWERING_SCORES,
    output:
        numbers=f"{R}/06_resources/numbers.json",
        executed=f"{R}/notebooks/06_resources.ipynb",
        figures=multiext(f"{F}/06_resources", ".pdf", ".png"),
    shell: "python -m dint run 06_resources --profile {PROFILE}"


rule notebook_07:
    threads: 1
    input:
        "notebooks/07_verification.ipynb", "dint/card.py", "dint/verify.py", "dint/calibration.py",
        "dint/experiments.py", STATS_CODE, f"{R}/reward_scores/{VERIFY_FORM}/manifest.json", ANSWERING_SCORES,
        STACK_SCORES,
    output:
        numbers=f"{R}/07_verification/numbers.json",
        executed=f"{R}/notebooks/07_verification.ipynb",
        figures=multiext(f"{F}/07_verification", ".pdf", ".png"),
    shell: "python -m dint run 07_verification --profile {PROFILE}"


rule card:
    threads: JOB_THREADS
    input: "dint/card.py", "dint/cli.py", "dint/calibration.py", "dint/scoring.py", STATS_CODE, rules.base_scores.output
    output: f"{R}/card_{{model}}/numbers.json"
    wildcard_constraints: model="|".join(CARDS) or "no-card"
    shell: "python -m dint card {wildcards.model} --profile {PROFILE}"


rule macros:
    threads: 1
    input: "dint/macros.py", expand(f"{R}/{{nb}}/numbers.json", nb=NOTEBOOKS),
           expand(f"{R}/card_{{model}}/numbers.json", model=CARDS)
    output: f"{R}/macros.tex"
    shell: "python -m dint macros --profile {PROFILE}"


rule validity:
    threads: 1
    priority: PRIORITY["validity"]
    input: "dint/validate.py", "dint/stats.py", "dint/proportions.py", "dint/calibration.py", "dint/fits.py"
    output: f"{R}/validity/validity.tex"
    shell: f"python -m dint validate --replications {VALIDITY_REPLICATIONS} --jobs {{threads}} --output {R}/validity"


rule paper:
    threads: 1
    input:
        "paper/main.tex", "paper/world.tex" if not P.real else "paper/real.tex", "paper/refs.bib", "dint/paper.py", rules.macros.output, rules.validity.output,
        expand(f"{F}/{{nb}}.pdf", nb=NOTEBOOKS),
    output: f"{R}/paper/dint.pdf"
    shell: "python -m dint paper --profile {PROFILE}"
