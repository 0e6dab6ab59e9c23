"""The ensemble of a study's top trials: kept or retrained, and its command line."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import optuna
import pytest
from conftest import make_jets, one_line_error

from qgtools import data, ensembles, metrics, model, search, train

optuna.logging.set_verbosity(optuna.logging.WARNING)
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def kept(tmp_path_factory, toy_npz):
    """A journal study of six one-epoch trials that kept their models, as a run records it."""
    folder = tmp_path_factory.mktemp("kept")
    jets = data.load(source=toy_npz)
    study = optuna.create_study(
        study_name="toy",
        storage=search.open_storage(folder / "s.journal"),
        direction="maximize",
        sampler=search.make_sampler("random", 2),
        pruner=optuna.pruners.NopPruner(),
    )
    settings = search.StudySettings("toy", 6, data=str(toy_npz), max_epochs=1, keep_models=True)
    study.set_user_attr("settings", settings.recorded(jets))
    store = search.artifact_store(folder / "s.journal.artifacts")
    study.optimize(search.make_objective(jets, "cpu", 1, num_threads=1, artifacts=store), 6)
    ranked = sorted(study.trials, key=lambda t: (-t.value, t.number))
    return folder, jets, study, ranked


def val_rejection(predictor, jets) -> float:
    scores, labels = train.evaluate(predictor, jets, split="val")
    return metrics.background_rejection(labels, scores)


def test_the_top_k_trials_kept_models_are_the_ensemble(kept):
    folder, jets, _, ranked = kept
    built = search.top_trials_ensemble("toy", 3, storage=folder / "s.journal", data=jets)
    assert built.trials == tuple(t.number for t in ranked[:3]) and not built.chosen
    X = jets.X[:300]
    for member, trial in zip(built.ensemble.members, ranked[:3], strict=True):
        alone = search.trial_model(trial, folder / "s.journal.artifacts")
        assert member.hparams == search.hparams_of(trial)
        np.testing.assert_array_equal(member.predict(X), alone.predict(X))
    assert built.val_rejection == val_rejection(built.ensemble, jets)
    assert built.best_val_rejection == pytest.approx(ranked[0].value)  # as the search scored it
    assert "optimistic" not in built.lines() and jets.source in built.lines()


def test_choose_applies_the_rule_to_the_five_best_on_validation(kept):
    folder, jets, study, ranked = kept
    built = search.top_trials_ensemble(
        study, artifact_dir=folder / "s.journal.artifacts", data=jets
    )
    top5 = [search.trial_model(t, folder / "s.journal.artifacts") for t in ranked[:5]]
    rule = ensembles.choose_size(top5, jets)
    assert (
        built.chosen and built.tried == rule.val_rejection and sorted(built.tried) == [1, 2, 3, 5]
    )
    assert built.trials == tuple(t.number for t in ranked[: rule.k])
    assert len(built.ensemble.members) == rule.k and "optimistic" in built.lines()


def test_retrained_members_are_the_kept_ones_trained_again(kept):
    folder, jets, _, ranked = kept
    built = search.top_trials_ensemble(
        "toy",
        2,
        storage=folder / "s.journal",
        data=jets,
        retrain=True,
        num_threads=1,
        artifact_dir=folder / "nowhere",  # not read: the members are trained here
    )
    assert built.retrained and "retrained" in built.lines()
    X = jets.X[:300]
    for member, trial in zip(built.ensemble.members, ranked[:2], strict=True):
        alone = search.trial_model(trial, folder / "s.journal.artifacts")
        assert member.hparams == alone.hparams == search.hparams_of(trial)
        np.testing.assert_allclose(member.predict(X), alone.predict(X), atol=1e-5)


def test_a_trial_of_seeds_brings_each_seeds_model_kept_or_retrained(tmp_path):
    jets = make_jets(3000, seed=8)
    study = optuna.create_study(direction="maximize", sampler=search.make_sampler("random", 1))
    store = search.artifact_store(tmp_path)
    (trial,) = search.optimize_population(
        study, jets, "cpu", 1, 1, seeds=2, num_threads=1, artifacts=store
    )
    hp = search.hparams_of(trial)
    X = jets.X[:300]
    built = search.top_trials_ensemble(study, 1, artifact_dir=tmp_path, data=jets)
    again = search.top_trials_ensemble(study, 1, retrain=True, data=jets, num_threads=1)
    for one in (built, again):
        assert [m.hparams for m in one.ensemble.members] == [hp, hp.replace(seed=hp.seed + 1)]
        assert one.best_seeds == 2 and "mean of its 2 seeds' models" in one.lines()
        assert one.best_val_rejection == pytest.approx(trial.value, abs=1e-3)
    np.testing.assert_allclose(built.ensemble.predict(X), again.ensemble.predict(X), atol=1e-5)


def test_the_command_line_prints_both_values_and_saves_the_ensemble_beside_the_storage(
    kept, toy_npz, capsys
):
    folder, jets, _, ranked = kept
    storage = str(folder / "s.journal")
    args = ["ensemble", "--study", "toy", "--storage", storage, "--data", str(toy_npz)]
    assert search.main([*args, "--choose"]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0].startswith("Ensemble of the top ") and "optimistic" in said[0]
    assert said[1].startswith(f"Best single trial #{ranked[0].number}: validation rejection")
    assert said[1].endswith("local file toy.npz: 6000 jets")
    saved = model.load_model(folder / "toy-ensemble.pt")
    k = len(saved.members)
    assert f"top {k} trial" in said[0] and str(folder / "toy-ensemble.pt") in said[2]
    assert [m.hparams for m in saved.members] == [search.hparams_of(t) for t in ranked[:k]]
    assert f"validation rejection {val_rejection(saved, jets):.1f} (k chosen" in said[0]


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--study", "nope", "--top", "1"], "No study 'nope'"),
        (["--study", "toy", "--top", "0"], "top=0 (--top): use a whole number"),
        (["--study", "toy", "--top", "7"], "only 6 complete trials: use 1 to 6"),
        (["--study", "toy", "--top", "1", "--artifact-dir", "nowhere"], "No folder nowhere"),
        (["--study", "toy", "--top", "1", "--data", "sample"], "ran on 6000 jets of local file"),
        (["--study", "bare", "--choose"], "kept no models: rerun it with --keep-models"),
    ],
)
def test_bad_input_is_one_line_naming_what_to_do(kept, capsys, extra, said):
    folder = kept[0]
    storage = search.open_storage(folder / "s.journal")
    bare = optuna.create_study(
        study_name="bare", storage=storage, direction="maximize", load_if_exists=True
    )
    if not bare.trials:
        bare.add_trial(optuna.trial.create_trial(value=1.0))
    assert search.main(["ensemble", "--storage", str(folder / "s.journal"), *extra]) == 2
    line = one_line_error(capsys)
    assert said in line
    assert ("--retrain" in line) == (extra[-1] in ("--choose", "nowhere"))


def test_a_study_recorded_before_kept_models_is_retrained_from_its_settings(
    tmp_path, toy_npz, capsys
):
    journal = tmp_path / "old.journal"
    shutil.copy(DATA / "study-0.1.0.journal", journal)  # qgtools 0.1.0: 2 trials, no models
    args = ["ensemble", "--study", "toy", "--storage", str(journal), "--top", "1"]
    assert search.main(args) == 2
    assert "Study 'toy' kept no models" in one_line_error(capsys)
    built = search.top_trials_ensemble(
        "toy", 1, storage=journal, data=toy_npz, retrain=True, num_threads=1
    )
    study = optuna.load_study(study_name="toy", storage=search.open_storage(journal))
    best = max(study.trials, key=lambda t: t.value)
    assert built.trials == (best.number,)
    assert [m.hparams for m in built.ensemble.members] == [search.hparams_of(best)]
    assert search.main([*args, "--out", str(tmp_path)]) == 2
    assert "is a folder: name a file" in one_line_error(capsys)
