"""What a run leaves behind: the summary and its wrapped parameters."""

from __future__ import annotations

import optuna

from qgtools import search

optuna.logging.set_verbosity(optuna.logging.WARNING)


PARAMS = {
    "lr": 0.00123456,
    "n_channels": 64,
    "n_layers": 2,
    "layer_norm": True,
    "batch_norm": False,
    "hidden_activation": "SiLU",
    "use_dropout": True,
    "dropout": 0.123456,
    "lr_decay": False,
    "batch_size": 256,
    "preprocessing": "log+standardize",
}


def test_format_params_wraps_whole_pairs_at_the_width():
    text = search.format_params(PARAMS, width=60)
    lines = text.split("\n")
    assert len(lines) > 1 and all(len(line) <= 60 and line.startswith("    ") for line in lines)
    assert lines[0].startswith("    lr=0.00123, n_channels=64, ")  # 3 significant digits
    pairs = [pair.strip() for pair in text.replace("\n", "").split(",")]
    assert pairs[7] == "dropout=0.123" and pairs[-1] == "preprocessing=log+standardize"
    assert len(pairs) == len(PARAMS)  # no pair cut across two lines
    assert all(line.endswith(",") for line in lines[:-1]) and not lines[-1].endswith(",")
    assert search.format_params({"x": 1.0}, indent="  ") == "  x=1"
    assert search.format_params({}) == ""


def test_a_summary_keeps_its_first_line_and_wraps_its_parameters():
    summary = search.StudySummary("toy", 2, 2, "done", 1, 12.345, dict(PARAMS))
    lines = str(summary).split("\n")
    assert lines[0] == "Study 'toy': 2 finished trials; best #1: validation rejection 12.3 with"
    assert lines[1:] == search.format_params(PARAMS).split("\n")
    assert max(map(len, lines)) <= 88
    one = search.StudySummary("toy", 1, 1, "done", 0, 12.345, {"lr": 0.01})
    assert (
        str(one)
        == "Study 'toy': 1 finished trial; best #0: validation rejection 12.3 with\n    lr=0.01"
    )
    assert str(search.StudySummary("toy", 1, 0, "incomplete")).startswith(
        "Study 'toy': 0 finished trials;"
    )
