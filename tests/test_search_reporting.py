"""The report: its table, where the best model is, its plots."""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna
from conftest import one_line_error, study_with_one_trial

from qgtools import search

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_a_report_on_a_missing_study_is_a_one_line_error_and_creates_nothing(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    journal = tmp_path / "s.journal"
    for storage in (str(journal), f"sqlite:///{tmp_path}/s.db"):
        assert search.main(["report", "--study", "ghost", "--storage", storage]) == 2
        assert "No study" in one_line_error(capsys)
        assert list(tmp_path.iterdir()) == []  # neither the storage nor the plots folder
    study_with_one_trial(search.open_storage(journal), x=1.0)
    before = journal.read_bytes()
    assert search.main(["report", "--study", "ghost", "--storage", str(journal)]) == 2
    assert "'toy'" in one_line_error(capsys)  # the studies there are named
    assert journal.read_bytes() == before and sorted(tmp_path.iterdir()) == [journal]


def test_report_prints_its_table_without_optunas_warnings(tmp_path, capfd):
    journal = tmp_path / "s.journal"
    study = optuna.create_study(
        study_name="toy", storage=search.open_storage(journal), direction="maximize"
    )
    for x in (0.5, 1.0, 1.5):  # 'kind' has one value: the plots warn about such a study
        study.enqueue_trial({"x": x, "kind": "a"})
    study.optimize(
        lambda t: t.suggest_float("x", 0, 2) + 0 * len(t.suggest_categorical("kind", ["a", "b"])),
        n_trials=3,
    )
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = search.report("toy", storage=journal, out=tmp_path / "plots")
    out, err = capfd.readouterr()
    assert written and "#2" in out  # the table and the plots are there
    leaked = [w for w in caught if "optuna" in f"{w.filename} {w.category.__module__}"]
    assert leaked == [] and err == ""  # no warnings, no Optuna log lines ("[W ...")
    assert optuna.logging.get_verbosity() == optuna.logging.WARNING  # the caller's, restored


def conditional_study(journal, n: int, **attrs) -> optuna.Study:
    """A study of ``n`` complete trials whose ``dropout`` exists only when ``use_dropout``."""
    study = optuna.create_study(
        study_name="toy", storage=search.open_storage(journal), direction="maximize"
    )
    for key, value in attrs.items():
        study.set_user_attr(key, value)

    def objective(trial: optuna.Trial) -> float:
        value = trial.suggest_float("lr", 1e-4, 1e-2, log=True) * 100
        value += trial.suggest_int("n_channels", 16, 256, log=True) / 256
        if trial.suggest_categorical("use_dropout", [True, False]):
            value -= trial.suggest_float("dropout", 0.0, 0.5)
        return value + len(trial.suggest_categorical("preprocessing", ["none", "standardize"]))

    study.optimize(objective, n_trials=n)
    return study


def report_figures(monkeypatch, *args, **kwargs) -> tuple[list[Path], dict[str, dict]]:
    """Run ``search.report``, recording the labels and font sizes of each figure it saves."""
    from matplotlib.figure import Figure

    seen, save = {}, Figure.savefig

    def recording(figure, path, **options):
        seen[Path(path).stem.split("-")[-1]] = {
            "ylabels": [ax.get_ylabel() for ax in figure.axes],
            "legends": [
                t.get_text()
                for ax in figure.axes
                if ax.get_legend()
                for t in ax.get_legend().get_texts()
            ],
            "xlabel size": figure.axes[0].xaxis.label.get_fontsize(),
        }
        return save(figure, path, **options)

    monkeypatch.setattr(Figure, "savefig", recording)
    return search.report(*args, **kwargs), seen


def test_report_draws_history_importances_and_slices_named_after_the_objective(
    tmp_path, monkeypatch, capfd
):
    journal = tmp_path / "s.journal"
    conditional_study(journal, n=search.MIN_TRIALS_FOR_IMPORTANCES + 4, settings={"space": "x"})
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written, seen = report_figures(monkeypatch, "toy", storage=journal, out=tmp_path / "plots")
    out, err = capfd.readouterr()
    assert [path.name for path in written] == [
        "toy-history.png",
        "toy-importances.png",
        "toy-slice.png",
    ]
    assert all(path.stat().st_size > 1000 for path in written)  # no contour plot
    assert seen["history"]["ylabels"] == ["validation rejection"]  # a run_study study's metric
    assert "validation rejection" in seen["importances"]["legends"]
    assert seen["slice"]["ylabels"][0] == "validation rejection"
    assert {figure["xlabel size"] for figure in seen.values()} == {12.0}  # readable at PNG size
    assert [w for w in caught if "optuna" in f"{w.filename} {w.category.__module__}"] == []
    assert err == "" and max(map(len, out.splitlines())) <= 100
    assert "    lr=" in out and "{" not in out.split("\n", 1)[1]  # wrapped pairs, not dicts


def test_report_of_a_small_study_says_why_it_draws_no_importances(tmp_path, monkeypatch, capfd):
    journal = tmp_path / "s.journal"
    conditional_study(journal, n=3)
    capfd.readouterr()
    written, seen = report_figures(monkeypatch, "toy", storage=journal, out=tmp_path / "plots")
    out, err = capfd.readouterr()
    assert [path.name for path in written] == ["toy-history.png", "toy-slice.png"]
    assert f"3 complete trials, fewer than {search.MIN_TRIALS_FOR_IMPORTANCES}" in out
    assert seen["history"]["ylabels"] == ["objective value"]  # a study of unknown origin
    assert err == ""
    assert search.importances_skipped(search.MIN_TRIALS_FOR_IMPORTANCES) is None
