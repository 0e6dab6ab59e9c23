"""Storage URLs: passwords never shown, the storage from QG_STORAGE."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from conftest import study_with_one_trial

from qgtools import search
from qgtools.search import cli as cli_module

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize(
    ("url", "fragments"),
    [
        ("postgresql://:Xy7Qk9@127.0.0.1:9/db", ["Xy7Qk9"]),  # no user name
        ("postgresql://qg:Xy7@Qk9@127.0.0.1:9/db", ["Xy7", "Qk9"]),  # '@' in the password
        ("postgresql://qg:Xy7@Qk9:Zt4@127.0.0.1:9/db", ["Xy7", "Qk9", "Zt4"]),  # '@' and ':'
        ("postgresql://qg:Xy7:Qk9@127.0.0.1:9/db", ["Xy7", "Qk9"]),  # ':' in the password
        ("postgresql://qg:Xy7%40Qk9@127.0.0.1:9/db", ["Xy7", "Qk9"]),  # percent-encoded
        ("postgresql://qg:Xy7Qk9@127.0.0.1:notaport/db", ["Xy7Qk9"]),  # the parser fails
        ("postgresql://qg@127.0.0.1:9/db?password=Xy7Qk9", ["Xy7Qk9"]),  # in the query
        ("postgresql:/qg:Xy7Qk9@127.0.0.1:9/db", ["Xy7Qk9"]),  # not a URL: a slash missing
    ],
)
def test_a_password_never_appears_in_an_error_whatever_the_url(url, fragments):
    with pytest.raises(ValueError, match=r"\*\*\*") as info:
        search.open_storage(url)
    message = str(info.value)
    assert "\n" not in message and "127.0.0.1" in message
    assert [fragment for fragment in fragments if fragment in message] == []


def test_the_storage_url_can_come_from_QG_STORAGE(tmp_path, monkeypatch, toy_npz, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QG_STORAGE", str(tmp_path / "env.journal"))
    study_with_one_trial(search.open_storage(None), x=1.0)
    assert (tmp_path / "env.journal").exists() and not Path(search.DEFAULT_STORAGE).exists()
    summary = search.run_study("toy", n_trials=1, data=toy_npz, max_epochs=1, progress=False)
    assert summary.best_value == 1.0  # run_study found the study through QG_STORAGE
    search.main(["report", "--study", "toy", "--out", "plots"])
    assert "value 1 " in capsys.readouterr().out  # so did the command line
    explicit = tmp_path / "explicit.journal"
    study_with_one_trial(search.open_storage(explicit), x=2.0)
    search.main(["report", "--study", "toy", "--storage", str(explicit), "--out", "plots"])
    assert "value 2 " in capsys.readouterr().out  # --storage wins over QG_STORAGE
    assert not Path(search.DEFAULT_STORAGE).exists()
    with pytest.raises(SystemExit):
        search.main(["run", "--help"])
    assert "QG_STORAGE" in capsys.readouterr().out and "QG_STORAGE" in cli_module.__doc__
