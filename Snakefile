# The paper's pipeline: shared artifacts are built once, then each claim notebook runs on them.
#   snakemake --cores 2 --config profile=tiny
# A rerun redoes only what changed: code (inputs), the profile's sections (params) or a notebook.
# Floating-point results depend on the thread count, and a job run by the pipeline must give the
# numbers the same notebook gives in JupyterLab. Pretraining uses the profile's base.threads (one on
# tiny and smoke; where unset, all the cores it is given: Snakemake sets OMP_NUM_THREADS from `threads`).
# Everything else runs on one thread, two jobs side by side on a 2-core machine: training, scoring and
# every torch call in the notebooks pin the profile's thread count (interventions.threads), and the rest
# of a notebook is statistics whose numbers do not depend on it.
import json
import os
import shutil
import sys

from dint.pipeline import artifacts, codegraph, notebooks, paths
from dint import format_control
from dint.analyses import budgets, replication, stacks
from dint.pipeline.config import load_profile, notebook_parameters, replication as runs_of
from dint.interventions.plan import EXPERIMENT_FIELDS

PROFILE = config.get("profile", "tiny")
# another run than the profile's own: `--config seed=1 train_seed=1` (world and training seed; its results go to
# results/<profile>/runs/w<w>-t<t>/)
SEED, TRAIN_SEED = config.get("seed"), config.get("train_seed")
try:   # an unknown profile or bad parameter stops here, before any work
    for key, value in (("seed", SEED), ("train_seed", TRAIN_SEED)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"--config {key}={value!r}: must be a non-negative integer, e.g. --config {key}=1")
    P = load_profile(PROFILE, seed=SEED, train_seed=TRAIN_SEED)
    REPLICATION = runs_of(PROFILE)
except ValueError as e:
    sys.stderr.write(f"error: {e}\n")
    sys.exit(2)
SECTIONS = P.asdict()
R = os.path.relpath(artifacts.root(P), paths.root())             # results/<profile> (other seeds: runs/w<w>-t<t>)
W = os.path.relpath(artifacts.world_root(P), paths.root())       # its world's folder, shared by the world's runs
F = os.path.relpath(artifacts.figures_root(P), paths.root())     # figures/<profile>
RUN = (f"--profile {PROFILE}" + (f" --seed {SEED}" if SEED is not None else "")
       + (f" --train-seed {TRAIN_SEED}" if TRAIN_SEED is not None else ""))
# the claim notebooks (notebook 08 on the synthetic world only: dint.pipeline.notebooks.WORLD_ONLY)
NOTEBOOKS = list(notebooks.for_profile(PROFILE))
# torch threads of a training or scoring job: the profile's interventions.threads (1 on tiny: two jobs side by side)
JOB_THREADS = max(1, P.interventions.threads)
INTERVENTIONS, ANSWERING = list(replication.interventions(P)), list(replication.answering(P))
# the profile's own methods (interventions.custom, dint.interventions.custom): trained and scored by the intervention
# rule, each with its function's source file and the dint modules it imports as code inputs
CUSTOM = list(P.interventions.custom_names)


def code(*entries, build=False):
    """The dint source files a rule's command runs: the import closure of the modules (or notebook) that
    implement it (`dint.pipeline.codegraph`, static analysis), and for a build rule the artifacts module that caches
    what it builds. A change to any of them reruns the rule; a build job then rebuilds its artifact."""
    return sorted(set(codegraph.closure(*entries)) | ({"dint/pipeline/artifacts.py"} if build else set()))


def job(command, *, build=False, profile=True, run=None):
    """A rule's shell command: its output goes to the rule's log file (the console keeps Snakemake's
    progress and dint's progress bars); a failing job prints its log's path and last lines. A build job
    runs because something it depends on changed, so it rebuilds (`--force`). ``run``: the options that
    name the run, when not the pipeline's own (`RUN`)."""
    args = (f" {run or RUN}" if profile else "") + (" --force" if build else "")
    return (f"python -m dint --log {{log}} {command}{args} || "
            "{{ s=$?; echo \"error: the job failed (exit $s); its log, {log}, ends:\" >&2; tail -n 25 {log} >&2; "
            "exit $s; }}")


def section(*names, grids=(), trained=True, custom=()):
    """A rule's configuration (its params): a rule reruns when it changes. The interventions section
    counts without the experiment grids a rule does not use (`plan.EXPERIMENT_FIELDS`) and without the profile's
    own methods (interventions.custom) other than those the rule trains (``custom``: a name or names); the training
    seed counts for what is ``trained`` from the base model (not for the world, the base model and its scores)."""
    d = {n: SECTIONS[n] for n in names}
    if "interventions" in d:
        own = d["interventions"].get("custom", {})
        chosen = [custom] if isinstance(custom, str) else list(custom)
        d["interventions"] = {k: v for k, v in d["interventions"].items()
                              if (k not in EXPERIMENT_FIELDS or k in grids) and k != "custom"}
        if any(n in own for n in chosen):
            d["interventions"]["custom"] = {n: own[n] for n in chosen if n in own}
    seeds = {"seed": P.seed, **({"train_seed": P.train_seed} if trained else {})}
    return json.dumps({**seeds, **d}, sort_keys=True)


# The paper is built where TeX is installed (`latexmk`); elsewhere the pipeline stops at the macros
# and `make paper` says how to install TeX.
HAVE_TEX = shutil.which("latexmk") is not None
# Replications of the validity study in the paper's appendix (`dint validate` defaults to 2000): the table
# gives each estimate's Monte-Carlo standard error.
VALIDITY_REPLICATIONS = {"smoke": 200, "smoke-kto": 200, "real-smoke": 200, "tiny": 1000, "tiny-kto": 1000,
                         "real": 400}.get(PROFILE, 2000)


# Real profiles also characterise a second real model on the same facts: SmolLM2-135M-Instruct's distribution
# card, calibration and verification (`dint card smollm`), quoted by the paper through the macros.
CARDS = ["smollm"] if P.real else []


# Pretraining runs on the profile's base.threads when it sets them (one job beside another on 2 cores), else on
# every core; the world is built on as many.
BASE_THREADS = (getattr(P.base, "threads", 0) or workflow.cores) if not P.real else workflow.cores


# Jobs start longest chain first: SFT and the reward model, then RLHF (from both) and DPO, then the
# jobs they feed (the stacks, the RL sweep), then the long jobs that nothing trained waits for (the
# validity study, the training curve); the notebooks and the other interventions fill the gaps. On a
# real profile RL is the slowest job; on the tiny profile the stacks that start from SFT and DPO are.
# The world and the base model come first of all: everything else of their run waits for them.
# Of the notebooks, the longest (05, 01) start first, so that the last two jobs end together.
PRIORITY = {"world": 50, "base": 50, "sft": 40, "reward": 40, "rlhf": 30, "dpo": 30, "stacks": 20, "rl_sweep": 20,
            "installation": 20, "validity": 10, "training_curve": 10, "reward_scores": 10, "notebook_05": 5,
            "notebook_01": 5}


# The replication (config/<profile>.yaml replication: world seeds × training seeds): the profile's own run is the
# run above; every other run trains and scores everything in one job (`dint build run`: the imports of torch,
# transformers, PEFT and TRL once, not once per artifact) and runs the eight notebooks in one process
# (`dint execute`), in results/<profile>/runs/w<w>-t<t>/; a world's base model is pretrained once for its runs
# (results/<profile>/runs/w<w>/). `dint replication` pools them. Only the profile's own run has replication runs;
# a run at other seeds (--config seed=...) is one run.
# (a profile without a replication section, or a run at other seeds, is its one run, judged and quoted the same way)
REPLICATED = SEED is None and TRAIN_SEED is None
OTHER_RUNS = [(w, t) for w, t in REPLICATION.runs() if (w, t) != (P.seed, P.train_seed)] if REPLICATED else []
RUNS_DIR = f"{R}/runs"
REPLICATION_OUT = f"{R}/replication/claims.parquet"
REPLICATION_NUMBERS = f"{R}/replication/numbers.json"   # the replication's numbers the paper quotes (macros)
# the format control's replication (paper/claims.yaml format_control), built by its own `make replicate` (`make
# reproduce` runs it first): the paper compares with it when it is there and says so when it is not
CONTROL = format_control.control_of(PROFILE)
CONTROL_RUNS = [p for p in [f"results/{CONTROL}/replication/claims.parquet"] if CONTROL and os.path.exists(p)]


def run_folder(w, t):
    """A replication run's results folder."""
    return os.path.relpath(artifacts.root(load_profile(PROFILE, seed=int(w), train_seed=int(t))), paths.root())


def world_scores(w):
    """The manifest of a world's base scores, the last of its world's artifacts."""
    return os.path.relpath(artifacts.scores_dir(load_profile(PROFILE, seed=int(w))), paths.root()) + "/manifest.json"


rule all:
    input:
        REPLICATION_OUT,
        expand(f"{R}/{{nb}}/numbers.json", nb=NOTEBOOKS),
        expand(f"{R}/card_{{model}}/numbers.json", model=CARDS),
        expand(f"{F}/{{nb}}.{{ext}}", nb=NOTEBOOKS, ext=["pdf", "png"]),
        f"{R}/macros.tex",
        f"{R}/validity/validity.tex",
        [f"{R}/paper/dint.pdf"] if HAVE_TEX else [],


# Each job's output goes to results/<profile>/logs/<job>.log, its wall time and memory to
# results/<profile>/timings/<job>.tsv (Snakemake's benchmark file; `dint timings` tabulates them).


rule world:
    threads: BASE_THREADS
    priority: PRIORITY["world"]
    input: code("dint.realworld" if P.real else "dint.world", build=True)
    output: f"{W}/world/manifest.json"
    log: f"{R}/logs/world.log"
    benchmark: f"{R}/timings/world.tsv"
    params: cfg=section("world", trained=False)
    shell: job("build world", build=True)


rule base_model:
    threads: BASE_THREADS
    priority: PRIORITY["base"]
    input: code("dint.models", build=True), rules.world.output
    output: f"{W}/models/base/manifest.json"
    log: f"{R}/logs/base_model.log"
    benchmark: f"{R}/timings/base_model.tsv"
    params: cfg=section("world", "base", trained=False)
    shell: job("build base", build=True)


rule base_scores:
    threads: JOB_THREADS
    input: code("dint.scoring", build=True), rules.base_model.output
    output: f"{W}/scores/base/manifest.json"
    log: f"{R}/logs/base_scores.log"
    benchmark: f"{R}/timings/base_scores.tsv"
    params: cfg=section("world", "base", "scoring", trained=False)
    shell: job("build scores", build=True)


# Training and scoring use the profile's fixed torch thread count (interventions.threads, 1), so two
# jobs run side by side on a 2-core machine and give the numbers a notebook run gives on the same machine. An
# intervention's job trains it and scores it on every fact in one process.
INTERVENTION_CODE = code("dint.interventions.plan", "dint.interventions.rag", "dint.scoring", build=True)


def custom_code(*names):
    """The code inputs of the profile's own methods ``names``: each function's source file and the dint modules it
    imports (none for the built-in interventions)."""
    files = [str(f) for f in (P.interventions.method(n).source() for n in names if n in CUSTOM) if f is not None]
    return code(*files) if files else []


rule intervention:
    threads: JOB_THREADS
    priority: lambda w: PRIORITY.get(w.name, 0)
    input:
        INTERVENTION_CODE, rules.base_model.output,
        lambda w: [f"{R}/models/{n}/manifest.json" for n in (("sft", "reward") if w.name == "rlhf" else ())],
        lambda w: custom_code(w.name),
    output:
        model=f"{R}/models/{{name}}/manifest.json",
        scores=f"{R}/scores/{{name}}/manifest.json",
    log: f"{R}/logs/intervention_{{name}}.log"
    benchmark: f"{R}/timings/intervention_{{name}}.tsv"
    wildcard_constraints: name="|".join(ANSWERING)
    params: cfg=lambda w: section("world", "base", "scoring", "interventions", custom=w.name)
    shell: job("build intervention {wildcards.name}", build=True)


# Stacked interventions (dint.analyses.stacks): each stack of the profile's plan is trained from its cached prefix and
# scored. Stacks that are single interventions of the plan (sft, dpo, rag, sft+rl = rlhf) come from the rule
# above; the others are built by family, the stacks that share a first step in one job (prefixes first): a
# job's imports of torch, transformers, PEFT and TRL take about 15 s, longer than training a stack on the tiny
# profile.
TRAINED_STACKS = replication.trained_stacks(P)
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
            code("dint.analyses.stacks", "dint.interventions.plan", "dint.interventions.rag", build=True),
            sorted({stack_start(n) for n in members} - {f"{R}/stacks/{n}/manifest.json" for n in members}),
            [f"{R}/models/reward/manifest.json"] if any("rl" in stacks.parse(n) for n in members) else [],
        output:
            [f"{R}/stacks/{n}/manifest.json" for n in members],
            [f"{R}/scores/stacks/{n}/manifest.json" for n in members],
        log: f"{R}/logs/stacks_{first}.log"
        benchmark: f"{R}/timings/stacks_{first}.tsv"
        # a rule's shell expression is evaluated when its job runs, after the loop: what varies goes through params
        params: cfg=section("world", "base", "scoring", "interventions"), names=" ".join(members)
        shell: job("build stack {params.names}", build=True)


rule reward_model:
    threads: JOB_THREADS
    priority: PRIORITY["reward"]
    input: INTERVENTION_CODE, rules.base_model.output
    output: f"{R}/models/reward/manifest.json"
    log: f"{R}/logs/reward_model.log"
    benchmark: f"{R}/timings/reward_model.tsv"
    params: cfg=section("world", "base", "interventions")
    shell: job("build intervention reward", build=True)


rule rl_sweep:
    threads: JOB_THREADS
    priority: PRIORITY["rl_sweep"]
    input:
        code("dint.analyses.experiments", build=True), f"{R}/models/sft/manifest.json", f"{R}/models/reward/manifest.json",
        f"{R}/models/rlhf/manifest.json",   # the run at the profile's own beta
    output: f"{R}/rl_sweep/manifest.json"
    log: f"{R}/logs/rl_sweep.log"
    benchmark: f"{R}/timings/rl_sweep.tsv"
    params: cfg=section("world", "base", "interventions", grids=("rl_betas",))
    shell: job("build rl-sweep", build=True)


# Proxies that start aligned (`experiments.aligned_sweep`): reward models trained on gold-labelled pairs of nested
# shares of the train facts, and RL from the SFT model against each, evaluated prompt by prompt (notebook 02).
rule aligned_sweep:
    threads: JOB_THREADS
    priority: PRIORITY["rl_sweep"]
    input:
        code("dint.analyses.experiments", "dint.interventions.rl", "dint.interventions.reward", "dint.interventions.data",
             build=True),
        rules.base_model.output, f"{R}/models/sft/manifest.json",
    output: f"{R}/aligned/manifest.json"
    log: f"{R}/logs/aligned_sweep.log"
    benchmark: f"{R}/timings/aligned_sweep.tsv"
    params: cfg=section("world", "base", "interventions", grids=("rl_betas", "aligned"))
    shell: job("build aligned", build=True)


# The proxy reward of every candidate answer in a prompt form (`experiments.reward_table`), scored once for the
# notebooks that select or verify by it (01, 02 and 07, in the form 07 evaluates).
REWARD_FORMS = replication.reward_forms(PROFILE)
VERIFY_FORM = notebook_parameters(PROFILE, "07_verification").get("form", "qa")


rule reward_scores:
    threads: JOB_THREADS
    priority: PRIORITY["reward_scores"]
    input: code("dint.analyses.experiments", build=True), rules.world.output, f"{R}/models/reward/manifest.json"
    output: f"{R}/reward_scores/{{form}}/manifest.json"
    log: f"{R}/logs/reward_scores_{{form}}.log"
    benchmark: f"{R}/timings/reward_scores_{{form}}.tsv"
    wildcard_constraints: form="|".join(REWARD_FORMS)
    params: cfg=section("world", "base", "interventions")
    shell: job("build reward-scores {wildcards.form}", build=True)


rule training_curve:
    threads: JOB_THREADS
    priority: PRIORITY["training_curve"]
    input: code("dint.analyses.sft_grid", build=True), rules.base_model.output
    output: f"{R}/training_curve/manifest.json"
    log: f"{R}/logs/training_curve.log"
    benchmark: f"{R}/timings/training_curve.tsv"
    params: cfg=section("world", "base", "scoring", "interventions", grids=("sft_epochs", "sft_data"))
    shell: job("build training-curve", build=True)


# LoRA against full SFT (`dint.analyses.lora_sweep`): both trained from the base at several learning rates (notebook
# 05); a world profile's only: the real profile is not swept.
rule lora_sweep:
    threads: JOB_THREADS
    priority: PRIORITY["training_curve"]
    input: code("dint.analyses.lora_sweep", build=True), rules.base_scores.output
    output: f"{R}/lora_sweep/manifest.json"
    log: f"{R}/logs/lora_sweep.log"
    benchmark: f"{R}/timings/lora_sweep.tsv"
    params: cfg=section("world", "base", "scoring", "interventions")
    shell: job("build lora-sweep", build=True)


# Notebook 08's grid (dint.analyses.budgets): SFT and DPO at several budgets, RL from the SFT model at several,
# each scored in five prompt forms; the profile's own sft, dpo and rlhf are points of it. Its budgets are the
# notebook's parameters (the profile's notebooks section may set them): a change reruns it.
INSTALLATION_GRID = json.dumps(budgets.budgets(PROFILE), sort_keys=True) if "08_installation" in NOTEBOOKS else ""
INSTALLATION_CODE = code("dint.analyses.budgets", build=True)


rule installation:
    threads: JOB_THREADS
    priority: PRIORITY["installation"]
    input:
        INSTALLATION_CODE, rules.base_scores.output,
        [f"{R}/models/{n}/manifest.json" for n in ("sft", "dpo", "reward", "rlhf")],
        [f"{R}/scores/{n}/manifest.json" for n in ("sft", "dpo", "rlhf")],
    output: f"{R}/installation/manifest.json"
    log: f"{R}/logs/installation.log"
    benchmark: f"{R}/timings/installation.tsv"
    params: cfg=section("world", "base", "scoring", "interventions"), grid=INSTALLATION_GRID
    shell: job("build installation", build=True)


# Each notebook's code inputs are what it imports from dint and everything those modules import
# (`dint.pipeline.codegraph`); its data inputs are the artifacts it loads.
ANSWERING_SCORES = expand(f"{R}/scores/{{name}}/manifest.json", name=ANSWERING)
STACK_SCORES = [os.path.relpath(stacks.manifest_path(P, s), paths.root()) for s in stacks.plan(P) + stacks.orders(P)]
CUSTOM_SCORES = expand(f"{R}/scores/{{name}}/manifest.json", name=CUSTOM)   # notebook 05 shows them beside the stacks
BASE_SCORES = rules.base_scores.output
NOTEBOOK_DATA = {
    "00_base_model": [BASE_SCORES],
    "01_mechanism": [BASE_SCORES, f"{R}/reward_scores/qa/manifest.json", ANSWERING_SCORES],
    "02_engineering_clues": [BASE_SCORES, rules.rl_sweep.output, rules.aligned_sweep.output, f"{R}/models/reward/manifest.json",
                             f"{R}/reward_scores/qa/manifest.json", ANSWERING_SCORES],
    "03_diagnosability": [BASE_SCORES, ANSWERING_SCORES],
    "04_trust_reliability": [BASE_SCORES, rules.rl_sweep.output, ANSWERING_SCORES],
    "05_compound_failure": [STACK_SCORES, CUSTOM_SCORES] + ([] if P.real else [rules.lora_sweep.output]),
    "06_resources": [BASE_SCORES, rules.training_curve.output, rules.rl_sweep.output,
                     f"{R}/models/reward/manifest.json", ANSWERING_SCORES],
    "07_verification": [f"{R}/reward_scores/{VERIFY_FORM}/manifest.json", ANSWERING_SCORES, STACK_SCORES],
    "08_installation": [rules.installation.output],
}
# The longest notebooks (05, 01) start first, so that the last two jobs end together.
NOTEBOOK_PRIORITY = {"05_compound_failure": PRIORITY["notebook_05"], "01_mechanism": PRIORITY["notebook_01"]}


for nb in NOTEBOOKS:
    rule:
        name: f"notebook_{nb[:2]}"
        threads: 1
        priority: NOTEBOOK_PRIORITY.get(nb, 0)
        input: code(f"notebooks/{nb}.ipynb"), NOTEBOOK_DATA[nb]
        output:
            numbers=f"{R}/{nb}/numbers.json",
            executed=f"{R}/notebooks/{nb}.ipynb",
            figures=multiext(f"{F}/{nb}", ".pdf", ".png"),
        log: f"{R}/logs/notebook_{nb}.log"
        benchmark: f"{R}/timings/notebook_{nb}.tsv"
        params: notebook=nb
        shell: job("run {params.notebook}")


rule card:
    threads: JOB_THREADS
    input: code("dint.card", "dint.pipeline.report", "dint.models", "dint.scoring", build=True), rules.base_scores.output
    output: f"{R}/card_{{model}}/numbers.json"
    log: f"{R}/logs/card_{{model}}.log"
    benchmark: f"{R}/timings/card_{{model}}.tsv"
    wildcard_constraints: model="|".join(CARDS) or "no-card"
    shell: job("card {wildcards.model}")


rule macros:
    threads: 1
    input: code("dint.pipeline.macros"), expand(f"{R}/{{nb}}/numbers.json", nb=NOTEBOOKS),
           expand(f"{R}/card_{{model}}/numbers.json", model=CARDS), REPLICATION_NUMBERS
    output: f"{R}/macros.tex"
    log: f"{R}/logs/macros.log"
    benchmark: f"{R}/timings/macros.tsv"
    shell: job("macros")


rule validity:
    threads: 1
    priority: PRIORITY["validity"]
    input: code("dint.analyses.validity")
    output: f"{R}/validity/validity.tex"
    log: f"{R}/logs/validity.log"
    benchmark: f"{R}/timings/validity.tsv"
    shell: job(f"validate --replications {VALIDITY_REPLICATIONS} --jobs {{threads}} --output {R}/validity", profile=False)


# a world's three artifacts, each rebuilt (what changed may be any of them), their logs side by side
RUN_WORLD = " && ".join(job(f"build {a}", build=True, run="{params.run}").replace("{log}", "{log}" + suffix)
                        for a, suffix in (("world", ""), ("base", ".base"), ("scores", ".scores")))


rule run_world:
    threads: BASE_THREADS
    priority: PRIORITY["world"]
    input: code("dint.realworld" if P.real else "dint.world", "dint.models", "dint.scoring", build=True)
    output: f"{RUNS_DIR}/w{{w}}/scores/base/manifest.json"
    log: f"{RUNS_DIR}/w{{w}}/logs/world.log"
    benchmark: f"{RUNS_DIR}/w{{w}}/timings/world.tsv"
    wildcard_constraints: w=r"\d+"
    params: cfg=section("world", "base", "scoring", trained=False), run=lambda w: f"--profile {PROFILE} --seed {w.w}"
    shell: RUN_WORLD


rule run_train:
    threads: JOB_THREADS
    priority: PRIORITY["stacks"]
    input: code("dint.analyses.replication", build=True), custom_code(*CUSTOM), lambda w: world_scores(w.w)
    output: f"{RUNS_DIR}/w{{w}}-t{{t}}/run.json"
    log: f"{RUNS_DIR}/w{{w}}-t{{t}}/logs/train.log"
    benchmark: f"{RUNS_DIR}/w{{w}}-t{{t}}/timings/train.tsv"
    wildcard_constraints: w=r"\d+", t=r"\d+"
    params: cfg=section("world", "base", "scoring", "interventions", grids=EXPERIMENT_FIELDS, custom=CUSTOM),
            run=lambda w: f"--profile {PROFILE} --seed {w.w} --train-seed {w.t}"
    shell: job("build run", build=True, run="{params.run}")


# a run's installation grid (notebook 08), a job of its own: a change to its code does not retrain the run
rule run_installation:
    threads: JOB_THREADS
    priority: PRIORITY["installation"]
    input: INSTALLATION_CODE, f"{RUNS_DIR}/w{{w}}-t{{t}}/run.json"
    output: f"{RUNS_DIR}/w{{w}}-t{{t}}/installation/manifest.json"
    log: f"{RUNS_DIR}/w{{w}}-t{{t}}/logs/installation.log"
    benchmark: f"{RUNS_DIR}/w{{w}}-t{{t}}/timings/installation.tsv"
    wildcard_constraints: w=r"\d+", t=r"\d+"
    params: cfg=section("world", "base", "scoring", "interventions"), grid=INSTALLATION_GRID,
            run=lambda w: f"--profile {PROFILE} --seed {w.w} --train-seed {w.t}"
    shell: job("build installation", build=True, run="{params.run}")


rule run_notebooks:
    threads: 1
    priority: PRIORITY["notebook_05"]
    input:
        [code(f"notebooks/{nb}.ipynb") for nb in NOTEBOOKS], f"{RUNS_DIR}/w{{w}}-t{{t}}/run.json",
        [f"{RUNS_DIR}/w{{w}}-t{{t}}/installation/manifest.json"] if "08_installation" in NOTEBOOKS else [],
    output: [f"{RUNS_DIR}/w{{w}}-t{{t}}/{nb}/numbers.json" for nb in NOTEBOOKS]
    log: f"{RUNS_DIR}/w{{w}}-t{{t}}/logs/notebooks.log"
    benchmark: f"{RUNS_DIR}/w{{w}}-t{{t}}/timings/notebooks.tsv"
    wildcard_constraints: w=r"\d+", t=r"\d+"
    params: run=lambda w: f"--profile {PROFILE} --seed {w.w} --train-seed {w.t}"
    shell: job("execute --no-figures", run="{params.run}")


rule replication:
    threads: 1
    input:
        code("dint.replicated", "dint.analyses.replication"), "paper/claims.yaml",
        "paper/world.tex" if not P.real else "paper/real.tex",
        expand(f"{R}/{{nb}}/numbers.json", nb=NOTEBOOKS),
        [f"{RUNS_DIR}/w{w}-t{t}/{nb}/numbers.json" for w, t in OTHER_RUNS for nb in NOTEBOOKS],
    output: REPLICATION_OUT, REPLICATION_NUMBERS
    log: f"{R}/logs/replication.log"
    benchmark: f"{R}/timings/replication.tsv"
    shell: job("replication")


rule paper:
    threads: 1
    input:
        REPLICATION_OUT,
        "paper/main.tex", "paper/world.tex" if not P.real else "paper/real.tex", "paper/refs.bib", "paper/claims.yaml",
        code("dint.pipeline.paper", "dint.claims", "dint.claims_tex", "dint.replicated", "dint.format_control"),
        CONTROL_RUNS, rules.macros.output, rules.validity.output, expand(f"{F}/{{nb}}.pdf", nb=NOTEBOOKS),
    output: f"{R}/paper/dint.pdf"
    log: f"{R}/logs/paper.log"
    benchmark: f"{R}/timings/paper.tsv"
    shell: job("paper")
