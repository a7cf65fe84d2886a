"""A dint world's facts as lm-evaluation-harness tasks, so that any model lm-eval can run is asked what dint asks.

`world_tasks` writes, for each prompt form, a multiple-choice task config (YAML) and its local data (JSON): one
document per fact of the chosen split, its prompt, the relation's value set as the choices and the true value's
index as the target. lm-eval joins context and choice with its default delimiter (a space), as `dint.scoring` does,
so the log-likelihoods it logs are dint's own (`tests/test_lmeval.py` checks them to 1e-4). Run them with
``lm_eval --include_path FOLDER --tasks world_qa,world_statement ... --log_samples`` and compare the runs with
``dint lm-eval`` (`dint.lmeval`).
"""
from __future__ import annotations

import json
from pathlib import Path

__all__ = ["TASK", "world_tasks"]

# a multiple-choice task over a local JSON file (lm-eval's task YAML; doubled braces are Jinja's)
TASK = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{prompt}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: label
metric_list:
  - metric: acc
  - metric: acc_norm
"""


def world_tasks(world, folder, *, split: str | None = "heldout", forms=("qa", "statement"),
                prefix: str = "world") -> list[str]:
    """Write the world's facts as lm-eval multiple-choice tasks, one per prompt form.

    Parameters
    ----------
    world : a `dint.world.World` or `dint.realworld` world (``facts`` with ``split``, ``prompts(form, facts)``)
    folder : where the task configs (``<prefix>_<form>.yaml``) and their data (``<prefix>_<form>.json``) go
    split : the facts asked about (``"heldout"``, ``"train"``), or None for every fact
    forms : the prompt forms, each one task
    prefix : of the task names

    Returns
    -------
    The task names, ``<prefix>_<form>``, for lm_eval's ``--tasks``.
    """
    facts = world.facts
    if split is not None:
        if split not in set(facts["split"]):
            raise ValueError(f"split={split!r}: the world's facts have splits {sorted(set(facts['split']))} "
                             "(or pass None for every fact)")
        facts = facts[facts["split"] == split]
    if not forms or isinstance(forms, str):
        raise ValueError(f"forms={forms!r}: give a list of prompt forms, e.g. ['qa', 'statement']")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for form in forms:
        P = world.prompts(form, facts)
        rows = [{"fact": int(f), "prompt": p, "choices": list(c), "label": list(c).index(t)}
                for f, p, c, t in zip(P.fact, P.prompt, P.candidates, P.target)]
        name = f"{prefix}_{form}"
        data = folder / f"{name}.json"
        data.write_text(json.dumps(rows))
        (folder / f"{name}.yaml").write_text(TASK.format(name=name, data=data.resolve()))
        names.append(name)
    return names
