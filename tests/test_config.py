import pytest

from qgtools import config


def test_fast_and_full_sizes(monkeypatch):
    monkeypatch.setenv("QG_FAST", "1")
    fast = config.sizes()
    monkeypatch.delenv("QG_FAST")
    full = config.sizes()
    assert fast.fast and not full.fast
    assert fast.max_epochs < full.max_epochs and fast.n_trials < full.n_trials
    assert 0 < fast.n_jets and full.n_jets == -1


def test_unclear_value_is_an_error(monkeypatch):
    monkeypatch.setenv("QG_FAST", "maybe")
    with pytest.raises(ValueError, match="QG_FAST='maybe'"):
        config.sizes()


def test_only_config_reads_qg_fast():
    from pathlib import Path

    readers = [
        path.name
        for path in Path(config.__file__).parent.glob("*.py")
        for line in path.read_text().splitlines()
        if "QG_FAST" in line
        and ("environ" in line or "getenv" in line)
        and path.name != "config.py"
    ]
    assert readers == []


def test_derived_sizes_are_defined_once_and_never_zero():
    full, fast = config.FULL, config.FAST
    assert (full.grid_epochs, full.trial_epochs, full.study_trials) == (10, 5, 15)
    assert (fast.grid_epochs, fast.trial_epochs, fast.study_trials) == (1, 1, 2)
    assert (full.first_look_trials, fast.first_look_trials) == (5, 2)


def test_notebooks_take_derived_sizes_from_config():
    import json
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "notebooks"
    repeated = ("max_epochs //", "n_trials //")
    for path in [*folder.glob("*.ipynb"), *folder.glob("solutions/*.ipynb")]:
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        assert not [r for r in repeated if r in code], f"{path.name}: use config.Sizes' properties"


@pytest.mark.parametrize(
    "value, expected",
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        (" On ", True),
        ("True\n", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("OFF ", False),
        ("", False),
        ("  ", False),
    ],
)
def test_env_flag_spellings(monkeypatch, value, expected):
    monkeypatch.setenv("QG_SOMETHING", value)
    assert config.env_flag("QG_SOMETHING") is expected


def test_env_flag_unset_is_off(monkeypatch):
    monkeypatch.delenv("QG_SOMETHING", raising=False)
    assert config.env_flag("QG_SOMETHING") is False


@pytest.mark.parametrize("value", ["maybe", "2", "y", "enable", "1.0"])
def test_env_flag_anything_else_names_the_variable_and_the_spellings(monkeypatch, value):
    monkeypatch.setenv("QG_SOMETHING", value)
    with pytest.raises(ValueError, match=f"QG_SOMETHING={value!r} is not understood: use") as info:
        config.env_flag("QG_SOMETHING")
    assert all(word in str(info.value) for word in ("1", "true", "yes", "on", "0", "off"))
