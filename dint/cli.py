"""The ``dint`` command line: build shared artifacts, run a notebook, benchmark."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


class _UsageError(Exception):
    """A command line argparse rejects; `main` prints it as ``error: ...`` and returns 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _UsageError(f"{message} (see `{self.prog} --help`)")


def _count(least: int):
    """An argparse type: an integer >= ``least``."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {least}, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be an integer >= {least}, got {text!r}")
        return value

    return parse


def _share(text):
    """An argparse type: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1), e.g. 0.05, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1), e.g. 0.05, got {text!r}")
    return value


def _names(text):
    """An argparse type: a comma-separated list of names, e.g. arc_easy,hellaswag."""
    names = [t.strip() for t in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"give names separated by commas, e.g. a,b; got {text!r}")
    return names


def _profile_args(p):
    p.add_argument("--profile", default="tiny", help="a profile in config/ (default: tiny)")
    p.add_argument("--seed", type=_count(0), default=None,
                   help="replace the profile's world seed (the world, its split, the base model's pretraining)")
    p.add_argument("--train-seed", type=_count(0), default=None,
                   help="replace the profile's training seed (every intervention, sampling and resampling)")


def _seeds(args) -> dict:
    """The run's seeds from the command line: keyword arguments of `load_profile` and the functions that take a run."""
    return {"seed": args.seed, "train_seed": args.train_seed}


def _build(args):
    from .pipeline import artifacts
    from .pipeline.config import load_profile

    P = load_profile(args.profile, **_seeds(args))
    if args.artifact == "world":
        w = artifacts.world(P, rebuild=args.force)
        what = "real facts" if P.real else f"facts, {len(w.corpus)} statements"
        print(f"world: {len(w.facts)} {what} -> {artifacts.world_dir(P)}")
    elif args.artifact == "base":
        _, _, rec = artifacts.base_model(P, rebuild=args.force)
        if P.real:
            print(f"base model: {rec['source']} (SHA256 {rec['sha256']}), {rec['n_params']:,} non-embedding "
                  f"parameters, on {rec['device']} -> {artifacts.base_dir(P)}")
        else:
            print(f"base model: {rec['n_params']:,} parameters, {rec['wall_time']:.1f} s, loss {rec['loss_last']:.3f} "
                  f"-> {artifacts.base_dir(P)}")
    elif args.artifact == "scores":
        s = artifacts.base_scores(P, rebuild=args.force)
        print(f"base scores: {len(s)} rows -> {artifacts.scores_dir(P)}")
    elif args.artifact == "run":
        import json

        from .analyses import replication

        built = replication.build(P, rebuild=args.force, progress=False)
        out = artifacts.root(P) / "run.json"
        out.write_text(json.dumps({"run": P.run, "seed": P.seed, "train_seed": P.train_seed, "built": built},
                                  indent=1))
        print(f"run {P.run}: {len(built)} artifacts -> {out}")
    elif args.artifact == "intervention":
        _, _, rec = artifacts.intervention(P, args.name, rebuild=args.force, progress=True)
        print(f"{args.name}: {rec.steps} steps, {rec.tokens:,} tokens, {rec.train_flops:.3g} training FLOPs, "
              f"{rec.wall_time:.1f} s -> {artifacts.intervention_dir(P, args.name)}")
        if args.name != "reward":   # and its answer distributions, in the same process
            s = artifacts.intervention_scores(P, args.name, rebuild=args.force)
            print(f"{args.name} scores: {len(s)} rows")
    elif args.artifact == "stack":
        from .analyses import stacks
        names = [stacks.name(n) for n in args.name]   # a bad name fails here, before any training
        for name in names:   # several stacks share one process (and its imports); list prefixes first
            _, _, recs = stacks.stack(P, name, rebuild=args.force, progress=True)
            s = stacks.stack_scores(P, name, rebuild=args.force)
            d = stacks.describe(P, name)
            print(f"stack {d['stack']}: {len(recs)} steps, {d['train_flops']:.3g} training FLOPs, {len(s)} score rows")
    elif args.artifact == "intervention-scores":
        s = artifacts.intervention_scores(P, args.name, rebuild=args.force)
        print(f"{args.name} scores: {len(s)} rows")
    elif args.artifact == "reward-scores":
        from .analyses import experiments
        for form in args.name or ["qa"]:
            t = experiments.reward_table(P, form=form, rebuild=args.force)
            print(f"reward scores ({form}): {len(t)} candidates of {t['fact'].nunique()} facts")
    elif args.artifact == "installation":
        from .analyses import budgets
        g = budgets.scores(P, rebuild=args.force, progress=False)
        print(f"installation grid: {len(g.records)} models ({', '.join(g.records['model'])}), {len(g.scores)} score rows "
              f"-> {artifacts.root(P) / 'installation'}")
    elif args.artifact == "training-curve":
        from .analyses import sft_grid
        t = sft_grid.training_curve(P, rebuild=args.force, progress=True)
        print(f"training curve: {len(t[['epochs', 'data_share']].drop_duplicates())} SFT runs, {len(t)} rows")
    elif args.artifact == "lora-sweep":
        from .analyses import lora_sweep
        t = lora_sweep.sweep(P, rebuild=args.force, progress=True)
        print(f"LoRA sweep: {len(t[['intervention', 'lr']].drop_duplicates())} runs -> {artifacts.root(P) / 'lora_sweep'}")
    elif args.artifact == "aligned":
        from .analyses import experiments
        a = experiments.aligned_sweep(P, rebuild=args.force, progress=True)
        print(f"aligned proxies: {', '.join(a.proxies['proxy'])}; {len(a.checkpoints)} per-prompt checkpoint rows "
              f"-> {artifacts.root(P) / 'aligned'}")
    else:
        from .analyses import experiments
        t = experiments.rl_sweep(P, rebuild=args.force, progress=True)
        print(f"RL sweep: {len(t)} checkpoints over {t['beta'].nunique()} values of beta")


def _parse_param(text):
    import yaml

    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"-p {text!r}: give NAME=VALUE, e.g. -p n_resamples=200")
    try:
        return name.strip(), yaml.safe_load(value)
    except yaml.YAMLError as e:
        what = getattr(e, "problem", None) or " ".join(str(e).split())
        raise ValueError(f"-p {text!r}: the value is not YAML ({what}); write a list as [a, b] and quote text "
                         "with YAML's special characters, e.g. -p 'name=\"a: b\"'") from None


def _run(args):
    from .pipeline.notebooks import run

    params = dict(_parse_param(p) for p in args.param)   # a bad name or value fails in run, before a kernel starts
    out = run(args.notebook, profile=args.profile, parameters=params, **_seeds(args))
    print(f"executed -> {out}")


def _execute(args):
    from .pipeline import notebooks

    names = args.notebook or list(notebooks.for_profile(args.profile))
    for f in notebooks.execute(names, profile=args.profile, figures=not args.no_figures, **_seeds(args)):
        print(f"numbers -> {f}")


def _replication(args):
    from . import claims, replicated
    from .analyses import replication
    from .pipeline import artifacts, report
    from .pipeline.config import load_profile

    P = load_profile(args.profile, **_seeds(args))
    if args.seed is None and args.train_seed is None:
        runs = replication.collect(args.profile)
    else:   # one run at other seeds: judged on its own numbers
        runs = replication.read_run(P)
        if runs.empty:
            raise FileNotFoundError(f"no numbers of run {P.run} of profile {args.profile!r}: run `make reproduce "
                                    f"PROFILE={args.profile} SEED={P.seed} TRAIN_SEED={P.train_seed}` first")
    registry = claims.load()
    table = replicated.judge(registry, runs, reference="real" if P.real else "world")
    agreement = replicated.agreement(runs, replicated.quoted(runs, replicated.paper_text(P)))
    folder = artifacts.root(P) / "replication"
    folder.mkdir(parents=True, exist_ok=True)
    runs.to_parquet(folder / "runs.parquet", index=False)
    table.to_parquet(folder / "claims.parquet", index=False)
    agreement.to_parquet(folder / "agreement.parquet", index=False)
    numbers = report.Outputs("replication", P).numbers(replicated.paper_numbers(runs, agreement))
    K = runs["run"].nunique()
    shown = table.assign(held=[f"{h:.0f} of {K}" if h == h else "" for h in table["held"]]).round(
        {"estimate": 3, "ci_low": 3, "ci_high": 3, "var_world": 4, "var_train": 4})
    print(shown[["id", "kind", "estimate", "ci_low", "ci_high", "var_world", "var_train", "held",
                 "verdict"]].to_string(index=False))
    print("\nthe estimates the paper quotes: how often a run's estimate falls inside an interval of other runs")
    print(agreement.round({"share": 3}).to_string(index=False))
    print(f"replication -> {folder} (the paper's numbers: {numbers.name})")
    print(claims.summary(table, runs=K))


def _bench(args):
    from .pipeline import bench

    if args.what == "scoring":
        bench.scoring(args.profile, questions=args.questions, repeats=args.repeats)


def _macros(args):
    from .pipeline import macros

    print(f"macros -> {macros.write(args.profile, **_seeds(args))}")


def _claims(args):
    from pathlib import Path

    from . import claims, claims_tex, replicated
    from .pipeline import paths

    registry = claims.load()
    table, runs = replicated.verdicts(args.profile, registry=registry, **_seeds(args))   # pooled where replicated
    shown = table.assign(estimate=table.estimate.round(3), ci_low=table.ci_low.round(3), ci_high=table.ci_high.round(3),
                         pvalue_holm=table.pvalue_holm.round(4))
    columns = ["id", "kind", "estimate", "ci_low", "ci_high", "pvalue_holm", "verdict", "reason"]
    if "held" in table:
        shown["held"] = [f"{h:.0f} of {runs}" if h == h else "" for h in table["held"]]
        columns.insert(6, "held")
    print(shown[columns].to_string(index=False))
    if args.tex:
        out = Path(args.tex)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(claims_tex.tex(registry, table, runs=runs))
        print(f"claims table -> {out}")
    problems = [p for f in args.check for p in claims.check_text((paths.root() / f).read_text(), registry, table)]
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    print(claims.summary(table, runs=runs))
    if problems:
        raise SystemExit(1)


def _validate(args):
    from .pipeline import paths
    from .analyses import validity

    table = validity.run(replications=args.replications, n_resamples=args.n_resamples, seed=args.seed,
                         jobs=args.jobs)
    with_target = table.assign(target=table["target"].round(3))
    print(with_target[["method", "kind", "setting", "target", "estimate", "mc_se"]].to_string(index=False))
    out = validity.write(table, args.output or paths.results("validity"))
    print(f"table -> {out[1]}")
    print(validity.summary(table))


def _paper(args):
    from . import claims, claims_tex, format_control, replicated
    from .pipeline import artifacts, paper
    from .pipeline.config import load_profile

    P = load_profile(args.profile, **_seeds(args))   # an unknown profile is named before TeX is looked for
    # the claims' verdicts and sentences, and a body that states no sentence of a verdict a claim did not get
    registry = claims.load()
    table, runs = replicated.verdicts(args.profile, registry=registry, **_seeds(args))   # pooled where replicated
    problems = claims.check_text(replicated.paper_text(P), registry, table)
    if problems:
        raise ValueError(f"{'real' if P.real else 'world'}.tex contradicts the claims' verdicts: " + "; ".join(problems))
    out = artifacts.root(P) / "paper" / "claims.tex"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(claims_tex.tex(registry, table, runs=runs) + format_control.tex(args.profile, registry=registry))
    print(claims.summary(table, runs=runs))
    print(f"paper -> {paper.build(args.profile, **_seeds(args))}")


def _snapshot(args):
    from . import snapshot

    if args.action == "write":
        out = snapshot.write(args.profile)
        print(f"snapshot -> {out}: {json.loads((out / 'manifest.json').read_text())['summary']}")
    elif args.action == "paper":
        print(f"paper -> {snapshot.paper(args.profile)}")
    elif args.action == "refresh":
        print(f"snapshot -> {snapshot.refresh(args.profile)}")
    else:
        table = snapshot.compare(args.profile)
        print(table.round(3).to_string(index=False))
        differ = table[~table.same]
        print(f"{int(table.same.sum())} of {len(table)} verdicts agree with the snapshot"
              + (f"; they differ for {', '.join(differ.id)}" if len(differ) else ""))
        if len(differ):
            raise SystemExit(1)


def _format_control(args):
    from . import format_control

    table = format_control.compare(args.profile)
    shown = table.assign(**{c: table[c].round(3) for c in ("estimate_profile", "estimate_control", "estimate", "ci_low",
                                                           "ci_high")})
    print(shown[["id", "verdict", "estimate_profile", "verdict_control", "estimate_control", "kept", "estimate",
                 "ci_low", "ci_high"]].to_string(index=False))
    print(f"{int(table.kept.sum())} of {len(table)} keep their verdict on {format_control.control_of(args.profile)}")


def _reproduce(args):
    import subprocess

    from . import format_control
    from .pipeline import paths
    from .pipeline.config import load_profile

    load_profile(args.profile, **_seeds(args))   # an unknown profile or a bad parameter fails here, before Snakemake
    config = [f"profile={args.profile}"] + [f"{k}={v}" for k, v in _seeds(args).items() if v is not None]
    common = ["--cores", str(args.cores), "--rerun-incomplete", "--quiet", "rules", "host"]
    commands = [["snakemake", *args.targets, *common, "--config", *config]]
    control = format_control.control_of(args.profile)
    if control and not args.targets and not any(v is not None for v in _seeds(args).values()):
        # the format control's replication first, so that the paper compares the two (as `make reproduce`)
        load_profile(control)
        commands.insert(0, ["snakemake", f"results/{control}/replication/claims.parquet", *common,
                            "--config", f"profile={control}"])
    for cmd in commands:
        print(" ".join(cmd))
        done = subprocess.run(cmd, cwd=paths.root(), check=False)
        if done.returncode:
            raise RuntimeError(f"snakemake exited with {done.returncode}; see .snakemake/log/")


def _card(args):
    import re

    from .pipeline import artifacts, report
    from . import card, models
    from .pipeline.config import load_profile

    P = load_profile(args.profile, **_seeds(args))
    packaged = args.model in models.KNOWN_SHA256 or args.model.endswith(".gguf")   # a packaged model or a GGUF file
    name = args.name or (Path(args.model).stem if packaged else Path(args.model).resolve().name)
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise ValueError(f"--name={name!r}: use letters, digits, '-' and '_' only (it names files and LaTeX macros)")
    if packaged:
        device = P.base.device if P.real else "cpu"
        model, tok, _ = models.pretrained(models.PretrainedConfig(model=args.model, device=device))
    else:
        model, tok = models.load(args.model)   # fails with the fix named before anything is scored
    world = artifacts.world(P)
    with models.torch_threads(P.interventions.threads):
        scores = artifacts.score_world(model, tok, world, P, progress=True)
    numbers = card.characterise(name, artifacts.base_scores(P), scores, world.facts, form=args.form,
                                alpha=args.alpha, rng=P.train_seed)
    out = report.Outputs(f"card_{name.replace('-', '_')}", P)
    out.table("scores", scores)
    path = out.numbers(numbers)
    row = {k: (v.statistic, v.confidence_interval.low, v.confidence_interval.high) if hasattr(v, "statistic") else v
           for k, v in numbers.items()}
    for k, v in row.items():
        print(f"{k:>28}: " + (" ".join(f"{x:.4g}" for x in v) if isinstance(v, tuple) else f"{v}"))
    print(f"card, calibration and verification -> {path}")


def _lm_eval(args):
    from . import lmeval

    if args.names is not None and len(args.names) != len(args.run):
        raise ValueError(f"--names: {len(args.names)} names for {len(args.run)} runs; give one name per RUN, in "
                         "order, e.g. --names A,B")
    config = lmeval.LmEvalConfig(normalise=args.normalise, n_bins=args.bins, n_resamples=args.n_resamples,
                                 rng=args.seed)
    names = args.names or [None] * len(args.run)
    runs = [lmeval.read(path, name=name, tasks=args.tasks) for path, name in zip(args.run, names)]
    tasks = lmeval.check_paired(runs)   # every log read and lined up before anything is computed
    for r in runs:
        print(f"{r.name}: {', '.join(f'{t} ({len(r.docs[r.docs.task == t])} documents)' for t in tasks)} <- {r.path}")
    done = lmeval.report(runs, args.out, config)
    for r in done.pairs[done.pairs.measure == "d_accuracy"].itertuples():
        if r.prompts_differ:
            print(f"note: task {r.task}: {r.model} and {r.reference} saw other prompts on {r.prompts_differ} of {r.n} "
                  "documents (another --num_fewshot, chat template or system instruction): the comparison includes it")
    wide = done.cards.pivot_table(index=["task", "model"], columns="measure", values="estimate", sort=False)
    print(wide[list(lmeval.MEASURES)].round(3).to_string())
    if len(done.pairs):
        print(done.pairs[["task", "model", "reference", "measure", "estimate", "ci_low", "ci_high", "pvalue",
                          "pvalue_holm"]].round(4).to_string(index=False))
    print(f"cards, pairs, figure and numbers -> {Path(args.out)}: {', '.join(done.files)}")


def _lm_eval_tasks(args):
    from . import lmeval_tasks
    from .pipeline import artifacts
    from .pipeline.config import load_profile

    P = load_profile(args.profile, **_seeds(args))
    names = lmeval_tasks.world_tasks(artifacts.world(P), args.out, split=None if args.split == "all" else args.split)
    out = Path(args.out).resolve()
    print(f"tasks {', '.join(names)} -> {out}")
    print(f"run: lm_eval --model hf --model_args pretrained=MODEL --include_path {out} --tasks {','.join(names)} "
          "--output_path OUT --log_samples")


def _timings(args):
    from .pipeline import report
    from .pipeline.config import load_profile

    t = report.timings(load_profile(args.profile, **_seeds(args)))
    print(t.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    print(f"{len(t)} jobs, {t.minutes.sum():.1f} job-minutes")


def _profiles(args):
    from .pipeline.config import profiles

    print("\n".join(profiles()))


def main(argv=None) -> int:
    parser = _Parser(prog="dint", description=__doc__)
    parser.add_argument("--log", metavar="FILE", default=None,
                        help="send the command's output to FILE (a pipeline job's log); the console keeps dint's "
                             "progress bars and, if it fails, one line naming the error and the log")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="build (or load) a shared artifact of a profile",
                       description="Build a shared artifact once; later calls load it.")
    p.add_argument("artifact", choices=["world", "base", "scores", "intervention", "intervention-scores",
                                        "stack", "rl-sweep", "aligned", "lora-sweep", "training-curve", "reward-scores", "installation", "run"],
                   help="run: everything one run's notebooks read (the world and base model, every intervention, "
                        "stack and experiment), in one process")
    p.add_argument("name", nargs="*", default=[],
                   help="the intervention (for intervention and intervention-scores), e.g. sft; "
                        "one or more stacks (for stack), e.g. sft+dpo sft+dpo+rl; "
                        "prompt forms (for reward-scores: the proxy reward of every candidate), default qa")
    _profile_args(p)
    p.add_argument("--force", action="store_true", help="rebuild even if a matching artifact exists")
    p.set_defaults(fn=_build)

    p = sub.add_parser("run", help="execute one notebook with Papermill",
                       description="Execute notebooks/<NOTEBOOK>.ipynb into results/<profile>/notebooks/.")
    p.add_argument("notebook", help="notebook name, e.g. 00_base_model")
    _profile_args(p)
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a notebook parameter (YAML value), repeatable")
    p.set_defaults(fn=_run)

    p = sub.add_parser("execute", help="execute notebooks' code in one process (a replication's run)",
                       description="Execute the claim notebooks (or the NOTEBOOKs given) in this process, one "
                                   "namespace each, with the run's parameters: their numbers, tables and figures, "
                                   "without a kernel per notebook or an executed copy.")
    p.add_argument("notebook", nargs="*", help="notebook names (default: the profile's notebooks)")
    p.add_argument("--no-figures", action="store_true",
                   help="write no figure files (a replication's run: its numbers and tables are what is pooled)")
    _profile_args(p)
    p.set_defaults(fn=_execute)

    p = sub.add_parser("replication", help="pool a profile's replicated runs and judge the claims on them",
                       description="Collect every run of the profile's replication (config/<profile>.yaml "
                                   "replication: world_seeds × train_seeds), pool each registered number across "
                                   "the runs (random effects: between worlds, between training runs) and judge the "
                                   "claims on the pooled estimates; writes results/<profile>/replication/. With "
                                   "--seed or --train-seed: the one run at those seeds, in its own folder.")
    _profile_args(p)
    p.set_defaults(fn=_replication)

    p = sub.add_parser("bench", help="benchmarks that print their figure",
                       description="scoring: dint's exact scorer vs lm-evaluation-harness and vs sampling.")
    p.add_argument("what", choices=["scoring"])
    p.add_argument("--profile", default="tiny")
    p.add_argument("--questions", type=_count(1), default=200)
    p.add_argument("--repeats", type=_count(1), default=3)
    p.set_defaults(fn=_bench)

    p = sub.add_parser("macros", help="write the paper's number macros from a profile's results",
                       description="Collect results/<profile>/*/numbers.json into results/<profile>/macros.tex.")
    _profile_args(p)
    p.set_defaults(fn=_macros)

    p = sub.add_parser("claims", help="judge the claims registry (paper/claims.yaml) on a profile's results",
                       description="Judge every entry of paper/claims.yaml against results/<profile>/*/numbers.json: "
                                   "supported, contradicted or inconclusive (claims and replications, Holm across "
                                   "them), passed or failed (sanity checks).")
    _profile_args(p)
    p.add_argument("--tex", metavar="FILE", default=None, help="also write the paper's claims and sanity tables")
    p.add_argument("--check", metavar="TEX", action="append", default=[],
                   help="fail if this paper source states a claim's sentence for a verdict it did not get "
                        "(repeatable; a path from the repository root)")
    p.set_defaults(fn=_claims)

    p = sub.add_parser("format-control", help="a profile's claims beside those of its format control",
                       description="The claims of the registry's format_control notebooks judged on a profile's pooled "
                                   "runs and on its control profile's (whose base saw the QA format in pretraining), "
                                   "and the difference of each number between them, run by run (dint.format_control).")
    p.add_argument("--profile", required=True, help="a profile the registry's format_control names, e.g. tiny")
    p.set_defaults(fn=_format_control)

    p = sub.add_parser("validate", help="simulation study of every test's type-I error, power and coverage",
                       description="Type-I error at alpha 0.05, power and coverage at 0.95 of dint's tests and "
                                   "intervals, by simulation; writes results/validity/validity.tex.")
    p.add_argument("--replications", type=_count(1), default=2000)
    p.add_argument("--jobs", type=_count(1), default=None, help="worker processes (default: one per CPU)")
    p.add_argument("--n-resamples", type=_count(1), default=999, help="bootstrap/permutation resamples per replication")
    p.add_argument("--seed", type=_count(0), default=0)
    p.add_argument("--output", default=None, help="folder of the table (default: results/validity)")
    p.set_defaults(fn=_validate)

    p = sub.add_parser("snapshot", help="the profile's reference snapshot in snapshots/<profile>/",
                       description="write: copy a run's numbers, macros, PNG figures and verdicts into "
                                   "snapshots/<profile>/; paper: build results/<profile>/paper-snapshot/dint.pdf from "
                                   "the snapshot alone; compare: a fresh run's verdicts against the snapshot's "
                                   "(exit 1 where one differs); refresh: its macros and verdicts again from its numbers, "
                                   "after a change of the registry or of the macros' format.")
    p.add_argument("action", choices=["write", "paper", "compare", "refresh"])
    p.add_argument("--profile", required=True, help="a profile with a snapshot, e.g. real")
    p.set_defaults(fn=_snapshot)

    p = sub.add_parser("paper", help="build the paper PDF from a profile's figures and macros",
                       description="Build results/<profile>/paper/dint.pdf from paper/main.tex with latexmk; the "
                                   "figures and macros come from the profile's pipeline run.")
    _profile_args(p)
    p.set_defaults(fn=_paper)

    p = sub.add_parser("reproduce", help="run the whole pipeline of a profile (Snakemake)",
                       description="Run the paper's pipeline for a profile: shared artifacts, every notebook, the "
                                   "macros and (where TeX is installed) the paper. Reruns only what changed.")
    _profile_args(p)
    p.add_argument("--cores", type=_count(1), default=os.cpu_count() or 1)
    p.add_argument("targets", nargs="*", help="Snakemake targets (default: everything)")
    p.set_defaults(fn=_reproduce)

    p = sub.add_parser("card", help="the distribution card, calibration and verification of a local model",
                       description="Score a local causal LM on the profile's facts and report, on its held-out facts, "
                                   "its distribution card against the profile's base model, its calibration (Brier "
                                   "decomposition) and a conformal verification system on its own confidence "
                                   "(e.g. `dint card smollm --profile real`); numbers go to "
                                   "results/<profile>/card_<name>/numbers.json, and so into the paper's macros.")
    p.add_argument("model", help="a local model directory (save_pretrained output, safetensors), a .gguf file, or a "
                                 "packaged model: gemma, smollm")
    _profile_args(p)
    p.add_argument("--name", default=None, help="name on the card (default: the directory's name)")
    p.add_argument("--form", choices=["qa", "statement"], default="qa")
    p.add_argument("--alpha", type=_share, default=0.05, help="target joint error of the verification system")
    p.set_defaults(fn=_card)

    p = sub.add_parser("lm-eval", help="compare lm-evaluation-harness runs as distributions, paired by document",
                       description="Read the --log_samples output of lm_eval for multiple-choice tasks (a folder given "
                                   "to --output_path, its model subfolder, or a samples_<task>_<date>.jsonl file per "
                                   "RUN) and write to --out, per task and model, the distribution card over the "
                                   "choices (accuracy with its Wilson interval, entropy, top-choice mass, ECE, Brier) "
                                   "and, per pair of runs on the same documents, McNemar's test with Newcombe's "
                                   "interval, the mean KL between choice distributions and the ECE difference, "
                                   "Holm-adjusted across tasks and pairs: cards.csv, pairs.csv (and .parquet), "
                                   "lm_eval.pdf/.png and numbers.json.")
    p.add_argument("run", nargs="+", metavar="RUN", help="an lm_eval --output_path folder (written with --log_samples) "
                                                        "or one samples_<task>_<date>.jsonl file; the first is the "
                                                        "reference of the later ones")
    p.add_argument("--out", required=True, metavar="DIR", help="the folder the tables, figure and numbers.json go to")
    p.add_argument("--names", type=_names, default=None, metavar="A,B,...",
                   help="one name per RUN, comma-separated (default: lm-eval's model name without its folders)")
    p.add_argument("--tasks", type=_names, default=None, metavar="T1,T2,...",
                   help="the tasks to compare, comma-separated as lm_eval's --tasks (default: every task of the runs; "
                        "all must be multiple-choice)")
    p.add_argument("--normalise", choices=["none", "chars"], default="none",
                   help="the choice distribution: softmax of the summed log-likelihoods (none, lm-eval's acc) or of "
                        "the log-likelihood per character (chars, lm-eval's acc_norm)")
    p.add_argument("--bins", type=_count(1), default=10, help="equal-width bins of the ECE (default 10)")
    p.add_argument("--n-resamples", type=_count(2), default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--seed", type=_count(0), default=0, help="seed of the bootstrap (default 0)")
    p.set_defaults(fn=_lm_eval)

    p = sub.add_parser("lm-eval-tasks", help="a profile's world as lm-evaluation-harness tasks (YAML and JSON)",
                       description="Write the profile's world's facts (held-out by default) as lm-eval "
                                   "multiple-choice tasks, one per prompt form (world_qa, world_statement): the "
                                   "relation's value set as choices, the true value as target. Run them with lm_eval "
                                   "--include_path DIR --log_samples and compare the runs with dint lm-eval.")
    _profile_args(p)
    p.add_argument("--out", required=True, metavar="DIR", help="the folder the task configs and data go to")
    p.add_argument("--split", choices=["heldout", "train", "all"], default="heldout",
                   help="the facts asked about (default: heldout)")
    p.set_defaults(fn=_lm_eval_tasks)

    p = sub.add_parser("timings", help="the wall time of each job of a profile's last pipeline run",
                       description="Tabulate results/<profile>/timings/*.tsv (Snakemake's benchmark files), "
                                   "longest job first, with the total of job-minutes.")
    _profile_args(p)
    p.set_defaults(fn=_timings)

    p = sub.add_parser("profiles", help="list the profiles in config/")
    p.set_defaults(fn=_profiles)

    try:
        args = parser.parse_args(argv)
        if getattr(args, "artifact", None) == "stack" and not args.name:
            parser.error("dint build stack needs a NAME: steps of sft, dpo, rl, rag joined by '+', e.g. sft+dpo")
        if getattr(args, "artifact", None) in ("intervention", "intervention-scores"):
            if len(args.name) != 1:
                from .interventions.plan import NAMES
                parser.error(f"dint build {args.artifact} needs one NAME, one of {', '.join(NAMES)}")
            args.name = args.name[0]
        elif getattr(args, "artifact", None) not in (None, "stack", "reward-scores") and args.name:
            parser.error(f"dint build {args.artifact} takes no NAME (got {' '.join(args.name)})")
    except (_UsageError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.log is None:
        try:
            args.fn(args)
        except _USER_ERRORS as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0
    return _logged(args)


# what a user can mend (a bad parameter, a missing file or optional package): a message, no traceback
_USER_ERRORS = (_UsageError, ValueError, ModuleNotFoundError, FileNotFoundError, RuntimeError)


def _logged(args) -> int:
    """Run the command with its output in ``args.log``; on failure the log gets the traceback and the
    console one line naming the error and the log."""
    import traceback

    from . import console

    with console.logged(args.log):
        try:
            args.fn(args)
            code, message = 0, None
        except BaseException as e:   # the log keeps the whole traceback
            traceback.print_exc()
            code = 2 if isinstance(e, _USER_ERRORS) else 1
            message = f"error: {e}" if code == 2 else f"error: {type(e).__name__}: {e}"
    if message:
        print(f"{message.splitlines()[0]} (log: {args.log})", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
