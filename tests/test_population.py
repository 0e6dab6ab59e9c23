"""A population's members are the models fit trains, trained together and kept apart."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import make_jets

from qgtools import model, train
from qgtools.model import HParams
from qgtools.population import fit_population

BASE = HParams(
    n_layers=2,
    n_channels=16,
    dropout=0.0,
    batch_size=64,
    max_epochs=3,
    preprocessing="log+standardize",
    patience=2,
    factor=0.5,
)


@pytest.fixture(scope="module")
def data():
    return make_jets(
        4000, seed=3
    )  # 400 validation jets: an AUC that float noise cannot move by 1e-3


def curves(result: train.TrainResult, key: str) -> np.ndarray:
    return np.array([h[key] for h in result.history])


@pytest.mark.parametrize(
    "hp",
    [BASE, BASE.replace(layer_norm=False, hidden_activation="ReLU", pos_weight=1.5, seed=4)],
    ids=["ln+bn", "bn-only"],
)
def test_a_population_of_one_is_fit(data, hp):
    alone = fit(hp, data)
    (member,) = fit_population([hp], data, num_threads=1)
    for key in ("val_loss", "val_auc", "train_loss"):
        assert np.allclose(curves(member, key), curves(alone, key), atol=1e-3), key
    assert np.allclose(curves(member, "lr"), curves(alone, "lr"))
    assert member.best_epoch == alone.best_epoch and member.status == "ok"


def fit(hp: HParams, data) -> train.TrainResult:
    return train.fit(hp, data, num_threads=1, progress=False)


def test_a_member_of_eight_is_the_same_member_alone(data):
    members = [
        BASE.replace(lr=lr, seed=seed, pos_weight=w, factor=f, patience=p)
        for lr, seed, w, f, p in zip(
            [1e-3, 3e-3, 1e-2, 3e-4, 1e-3, 2e-3, 5e-3, 7e-4],
            range(8),
            [1, 1.2, 0.8, 1, 1, 1.5, 1, 1],
            [0.5, 0.3, 0.5, 0.9, 0.5, 0.5, 0.1, 0.5],
            [2, 1, 2, 3, 1, 2, 1, 2],
            strict=True,
        )
    ]
    together = fit_population(members, data, num_threads=1)
    for k in (0, 3, 6):
        (alone,) = fit_population([members[k]], data, num_threads=1)
        assert np.allclose(curves(together[k], "val_loss"), curves(alone, "val_loss"), atol=1e-3)
        assert np.allclose(curves(together[k], "val_auc"), curves(alone, "val_auc"), atol=1e-3)


def test_a_diverging_member_is_dropped_and_the_others_go_on_unchanged(data):
    plain = BASE.replace(layer_norm=False, batch_norm=False)
    healthy = [plain.replace(seed=1), plain.replace(seed=2, lr=3e-3)]
    blown = plain.replace(lr=1e30)  # the recipe that diverges
    with_it = fit_population([healthy[0], blown, healthy[1]], data, num_threads=1)
    without = fit_population(healthy, data, num_threads=1)
    assert [r.status for r in with_it] == ["ok", "diverged", "ok"]
    assert math.isnan(with_it[1].history[-1]["val_loss"])
    for a, b in zip([with_it[0], with_it[2]], without, strict=True):
        assert np.allclose(curves(a, "val_loss"), curves(b, "val_loss"), atol=1e-3)


def test_pruned_members_stop_and_keep_what_they_reached(data):
    members = [BASE.replace(seed=s) for s in range(4)]
    seen = []

    def prune_member_two_after_the_first_epoch(alive, entries):
        seen.append(list(alive))
        return [2] if entries[0]["epoch"] == 0 else []

    results = fit_population(
        members, data, num_threads=1, on_epoch=prune_member_two_after_the_first_epoch
    )
    assert seen == [[0, 1, 2, 3], [0, 1, 3], [0, 1, 3]]
    assert [r.status for r in results] == ["ok", "ok", "pruned", "ok"]
    assert len(results[2].history) == 1 and len(results[0].history) == 3


def test_members_that_join_later_are_the_same_members_alone(data):
    first = [BASE.replace(seed=s, lr=lr) for s, lr in [(0, 1e-3), (1, 3e-3)]]
    later = [BASE.replace(seed=7, lr=2e-3, factor=0.3, patience=1), BASE.replace(seed=8)]
    rounds = []

    def stop_member_one_at_once(alive, entries):
        rounds.append([(i, e["epoch"]) for i, e in zip(alive, entries, strict=True)])
        return [1] if len(rounds) == 1 else []

    waiting = list(later)

    def one_at_a_time(free):
        return [waiting.pop(0)] if waiting and free else []

    results = fit_population(
        first, data, num_threads=1, on_epoch=stop_member_one_at_once, refill=one_at_a_time
    )
    # member 1 leaves after round 1 and member 2 takes its place; 3 waits for member 0 to end
    assert rounds[:4] == [[(0, 0), (1, 0)], [(0, 1), (2, 0)], [(0, 2), (2, 1)], [(2, 2), (3, 0)]]
    assert [r.status for r in results] == ["ok", "pruned", "ok", "ok"]
    for k, hp in [(2, later[0]), (3, later[1])]:
        (alone,) = fit_population([hp], data, num_threads=1)
        for key in ("val_loss", "val_auc", "lr"):
            assert np.allclose(curves(results[k], key), curves(alone, key), atol=1e-3), key
        assert results[k].best_epoch == alone.best_epoch


def test_a_member_is_a_predictor_that_saves_and_loads(data, tmp_path):
    result = fit_population([BASE.replace(seed=5), BASE.replace(seed=6)], data, num_threads=1)[1]
    scores, labels = train.evaluate(result.predictor, data, split="val")
    from qgtools import metrics

    assert math.isclose(
        metrics.background_rejection(labels, scores), result.best_val_rejection, rel_tol=1e-5
    )
    path = model.save_model(result.predictor, tmp_path / "member.pt")
    again = model.load_model(path)
    assert np.allclose(again.predict(data.X[:50]), result.predictor.predict(data.X[:50]))


def test_members_must_share_a_shape(data):
    with pytest.raises(ValueError, match=r"Member 1 differs from member 0 in \['n_channels'\]"):
        fit_population([BASE, BASE.replace(n_channels=32)], data)
    with pytest.raises(ValueError, match="at least one member"):
        fit_population([], data)


# --------------------------------------------------------------------------- with Optuna


def test_a_population_of_trials_shares_the_sampled_shape_and_is_told_its_values(data):
    import optuna

    from qgtools import search
    from qgtools.population import SHARED_FIELDS

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=search.make_sampler("random", 3))
    trials = search.optimize_population(study, data, "cpu", max_epochs=2, population=4)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    shapes = {tuple(getattr(search.hparams_of(t), f) for f in SHARED_FIELDS) for t in trials}
    assert len(shapes) == 1  # one shape, drawn once
    assert len({t.params["lr"] for t in trials}) == 4  # the rest drawn per member
    for t in trials:
        curve = [t.intermediate_values[e] for e in sorted(t.intermediate_values)]
        assert len(curve) == 2 and t.value == max(curve)
        assert t.user_attrs["population"] == {"first": 0, "size": 4, "seeds": 1}
        assert "worker" in t.user_attrs


def test_freed_places_take_new_trials_of_the_same_shape(data):
    import optuna

    from qgtools import search
    from qgtools.population import SHARED_FIELDS

    study = optuna.create_study(
        direction="maximize",
        sampler=search.make_sampler("random", 1),
        pruner=optuna.pruners.ThresholdPruner(lower=1e9, n_warmup_steps=1),  # prunes at epoch 1
    )
    seen = []  # the trials' states each time a new trial is about to be asked
    trials = search.optimize_population(
        study,
        data,
        "cpu",
        max_epochs=3,
        population=2,
        n_trials=5,
        keep_asking=lambda: seen.append([t.state for t in study.trials]) or len(study.trials) < 4,
    )
    assert len(trials) == 4  # two first, then two more, then keep_asking said no
    pruned = optuna.trial.TrialState.PRUNED
    assert seen[1] == [pruned, pruned]  # the first two were told before their places were refilled
    assert all(t.state == optuna.trial.TrialState.PRUNED for t in trials)
    assert [len(t.intermediate_values) for t in trials] == [2, 2, 2, 2]
    shapes = {tuple(getattr(search.hparams_of(t), f) for f in SHARED_FIELDS) for t in trials}
    assert len(shapes) == 1


def test_a_trial_with_seeds_is_the_mean_of_its_seeds(data):
    import optuna

    from qgtools import search

    study = optuna.create_study(direction="maximize", sampler=search.make_sampler("random", 2))

    def without_dropout(trial):  # dropout draws other random numbers in another population
        return search.cpu_space(trial).replace(dropout=0.0)

    trials = search.optimize_population(
        study, data, without_dropout, max_epochs=2, population=2, seeds=3
    )
    assert len(trials) == 2 and {t.user_attrs["population"]["seeds"] for t in trials} == {3}
    for t in trials:
        hp = search.hparams_of(t)
        alone = fit_population([hp.replace(seed=s) for s in range(3)], data, num_threads=1)
        values = [r.best_val_rejection for r in alone]
        assert np.allclose(t.user_attrs["seed_values"], values, atol=0.05)
        assert math.isclose(t.value, np.mean(t.user_attrs["seed_values"]), rel_tol=1e-3)
        assert math.isclose(t.user_attrs["seed_std"], np.std(values, ddof=1), abs_tol=0.05)
        curve = [t.intermediate_values[e] for e in sorted(t.intermediate_values)]
        means = np.mean([curves(r, "val_rejection") for r in alone], axis=0)
        assert np.allclose(curve, means, atol=0.05)


def test_pruned_members_of_a_population_are_pruned_trials(data):
    import optuna

    from qgtools import search

    study = optuna.create_study(
        direction="maximize",
        sampler=search.make_sampler("random", 0),
        pruner=optuna.pruners.ThresholdPruner(lower=1e9),  # prunes every trial at its first report
    )
    trials = search.optimize_population(study, data, "cpu", max_epochs=3, population=3)
    assert [t.state for t in trials] == [optuna.trial.TrialState.PRUNED] * 3
    assert [len(t.intermediate_values) for t in trials] == [1, 1, 1]


def test_the_command_line_runs_populations_and_records_their_size(toy_npz, tmp_path):
    import optuna
    from test_search import cli, run_args

    from qgtools import search

    journal = str(tmp_path / "s.journal")
    out = cli(
        *run_args(journal, toy_npz, trials=6, epochs=2, workers=1),
        "--population",
        "4",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    study = optuna.load_study(study_name="toy", storage=search.open_storage(journal))
    assert search.count_finished(study) == 6 and study.user_attrs["settings"]["population"] == 4
    firsts = [t.user_attrs["population"]["first"] for t in study.trials]
    sizes = [t.user_attrs["population"]["size"] for t in study.trials]
    # one place while no trial is complete, then two (not yet four), until the budget is met
    assert firsts == [0, 0, 2, 2, 2, 2] and sizes == [1, 1, 2, 2, 2, 2]
    again = cli(*run_args(journal, toy_npz, trials=8, epochs=2, workers=1), cwd=tmp_path)
    assert again.returncode == 2 and "population" in again.stderr  # one at a time: refused


def test_a_study_recorded_before_populations_ran_one_at_a_time(toy_npz, tmp_path):
    import optuna

    from qgtools import search

    journal = str(tmp_path / "old.journal")
    run = {"storage": journal, "data": toy_npz, "max_epochs": 1, "progress": False}
    search.run_study("toy", n_trials=1, **run)
    study = optuna.load_study(study_name="toy", storage=search.open_storage(journal))
    old = {k: v for k, v in study.user_attrs["settings"].items() if k != "population"}
    study.set_user_attr("settings", old)  # what a study made before this setting holds
    assert search.run_study("toy", n_trials=2, **run).status == "done"
    with pytest.raises(ValueError, match="population"):
        search.run_study("toy", n_trials=3, population=2, **run)


def test_populations_run_until_the_trials_are_asked(data):
    import optuna

    from qgtools import search

    study = optuna.create_study(direction="maximize", sampler=search.make_sampler("random", 4))
    trials = search.search_populations(study, data, "cpu", max_epochs=1, population=2, n_trials=5)
    assert [t.number for t in trials] == [0, 1, 2, 3, 4] and len(study.trials) == 5
    firsts = [t.user_attrs["population"]["first"] for t in trials]
    # no trial complete: a population of one (2 trials of its shape); then of two (up to 4)
    assert firsts == [0, 0, 2, 2, 2]
    assert [t.user_attrs["population"]["size"] for t in trials] == [1, 1, 2, 2, 2]
    assert search.search_populations(study, data, "cpu", 1, 2, timeout=0) == []
    with pytest.raises(ValueError, match="n_trials or timeout"):
        search.search_populations(study, data, "cpu", 1, 2)


def test_a_population_is_never_larger_than_the_completed_trials():
    import optuna

    from qgtools import search

    study = optuna.create_study(direction="maximize")
    assert search.population_size(study, 16) == 1  # nothing to compare with yet
    for value in (1.0, 2.0, 3.0):
        study.tell(study.ask(), value)
    study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)  # not a reference
    assert search.population_size(study, 16) == 3
    assert search.population_size(study, 2) == 2


def test_bad_population_settings_are_refused_with_the_reason(data, tmp_path):
    import optuna

    from qgtools import search

    study = optuna.create_study(direction="maximize")
    with pytest.raises(ValueError, match="population=0 and seeds=1 must be at least 1"):
        search.optimize_population(study, data, "cpu", 1, population=0)
    with pytest.raises(ValueError, match="population=2 and seeds=0 must be at least 1"):
        search.optimize_population(study, data, "cpu", 1, population=2, seeds=0)
    two = optuna.create_study(directions=["maximize", "minimize"])
    with pytest.raises(ValueError, match="maximises one value"):
        search.optimize_population(two, data, "cpu", 1, population=2)
    with pytest.raises(ValueError, match="seeds=0 must be positive"):
        search.run_study("s", n_trials=1, storage=str(tmp_path / "j"), seeds=0, progress=False)
    assert study.trials == [] and two.trials == []  # nothing asked before the refusal


def test_an_error_in_a_population_fails_the_workers_trials_with_the_reason(
    data, tmp_path, monkeypatch
):
    import optuna

    from qgtools import search
    from qgtools.search.workers import _Job, _population_in_worker

    def breaks_at_the_second_trial(trial):
        if trial.number == 3:
            raise RuntimeError("disk full")
        return search.cpu_space(trial)

    monkeypatch.setitem(search.SPACES, "breaks", breaks_at_the_second_trial)
    journal = str(tmp_path / "s.journal")
    study = optuna.create_study(
        study_name="s", storage=search.open_storage(journal), direction="maximize"
    )
    job = _Job(
        study="s", storage=journal, n_trials=10, data="sample", jets=len(data), space="breaks",
        sampler="random", pruner="none", max_epochs=1, seed=0,
        expected_data=(data.origin, len(data)), population=4,
    )  # fmt: skip
    for value in (1.0, 2.0):  # two complete trials: a population of 2 may start
        study.tell(study.ask(), value)
    assert _population_in_worker(study, data, job, left=10) == []
    failed = optuna.load_study(study_name="s", storage=search.open_storage(journal)).trials[2:]
    assert [t.state for t in failed] == [optuna.trial.TrialState.FAIL] * 2  # asked, and asking
    assert {t.user_attrs["fail_reason"] for t in failed} == {"RuntimeError: disk full"}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_two_workers_run_populations_with_seeds_on_a_database(kind, toy_npz, tmp_path, request):
    import optuna
    from test_search import cli, run_args

    from qgtools import search

    url = (
        f"sqlite:///{tmp_path / 's.db'}"
        if kind == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    args = run_args(url, toy_npz, trials=6, epochs=2, workers=2)
    out = cli(*args, "--population", "3", "--seeds", "2", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    study = optuna.load_study(study_name="toy", storage=search.open_storage(url))
    assert 6 <= search.count_finished(study) <= 7  # up to workers - 1 over, as any run
    assert study.user_attrs["settings"]["seeds"] == 2
    for t in study.trials:
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert len(t.user_attrs["seed_values"]) == 2
            assert math.isclose(t.value, np.mean(t.user_attrs["seed_values"]), abs_tol=1e-3)
