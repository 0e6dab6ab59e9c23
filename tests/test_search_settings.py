"""The settings a study records, and studies made by qgtools 0.1.0."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest
import torch
from conftest import cli, run_args, x_objective

from qgtools import search
from qgtools.search.settings import _check_settings

optuna.logging.set_verbosity(optuna.logging.WARNING)


DATA = Path(__file__).parent / "data"


def study_at_its_budget(journal: Path, name: str = "toy") -> None:
    """A study with one complete trial and no recorded settings (as made before they were
    recorded): ``run_study`` with ``n_trials=1`` starts no worker on it."""
    study = optuna.create_study(
        study_name=name, storage=search.open_storage(journal), direction="maximize"
    )
    study.enqueue_trial({"x": 1.0})
    study.optimize(x_objective, n_trials=1)


def test_a_study_records_its_settings_and_refuses_runs_that_differ(tmp_path, toy_npz):
    journal = tmp_path / "s.journal"
    study_at_its_budget(journal)
    other = tmp_path / "other.npz"
    other.write_bytes(toy_npz.read_bytes())
    same = {"data": toy_npz, "jets": -1, "space": "cpu", "max_epochs": 1}
    summary = search.run_study("toy", n_trials=1, storage=journal, progress=False, **same)
    assert summary.status == "done"  # the first run's settings are adopted
    recorded = optuna.load_study(study_name="toy", storage=search.open_storage(journal)).user_attrs
    assert recorded["settings"] == {
        "data": "local file toy.npz",
        "jets": 6000,
        "split_seed": search.SPLIT_SEED,
        "space": "cpu",
        "max_epochs": 1,
        "population": 1,
        "seeds": 1,
        "max_flops": None,
    }
    resolved = {**same, "jets": 6000}  # -1 resolved to the jets it loads
    assert search.run_study("toy", n_trials=1, storage=journal, progress=False, **resolved).status
    on_cpu = search.run_study(  # the device is not a recorded setting: no mismatch
        "toy", n_trials=1, storage=journal, progress=False, accelerator="cpu", **resolved
    )
    assert on_cpu.status == "done"
    for change, shown in [
        ({"jets": 3000}, "jets=6000 .*jets=3000"),
        ({"max_epochs": 2}, "max_epochs=1 .*max_epochs=2"),
        ({"space": "reference"}, "space='cpu' .*space='reference'"),
        ({"data": other}, "data='local file toy.npz' .*data='local file other.npz'"),
    ]:
        with pytest.raises(ValueError, match=f"Study 'toy' was run with {shown}") as info:
            search.run_study("toy", n_trials=1, storage=journal, progress=False, **same | change)
        assert "allow" in str(info.value) and "\n" not in str(info.value)
    mixed = search.run_study(
        "toy",
        n_trials=1,
        storage=journal,
        progress=False,
        allow_mismatch=True,
        **same | {"jets": 3000},
    )
    assert mixed.status == "done"
    reloaded = optuna.load_study(study_name="toy", storage=search.open_storage(journal))
    assert reloaded.user_attrs["settings"]["jets"] == 6000  # the study's own settings stay


def test_the_command_line_refuses_a_mismatch_in_one_line_unless_allowed(tmp_path, toy_npz, capsys):
    journal = tmp_path / "s.journal"
    study_at_its_budget(journal)
    args = ["run", "--study", "toy", "--storage", str(journal), "--data", str(toy_npz)]
    args += ["--max-epochs", "1", "--trials", "1"]
    assert search.main([*args, "--jets", "6000"]) == 0
    capsys.readouterr()
    assert search.main([*args, "--jets", "3000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "jets=3000" in err and "--allow-mismatch" in err
    assert search.main([*args, "--jets", "3000", "--allow-mismatch"]) == 0


def test_a_flops_budget_is_a_recorded_setting_and_old_studies_had_none():
    study = optuna.create_study(direction="maximize")
    old = {"data": "toy", "jets": 10, "split_seed": 0, "space": "cpu", "max_epochs": 1}
    study.set_user_attr("settings", old)  # recorded before budgets existed
    _check_settings(study, {**old, "max_flops": None}, allow_mismatch=False)
    with pytest.raises(ValueError, match=r"max_flops=None.*max_flops=20000"):
        _check_settings(study, {**old, "max_flops": 20000}, allow_mismatch=False)


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


def test_a_journal_recorded_by_0_1_0_tops_up_without_allow_mismatch(tmp_path, toy_npz):
    """``data/study-0.1.0.journal``: study ``toy``, 2 trials of ``search run --data toy.npz
    --jets -1 --max-epochs 1 --sampler random --pruner none`` with qgtools 0.1.0."""
    journal = tmp_path / "old.journal"
    shutil.copy(DATA / "study-0.1.0.journal", journal)
    args = run_args(str(journal), toy_npz, trials=3, workers=1)
    out = cli(*args, "--sampler", "random", "--pruner", "none", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    study = optuna.load_study(study_name="toy", storage=search.open_storage(journal))
    assert search.count_finished(study) == 3


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"n_trials": 0}, "n_trials=0, workers=1"),
        ({"seed": -1}, "seed=-1: use a seed of 0 or more"),
        ({"space": "gpu"}, "Unknown space 'gpu'"),
        ({"pruner": "asha"}, "Unknown pruner 'asha'"),
        ({"sampler": "cmaes"}, "Unknown sampler 'cmaes'"),
        ({"enqueue": ["nope"]}, r"Unknown configuration\(s\) \['nope'\]"),
        ({"population": 2, "max_flops": 2e4}, "A population"),
        ({"seeds": 3, "max_flops": 2e4}, "seeds=3 trains each trial as a population"),
        ({"patience": 3}, "patience=3 needs the noise"),
        ({"jets": 0}, "jets=0"),
        ({"study": "a/b"}, "Study name 'a/b'"),
        ({"accelerator": "tpu"}, "accelerator='tpu': use one of auto, cpu, gpu, cuda"),
        pytest.param(
            {"accelerator": "gpu"},
            "accelerator='gpu', but torch sees no GPU",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU"),
        ),
    ],
)
def test_settings_are_checked_once_when_made_naming_the_field(change, said):
    from qgtools.errors import UsageError

    with pytest.raises(ValueError, match=said) as info:
        search.StudySettings(**{"study": "s", "n_trials": 2, **change})
    if not {"space", "pruner", "sampler", "enqueue"} & set(change):
        assert isinstance(info.value, UsageError)


def test_seeds_with_a_flops_budget_are_refused_before_any_storage_but_keep_models(tmp_path):
    journal = tmp_path / "s.journal"
    with pytest.raises(ValueError, match="seeds=3 trains each trial as a population"):
        search.run_study("s", n_trials=2, storage=journal, seeds=3, progress=False, max_flops=2e4)
    assert not journal.exists()
    assert search.StudySettings("s", n_trials=2, seeds=3).seeds == 3  # seeds alone run
    for ways in ({"seeds": 3}, {"population": 2}, {"population": 2, "seeds": 2}):
        assert search.StudySettings("s", n_trials=2, keep_models=True, **ways).keep_models


def test_run_study_the_command_line_and_a_plan_all_fill_the_settings():
    import inspect
    from dataclasses import fields

    from qgtools.search.cli import _parser

    names = [field.name for field in fields(search.StudySettings)]
    keywords = list(inspect.signature(search.run_study).parameters)
    assert sorted(keywords) == sorted([*names, "progress"])
    run = _parser()._subparsers._group_actions[0].choices["run"]
    dests = {action.dest for action in run._actions} - {"help"}
    assert dests == set(names)
    plan = search.StudyPlan("p", n_trials=3, max_epochs=2, sampler="random", max_flops=1e4)
    assert plan.settings() == search.StudySettings(
        "p", n_trials=3, max_epochs=2, sampler="random", max_flops=1e4
    )
    with pytest.raises(ValueError, match="n_trials=0"):
        search.StudyPlan("p", n_trials=0, max_epochs=2).settings()
