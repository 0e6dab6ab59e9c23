"""Preprocessing fitted on the training split only."""

from __future__ import annotations

import numpy as np
import pytest

from qgtools import data
from qgtools.preprocessing import PREPROCESSING_KINDS, Preprocessor


@pytest.mark.parametrize("kind", PREPROCESSING_KINDS)
def test_preprocessing_is_finite_with_zero_taus(kind, jets):
    train, val, _ = data.split(jets)
    assert (train.X == 0).any()
    pre = Preprocessor(kind).fit(train.X)
    out = pre.transform(val.X)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    zeros = np.zeros((1, 45), dtype=np.float32)
    assert np.isfinite(pre.transform(zeros)).all()


def test_log_floor_sits_below_the_smallest_value(jets):
    pre = Preprocessor("log").fit(jets.X)
    out = pre.transform(jets.X)
    zero = jets.X[:, 44] == 0
    assert zero.any()
    assert out[zero, 44].max() < out[~zero, 44].min()
    assert out[zero, 44].max() == pytest.approx(out[~zero, 44].min() - np.log(2), rel=1e-5)


def test_standardize_uses_training_statistics_only(jets):
    train, val, _ = data.split(jets)
    pre = Preprocessor("log+standardize").fit(train.X)
    out = pre.transform(train.X)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=0), 1, atol=1e-3)
    shifted = pre.transform(val.X * 10)
    assert shifted.mean() > 1  # not re-fitted on what it transforms


def test_preprocessor_state_round_trip(jets):
    pre = Preprocessor("log+standardize").fit(jets.X)
    again = Preprocessor.from_state_dict(pre.state_dict())
    np.testing.assert_array_equal(again.transform(jets.X), pre.transform(jets.X))


def test_preprocessor_errors():
    with pytest.raises(ValueError, match="Unknown preprocessing 'sqrt'"):
        Preprocessor("sqrt")
    with pytest.raises(ValueError, match="not fitted"):
        Preprocessor("log").transform(np.ones((2, 45)))
