"""The ensembles of trained networks and the one rule that chooses their size."""

from __future__ import annotations

import numpy as np
import pytest

from qgtools import ensembles
from qgtools.metrics import background_rejection
from qgtools.model import Ensemble, HParams
from qgtools.population import fit_population
from qgtools.train import evaluate

TINY = HParams(n_layers=1, n_channels=8, batch_size=256, preprocessing="log+standardize")


def test_the_seeds_of_one_configuration_train_as_one_population_and_average(jets):
    ensemble, runs = ensembles.of_seeds(TINY, jets, seeds=(3, 4), max_epochs=1)
    assert [r.predictor.hparams.seed for r in runs] == [3, 4]
    alone = fit_population([TINY.replace(seed=s) for s in (3, 4)], jets, max_epochs=1)
    X = jets.X[:200]
    for run, same in zip(runs, alone, strict=True):  # the same trainings as fit_population's
        np.testing.assert_array_equal(run.predictor.predict(X), same.predictor.predict(X))
    expected = np.mean([r.predictor.predict(X) for r in runs], axis=0)
    np.testing.assert_allclose(ensemble.predict(X), expected)


def test_the_rule_keeps_the_best_size_on_validation_and_ties_go_to_the_smaller(jets, monkeypatch):
    _, runs = ensembles.of_seeds(TINY, jets, seeds=range(5), max_epochs=1)
    ranked = [r.predictor for r in runs]
    for table, chosen in [
        ({1: 20.0, 2: 21.0, 3: 22.5, 5: 22.0}, 3),
        ({1: 20.0, 2: 22.5, 3: 22.5, 5: 22.5}, 2),  # a tie: the smaller k
        ({1: 23.0, 2: 21.0, 3: 22.5, 5: 22.0}, 1),
    ]:
        monkeypatch.setattr(
            ensembles, "rejection", lambda ensemble, data, t=table: t[len(ensemble.members)]
        )
        choice = ensembles.choose_size(ranked, jets)
        assert choice.k == chosen and choice.ensemble.members == ranked[:chosen]
        assert choice.val_rejection == table
        assert f"k = {chosen} of 5" in choice.line() and "optimistic" in choice.line()


def test_the_rule_reads_the_validation_split_and_only_the_sizes_it_can_fill(jets):
    _, runs = ensembles.of_seeds(TINY, jets, seeds=range(3), max_epochs=1)
    ranked = [r.predictor for r in runs]
    choice = ensembles.choose_size(ranked, jets)
    assert sorted(choice.val_rejection) == [1, 2, 3]  # 5 members are more than there are
    for k, value in choice.val_rejection.items():
        scores = np.mean([evaluate(p, jets, split="val")[0] for p in ranked[:k]], axis=0)
        labels = evaluate(ranked[0], jets, split="val")[1]
        assert value == background_rejection(labels, scores)
    with pytest.raises(ValueError, match="at least one size"):
        ensembles.choose_size([], jets)
    with pytest.raises(ValueError, match="at least one size"):
        ensembles.choose_size(ranked, jets, sizes=(5,))


def test_an_ensemble_among_the_ranked_counts_as_one_and_brings_its_members(jets):
    _, runs = ensembles.of_seeds(TINY, jets, seeds=range(3), max_epochs=1)
    a, b, c = (r.predictor for r in runs)
    choice = ensembles.choose_size([Ensemble([a, b]), c], jets, sizes=(1, 2, 3))
    assert sorted(choice.val_rejection) == [1, 2]  # two ranked entries, not three members
    assert choice.ensemble.members == [a, b, c][: 2 if choice.k == 1 else 3]
    assert ensembles.members_of([c, Ensemble([a, b])]) == [c, a, b]
