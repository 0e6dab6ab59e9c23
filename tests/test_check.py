from qgtools import check


def test_check_reports_each_item(capsys, monkeypatch):
    monkeypatch.setenv("QG_OFFLINE", "1")
    code = check.main()
    out = capsys.readouterr().out
    for name in check.CHECKS:
        assert f"] {name}" in out
    assert "offline sample" in out and "one epoch" in out
    assert code == 0 and "All good" in out


def test_check_says_what_to_fix(capsys, monkeypatch):
    monkeypatch.setitem(check.PINNED, "no-such-package-qg", "1.0")
    assert check.main() == 1
    out = capsys.readouterr().out
    assert (
        "[FIX] packages  missing: no-such-package-qg. Fix: pip install -r requirements.txt" in out
    )
