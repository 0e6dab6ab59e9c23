"""The search spaces, their tables and the known configurations."""

from __future__ import annotations

import optuna
import pytest

from qgtools import model, search
from qgtools.model import HParams

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("name", ["cpu", "reference"])
def test_spaces_give_valid_hparams_with_conditional_parameters(name):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(40):
        trial = study.ask()
        hp = search.SPACES[name](trial)
        assert isinstance(hp, HParams)
        study.tell(trial, 0.0)
        if name == "cpu":
            assert ("dropout" in trial.params) == trial.params["use_dropout"]
            assert ("patience" in trial.params) == trial.params["lr_decay"]
            assert hp.factor == (trial.params["factor"] if trial.params["lr_decay"] else 1.0)
        else:
            assert 2 <= hp.input_channels <= 45 and 8 <= hp.n_channels <= 2048


def test_flops_per_jet():
    assert search.flops_per_jet(HParams(n_layers=2, n_channels=10, input_channels=5)) == 2 * (
        50 + 100 + 10
    )


@pytest.mark.parametrize("name", sorted(search.KNOWN_CONFIGURATIONS))
def test_a_known_configuration_goes_through_the_cpu_space_unchanged(name):
    hp = search.KNOWN_CONFIGURATIONS[name]
    again = search.cpu_space(optuna.trial.FixedTrial(search.cpu_space_params(hp)))
    assert again == hp


def test_the_reference_on_cpu_is_the_issue_s_configuration():
    hp = search.REFERENCE_ON_CPU
    assert (hp.n_layers, hp.n_channels, hp.layer_norm, hp.batch_norm) == (4, 256, True, True)
    assert (hp.hidden_activation, hp.dropout, hp.lr, hp.patience, hp.factor) == (
        "Tanh", 0.2, 1e-3, 10, 0.3
    )  # fmt: skip
    assert (hp.batch_size, hp.preprocessing) == (128, "none")


def test_a_configuration_outside_the_cpu_space_is_refused_by_name():
    with pytest.raises(ValueError, match=r"n_layers=6 is outside 1-4.*n_channels=1024"):
        search.cpu_space_params(model.HParams())
    with pytest.raises(ValueError, match="batch_size=100 is not one of"):
        search.cpu_space_params(search.REFERENCE_ON_CPU.replace(batch_size=100))


def test_enqueued_configurations_come_first_and_only_once():
    study = optuna.create_study(direction="maximize", sampler=search.make_sampler("tpe", 0))
    assert search.enqueue_known(study, ["reference", "hand-tuned"]) == ["reference", "hand-tuned"]
    search.enqueue_known(study, ["hand-tuned"])  # a rerun queues nothing new
    for _ in range(3):
        trial = study.ask()
        study.tell(trial, float(search.cpu_space(trial).lr))
    hps = [search.cpu_space(optuna.trial.FixedTrial(t.params)) for t in study.trials]
    assert hps[:2] == [search.KNOWN_CONFIGURATIONS[n] for n in ("reference", "hand-tuned")]
    assert [t.user_attrs.get("enqueued") for t in study.trials] == ["reference", "hand-tuned", None]
    search.enqueue_known(study, ["reference"])  # tried already: not queued again
    assert study.ask().user_attrs.get("enqueued") is None
    with pytest.raises(ValueError, match="Unknown configuration"):
        search.enqueue_known(study, ["best"])


def test_the_cpu_space_draws_from_its_tables_and_its_parameters_check_them():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen: dict[str, optuna.distributions.BaseDistribution] = {}
    for _ in range(30):
        trial = study.ask()
        search.cpu_space(trial)
        study.tell(trial, 0.0)
        seen.update(study.trials[-1].distributions)
    for name, (low, high, log) in search.CPU_RANGES.items():
        assert (seen[name].low, seen[name].high, seen[name].log) == (low, high, log), name
    for name, choices in search.CPU_CHOICES.items():
        assert seen[name].choices == choices, name
    assert seen["hidden_activation"].choices == search.ACTIVATIONS
    for name, (low, high, _) in search.CPU_RANGES.items():
        too_high = high + 1 if isinstance(high, int) else high * 1.5
        hparams = search.REFERENCE_ON_CPU.replace(**{name: too_high})  # dropout and decay on
        with pytest.raises(ValueError, match=f"{name}={too_high} is outside {low}-{high}"):
            search.cpu_space_params(hparams)


def test_the_metrics_are_one_table():
    from qgtools.search.objective import _MEASURES

    assert list(search.METRICS) == list(_MEASURES)
    assert search.directions(["val_rejection", "flops_per_jet"]) == ["maximize", "minimize"]
