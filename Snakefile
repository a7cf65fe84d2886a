# The paper's pipeline: shared artifacts are built once, then each claim notebook runs on them.
#   snakemake --cores 2 --config profile=tiny
# A rerun redoes only what changed: code (inputs), the profile's sections (params) or a notebook.
# Every job uses all the cores it is given (Snakemake sets OMP_NUM_THREADS from `threads`), as a
# notebook run on its own does: floating-point results depend on the thread count, and a job run by
# the pipeline must give the numbers the same notebook gives in JupyterLab.
import json

from dint.config import load_profile

PROFILE = config.get("profile", "tiny")
P = load_profile(PROFILE)  # an unknown profile or bad parameter stops here, before any work
SECTIONS = P.asdict()
R = f"results/{PROFILE}"
F = f"figures/{PROFILE}"
NOTEBOOKS = ["00_base_model"]


def section(*names):
    return json.dumps({"seed": P.seed, **{n: SECTIONS[n] for n in names}}, sort_keys=True)


rule all:
    input:
        expand(f"{R}/{{nb}}/numbers.json", nb=NOTEBOOKS),
        expand(f"{F}/{{nb}}.{{ext}}", nb=NOTEBOOKS, ext=["pdf", "png"]),
        f"{R}/macros.tex",


rule world:
    threads: workflow.cores
    input: "dint/world.py"
    output: f"{R}/world/manifest.json"
    params: cfg=section("world")
    shell: "python -m dint build world --profile {PROFILE}"


rule base_model:
    threads: workflow.cores
    input: "dint/models.py", rules.world.output
    output: f"{R}/models/base/manifest.json"
    params: cfg=section("world", "base")
    shell: "python -m dint build base --profile {PROFILE}"


rule base_scores:
    threads: workflow.cores
    input: "dint/scoring.py", "dint/artifacts.py", rules.base_model.output
    output: f"{R}/scores/base/manifest.json"
    params: cfg=section("world", "base", "scoring")
    shell: "python -m dint build scores --profile {PROFILE}"


rule notebook_00:
    threads: workflow.cores
    input: "notebooks/00_base_model.ipynb", "dint/reference.py", "dint/stats.py", "dint/plot.py", rules.base_scores.output
    output:
        numbers=f"{R}/00_base_model/numbers.json",
        executed=f"{R}/notebooks/00_base_model.ipynb",
        figures=multiext(f"{F}/00_base_model", ".pdf", ".png"),
    shell: "python -m dint run 00_base_model --profile {PROFILE}"


rule macros:
    threads: workflow.cores
    input: "dint/macros.py", expand(f"{R}/{{nb}}/numbers.json", nb=NOTEBOOKS)
    output: f"{R}/macros.tex"
    shell: "python -m dint macros --profile {PROFILE}"
