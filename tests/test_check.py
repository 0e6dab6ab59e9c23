import pytest

from qgtools import check, download


def test_check_reports_each_item(capsys, monkeypatch):
    monkeypatch.setenv("QG_OFFLINE", "1")
    code = check.main()
    out = capsys.readouterr().out
    for name in check.CHECKS:
        assert f"] {name}" in out
    assert "offline sample" in out and "one epoch" in out
    assert code == 0 and "All good" in out


def test_check_says_what_to_fix(monkeypatch):
    monkeypatch.setitem(check.PINNED, "no-such-package-qg", "1.0")
    ok, message = check.check_packages()
    assert not ok
    assert message == "missing: no-such-package-qg. Fix: pip install -r requirements.txt"


def test_a_failing_check_makes_main_fail(capsys, monkeypatch):
    def boom() -> tuple[bool, str]:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(check, "CHECKS", {"packages": check.check_packages, "boom": boom})
    monkeypatch.setitem(check.PINNED, "no-such-package-qg", "1.0")
    assert check.main() == 1
    out = capsys.readouterr().out
    assert "[FIX] packages  missing: no-such-package-qg" in out
    assert "[FIX] boom      RuntimeError: disk on fire" in out and "2 check(s) need fixing" in out


@pytest.mark.parametrize("name", ["QG_OFFLINE", "QG_FAST"])
def test_check_names_an_environment_value_the_notebooks_would_crash_on(
    capsys, monkeypatch, tmp_path, name
):
    monkeypatch.setenv("QG_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(download, "ENERGYFLOW_URL", "http://127.0.0.1:9/QG_nsubs.npz")
    monkeypatch.setitem(check.CHECKS, "training", lambda: (True, "not run in this test"))
    monkeypatch.setenv(name, "maybe")
    code = check.main()
    out = capsys.readouterr().out
    assert code == 1 and "All good" not in out
    assert f"[FIX] environment {name}='maybe' is not understood: use" in out
    assert all(f"] {item}" in out for item in check.CHECKS), "every check still reports"
    assert list(check.CHECKS)[0] == "environment"
    if name == "QG_OFFLINE":  # load() would stop there too: said once, pointing above
        assert "[FIX] data      load() stops at QG_OFFLINE's value: fix it first" in out


def test_check_environment_says_what_is_set(monkeypatch):
    monkeypatch.setenv("QG_OFFLINE", " yes")
    monkeypatch.delenv("QG_FAST", raising=False)
    ok, message = check.CHECKS["environment"]()
    assert (
        ok and "QG_OFFLINE=' yes' (on: no download)" in message and "QG_FAST unset (off)" in message
    )


def test_help_describes_the_checks_and_runs_none(capsys, monkeypatch):
    def must_not_run() -> tuple[bool, str]:
        raise AssertionError("--help ran a check")

    monkeypatch.setattr(check, "CHECKS", {"training": must_not_run})
    with pytest.raises(SystemExit) as exit_info:
        check.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: python -m qgtools.check" in out and "training" in out
