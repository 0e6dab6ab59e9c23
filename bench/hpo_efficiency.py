"""How fast does each search find a good model, and is the model it picks any good?

Random, TPE, TPE + median pruning, TPE + Hyperband, Optuna's Gaussian-process sampler without
and with median pruning, and a population search (TPE + median pruning, trials of one shape
trained 16 at a time).

Usage: python bench/hpo_efficiency.py [--data sample] [--budget 180] [--repeats 3]
           [--max-epochs 10] [--reference-epochs 50]
           [--methods random,tpe,tpe-median,tpe-hyperband,gp,gp-median,population] [--quick]

Each method searches the ``cpu`` space as one process with two torch threads (of the issue's
"2 workers or one two-thread process per method" this is the second: every method, the plain
ones included, trains with ``num_threads=2``) for ``--budget`` seconds of wall clock,
``--repeats`` times with different sampler seeds (repeat r uses seed r for every method), all
on the same split. The plain methods run ``study.optimize(..., timeout=budget)``; the
population method runs ``search.search_populations(study, jets, "cpu", max_epochs, 16,
timeout=budget, num_threads=2)``, which calls ``search.optimize_population`` again and again
while time is left, as a command-line worker with ``--population 16`` does: each population has
``search.population_size(study, 16)`` trials (16, but never more than the study's completed
trials, so the first ones are single trials) and asks ``search.TRIALS_PER_SHAPE`` times that
many trials of its shape, and no new trial starts once the budget is spent. Both finish the
trials in flight, so a run may overrun the budget: the elapsed time is recorded and printed.
The population method's trials are told to the study when their population ends, so its trace
of the best validation rejection by time uses those completion times (``datetime_complete``):
it rises in steps, one per population.

The reference configuration (6 x 1024) is trained once on the same split for comparison.
Prints the best validation rejection reached by each time (mean and spread over repeats) and
the time each method needs to reach the reference configuration's validation rejection. Then
judges what each run picked: its best COMPLETE trial's configuration is retrained with seeds
0, 1, 2 (same epochs as the search; together with ``fit_population`` when it has no dropout,
as its members are ``fit``'s models, else with ``train.fit`` per seed) and scored on the test
split (background rejection at 50% quark efficiency); a second table gives per method the
finished (COMPLETE + PRUNED) trials per hour, the best validation rejection and the chosen
configuration's test rejection (mean over repeats of each run's 3-seed mean, and the spread
over repeats), and last the paired differences population - tpe-median, gp-median -
tpe-median and gp - tpe of the test rejection per repeat index, judged by the series' one
rule (``metrics.repeats_verdict``: Student's t intervals of the mean difference; ahead or behind
when the 95% interval excludes zero, a hint when only the 68% one does, level otherwise).
Every complete trial keeps its best-epoch model (Optuna's artifact store, in a temporary folder):
a last table sets beside each method's single choice the ensemble of each run's best trials
(``ensembles.choose_size`` over the five best by validation rejection: k of 1, 2, 3, 5, ties to
the smaller k; nothing is retrained), its test rejection, the k chosen in each repeat, and the
paired differences ensemble - single choice and ensemble - its members' mean test rejection
(the same training: what averaging alone buys), per repeat index, by the same rule.
Standard deviations are sample ones (ddof 1) except in the first table (ddof 0, as before).

Run it on an otherwise idle machine with at least two cores. It takes about methods x repeats x
(budget + the overrun + retraining 3 seeds of the chosen configuration, about a minute),
plus the reference training (about 12 minutes for 50 epochs on two threads): roughly
1 h 15 min to 1 h 30 min with the defaults (``--reference-epochs 20`` saves 7 minutes).
``--quick`` (a smoke run of about a minute and a half): budget 20 s, 1 repeat, 2 epochs per
trial, methods random and population, reference 1 epoch, the first 10,000 jets; an explicit
option wins over ``--quick``'s value.

Prints measured figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime
import math
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import optuna
import torch
from optuna.trial import TrialState

from qgtools import data, ensembles, metrics, model, search, train
from qgtools.population import fit_population

METHODS = {
    "random": ("random", "none"),
    "tpe": ("tpe", "none"),
    "tpe-median": ("tpe", "median"),
    "tpe-hyperband": ("tpe", "hyperband"),
    "gp": ("gp", "none"),
    "gp-median": ("gp", "median"),
    "population": ("tpe", "median"),
}
THREADS = 2  # torch threads of each method's one process
POPULATION = 16  # trials trained together by the population method
JUDGE_SEEDS = (0, 1, 2)  # training seeds of the chosen configuration's retraining
DEFAULTS = {"budget": 180.0, "repeats": 3, "max_epochs": 10, "reference_epochs": 50}
QUICK = {
    "budget": 20.0,
    "repeats": 1,
    "max_epochs": 2,
    "reference_epochs": 1,
    "methods": "random,population",
    "jets": 10_000,
}


@dataclass
class Run:
    """One search: its trace, trials and elapsed time."""

    method: str
    seed: int
    trace: list[tuple[float, float]]  # (seconds since start, best validation so far)
    study: optuna.Study
    elapsed: float
    models: str  # the folder of its kept models (every complete trial's best-epoch model)

    def count(self, *states: TrialState) -> int:
        return sum(t.state in states for t in self.study.trials)

    @property
    def finished(self) -> int:
        return self.count(TrialState.COMPLETE, TrialState.PRUNED)

    @property
    def per_hour(self) -> float:
        return self.finished / self.elapsed * 3600

    @property
    def best(self) -> float:
        return self.trace[-1][1] if self.trace else math.nan


def new_study(method: str, seed: int) -> optuna.Study:
    sampler_name, pruner_name = METHODS[method]
    return optuna.create_study(
        study_name=f"{method}-seed-{seed}",  # Hyperband assigns brackets by a hash of the name
        direction="maximize",
        sampler=search.make_sampler(sampler_name, seed),
        pruner=search.make_pruner(pruner_name),
    )


def one_run(
    jets: data.JetData, method: str, seed: int, budget: float, max_epochs: int, models: str
) -> Run:
    """One search of ``budget`` seconds; the trace has an entry after each finished trial. Each
    complete trial keeps its model in the artifact folder ``models``."""
    study = new_study(method, seed)
    artifacts = search.artifact_store(models)
    trace: list[tuple[float, float]] = []
    start = time.perf_counter()
    if method == "population":
        started = datetime.datetime.now()  # optuna stamps datetime_complete with now()
        # optimize_population again and again while time is left, each of
        # search.population_size(study, POPULATION) trials asking TRIALS_PER_SHAPE x that many,
        # no new trial after the budget: what a command-line worker with --population 16 does
        search.search_populations(
            study,
            jets,
            "cpu",
            max_epochs,
            POPULATION,
            timeout=budget,
            num_threads=THREADS,
            artifacts=artifacts,
        )
        elapsed = time.perf_counter() - start
        best = -math.inf
        ended = [t for t in study.trials if t.datetime_complete is not None]
        for t in sorted(ended, key=lambda t: t.datetime_complete):
            if t.state == TrialState.COMPLETE:
                best = max(best, t.value)
            if best > -math.inf:
                trace.append(((t.datetime_complete - started).total_seconds(), best))
    else:

        def record(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            complete = [t.value for t in study.trials if t.state == TrialState.COMPLETE]
            if complete:
                trace.append((time.perf_counter() - start, max(complete)))

        study.optimize(
            search.make_objective(
                jets, "cpu", max_epochs, num_threads=THREADS, artifacts=artifacts
            ),
            timeout=budget,
            callbacks=[record],
        )
        elapsed = time.perf_counter() - start
    run = Run(method, seed, trace, study, elapsed, models)
    print(
        f"  {method:<14} seed {seed}: {len(study.trials)} trials "
        f"({run.count(TrialState.COMPLETE)} complete, {run.count(TrialState.PRUNED)} pruned, "
        f"{run.count(TrialState.FAIL)} failed) in {elapsed:.0f} s, "
        f"{run.per_hour:.0f} finished per hour, best {run.best:.1f}",
        flush=True,
    )
    return run


def test_rejections(jets: data.JetData, hp: model.HParams) -> list[float]:
    """Test rejection of ``hp`` retrained with each of ``JUDGE_SEEDS``."""
    members = [hp.replace(seed=seed) for seed in JUDGE_SEEDS]
    if hp.dropout == 0:  # members are fit's models; only dropout would draw other numbers
        results = fit_population(members, jets, split_seed=search.SPLIT_SEED, num_threads=THREADS)
    else:
        results = [
            train.fit(
                member, jets, split_seed=search.SPLIT_SEED, progress=False, num_threads=THREADS
            )
            for member in members
        ]
    return [
        train.rejection(result.predictor, jets, "test")
        if result.status == "ok" and result.best_epoch >= 0
        else math.nan
        for result in results
    ]


def judge(jets: data.JetData, run: Run) -> list[float]:
    """The chosen configuration's (best COMPLETE trial's) test rejection over the seeds."""
    complete = [t for t in run.study.trials if t.state == TrialState.COMPLETE]
    if not complete:
        print(f"  {run.method:<14} seed {run.seed}: no complete trial, nothing to judge")
        return [math.nan] * len(JUDGE_SEEDS)
    chosen = max(complete, key=lambda t: t.value)
    hp = search.hparams_of(chosen)
    start = time.perf_counter()
    values = test_rejections(jets, hp)
    print(
        f"  {run.method:<14} seed {run.seed}: trial {chosen.number} (val {chosen.value:.1f}; "
        f"{hp.n_layers} x {hp.n_channels}, batch {hp.batch_size}, lr {hp.lr:.2g}, dropout "
        f"{hp.dropout:.2f}, {hp.preprocessing}): test rejection {mean_std(values)} over seeds "
        f"{list(JUDGE_SEEDS)} ({time.perf_counter() - start:.0f} s)",
        flush=True,
    )
    return values


@dataclass
class EnsembleJudged:
    """A run's ensemble of its best trials' kept models, on the test split."""

    k: int
    test: float  # the ensemble's test rejection
    members_test: float  # the mean of its members' own test rejections (the same training)


def judge_ensemble(jets: data.JetData, run: Run) -> EnsembleJudged:
    """The ensemble of the run's best complete trials (by validation rejection) from their kept
    models, its size chosen by ``ensembles.choose_size`` on the validation split
    (``search.top_trials_ensemble``); no training."""
    if not any(t.state == TrialState.COMPLETE for t in run.study.trials):
        return EnsembleJudged(0, math.nan, math.nan)
    built = search.top_trials_ensemble(run.study, artifact_dir=run.models, data=jets)
    k = len(built.trials)
    test = train.rejection(built.ensemble, jets, "test")
    members = [train.rejection(member, jets, "test") for member in built.ensemble.members]
    rule = ensembles.SizeChoice(k, built.ensemble, built.tried).line()
    print(
        f"  {run.method:<14} seed {run.seed}: ensemble of the best {k} trial(s) "
        f"{list(built.trials)}, {rule}: test rejection {test:.1f}, its members {mean_std(members)}",
        flush=True,
    )
    return EnsembleJudged(k, test, float(np.mean(members)))


def mean_std(values, digits: int = 1) -> str:
    """``mean ± std`` of the finite values (sample std); ``-`` when there are none."""
    finite = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if len(finite) == 0:
        return "-"
    lost = f" ({len(finite)}/{len(values)})" if len(finite) < len(values) else ""
    if len(finite) == 1:
        return f"{finite[0]:.{digits}f} (one value){lost}"
    return f"{finite.mean():.{digits}f} ± {finite.std(ddof=1):.{digits}f}{lost}"


def paired_difference(a: list[float], b: list[float], names: tuple[str, str] = ("a", "b")) -> str:
    """``a - b`` per repeat index, judged by the series' one rule (``metrics.repeats_verdict``)."""
    pairs = np.array([a, b], dtype=float)
    pairs = pairs[:, np.isfinite(pairs).all(axis=0)]
    if pairs.shape[1] == 0:
        return "no repeat with both values"
    each = ", ".join(f"{d:+.1f}" for d in pairs[0] - pairs[1])
    if pairs.shape[1] < 2:
        return f"{each} (one repeat: no spread, so no judgement of the noise)"
    verdict = metrics.repeats_verdict(pairs[0], pairs[1], "repeats of the benchmark")
    return f"per repeat {each}; {verdict.line(*names, digits=2)}"


def best_at(trace: list[tuple[float, float]], t: float) -> float:
    values = [value for when, value in trace if when <= t]
    return values[-1] if values else float("nan")


def time_to_reach(trace: list[tuple[float, float]], target: float) -> float:
    return next((when for when, value in trace if value >= target), float("inf"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="sample")
    parser.add_argument(
        "--budget",
        type=float,
        help=f"seconds of wall clock per run (default {DEFAULTS['budget']:.0f})",
    )
    parser.add_argument("--repeats", type=int, help=f"default {DEFAULTS['repeats']}")
    parser.add_argument("--max-epochs", type=int, help=f"default {DEFAULTS['max_epochs']}")
    parser.add_argument(
        "--reference-epochs", type=int, help=f"default {DEFAULTS['reference_epochs']}"
    )
    parser.add_argument("--methods", help=f"comma-separated, of {', '.join(METHODS)} (default all)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: budget 20 s, 1 repeat, 2 epochs, random and population, reference "
        "1 epoch, the first 10,000 jets",
    )
    args = parser.parse_args()
    base = {**DEFAULTS, "methods": ",".join(METHODS), "jets": -1}
    if args.quick:
        base.update(QUICK)
    for name, value in base.items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    methods = args.methods.split(",")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown method(s) {unknown}: use {', '.join(METHODS)}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(THREADS)
    jets = data.load(num_data=args.jets, source=args.data)
    print(
        f"data: {jets.source}; split seed {search.SPLIT_SEED}; space cpu; "
        f"{args.max_epochs} epochs per trial; budget {args.budget:.0f} s x {args.repeats} "
        f"repeats; each method one process with {THREADS} torch threads; population method: "
        f"TPE + median pruner, up to {POPULATION} trials at a time (never more than the "
        f"completed trials), {search.TRIALS_PER_SHAPE} x that many per shape"
    )

    reference = train.fit(
        model.HParams(),
        jets,
        max_epochs=args.reference_epochs,
        progress=False,
        num_threads=THREADS,
    )
    print(
        f"reference 6 x 1024, {args.reference_epochs} epochs: "
        f"best val rejection {reference.best_val_rejection:.1f} "
        f"({reference.wall_time_s / 60:.1f} min, {THREADS} threads)",
        flush=True,
    )

    kept = tempfile.TemporaryDirectory(prefix="qg-bench-models-")  # removed at the end
    runs = {
        method: [
            one_run(jets, method, seed, args.budget, args.max_epochs, f"{kept.name}/{method}{seed}")
            for seed in range(args.repeats)
        ]
        for method in methods
    }
    print(
        f"\njudging: the best complete trial's configuration of each run, retrained with seeds "
        f"{list(JUDGE_SEEDS)}, {args.max_epochs} epochs, scored on the test split"
    )
    tests = {
        method: [judge(jets, run) for run in method_runs] for method, method_runs in runs.items()
    }
    print(
        f"\nensembles: each run's best {max(ensembles.ENSEMBLE_SIZES)} complete trials' kept "
        f"models (trained in the search, {args.max_epochs} epochs, nothing retrained), k of "
        f"{list(ensembles.ENSEMBLE_SIZES)} by validation rejection (ties to the smaller k), "
        "scored on the test split"
    )
    ensembled = {
        method: [judge_ensemble(jets, run) for run in method_runs]
        for method, method_runs in runs.items()
    }
    kept.cleanup()

    checkpoints = [args.budget * f for f in (1 / 6, 1 / 3, 2 / 3, 1)]
    print(
        f"\nbest validation rejection by wall-clock time (mean ± std over {args.repeats} repeats); "
        f"time to reach the reference's {reference.best_val_rejection:.1f}"
    )
    header = " | ".join(f"{t:>5.0f} s" for t in checkpoints)
    print(f"| method | {header} | time to reference |")
    print("|---|" + "---|" * len(checkpoints) + "---|")
    for method, method_runs in runs.items():
        cells = []
        for t in checkpoints:
            values = np.array([best_at(run.trace, t) for run in method_runs])
            cells.append(
                f"{np.nanmean(values):.1f} ± {np.nanstd(values):.1f}"
                if np.isfinite(values).any()
                else "-"
            )
        reach = np.array(
            [time_to_reach(run.trace, reference.best_val_rejection) for run in method_runs]
        )
        hit = np.isfinite(reach)
        reach_text = (
            f"{reach[hit].mean():.0f} s ({hit.sum()}/{len(method_runs)} runs)"
            if hit.any()
            else f"not reached (0/{len(method_runs)})"
        )
        print(f"| {method} | " + " | ".join(cells) + f" | {reach_text} |")

    elapsed = [run.elapsed for method_runs in runs.values() for run in method_runs]
    print(
        f"\nthroughput and the chosen configurations (mean ± std over {args.repeats} repeats; "
        f"runs took {min(elapsed):.0f}-{max(elapsed):.0f} s of a {args.budget:.0f} s budget; "
        f"test rejection: each run's mean over seeds {list(JUDGE_SEEDS)}, then mean ± std "
        "of those over repeats)"
    )
    print(
        "| method | finished trials per hour (mean ± std) | best validation (mean ± std) "
        "| chosen config's test rejection, 3 seeds (mean over repeats ± std over repeats) |"
    )
    print("|---|---|---|---|")
    run_means = {
        method: [float(np.nanmean(v)) if np.isfinite(v).any() else math.nan for v in values]
        for method, values in tests.items()
    }
    for method, method_runs in runs.items():
        seed_std = [np.std(v, ddof=1) for v in tests[method] if np.isfinite(v).sum() == len(v)]
        within = f"; seed std within a run {np.mean(seed_std):.1f}" if seed_std else ""
        print(
            f"| {method} | {mean_std([run.per_hour for run in method_runs], 0)} "
            f"| {mean_std([run.best for run in method_runs])} "
            f"| {mean_std(run_means[method])}{within} |"
        )
    for other, base in (("population", "tpe-median"), ("gp-median", "tpe-median"), ("gp", "tpe")):
        if other in runs and base in runs:
            print(
                f"\npaired difference of the chosen configuration's test rejection, {other} - "
                f"{base}, same repeat index: "
                + paired_difference(run_means[other], run_means[base], (other, base))
            )
        else:
            print(f"\n(paired difference {other} - {base}: needs both in --methods)")
    print_ensembles(ensembled, run_means)


def print_ensembles(ensembled: dict[str, list[EnsembleJudged]], run_means: dict) -> None:
    """The single choice and the ensemble side by side, with their paired differences."""
    print(
        "\nthe single choice against the ensemble of the best trials (test rejection, mean ± std "
        "over repeats; paired differences per repeat index, the series' rule)"
    )
    print(
        "| method | single choice, 3 seeds retrained | ensemble (kept models) | k chosen "
        "| ensemble - single choice | ensemble - its members' mean |"
    )
    print("|---|---|---|---|---|---|")
    for method, judged in ensembled.items():
        test = [e.test for e in judged]
        members = [e.members_test for e in judged]
        print(
            f"| {method} | {mean_std(run_means[method])} | {mean_std(test)} "
            f"| {', '.join(str(e.k) for e in judged)} "
            f"| {paired_difference(test, run_means[method], ('ensemble', 'single choice'))} "
            f"| {paired_difference(test, members, ('ensemble', 'members'))} |"
        )


if __name__ == "__main__":
    main()
