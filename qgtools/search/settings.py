"""The settings a study records, so that the trials of later runs stay comparable."""

from __future__ import annotations

import optuna

SETTING_DEFAULTS = {"population": 1, "seeds": 1, "max_flops": None}
"""Settings a study recorded before they existed had these values."""


def _check_settings(study: optuna.Study, settings: dict, allow_mismatch: bool) -> None:
    """Record ``settings`` on a study that has none; refuse other settings than the recorded."""
    recorded = study.user_attrs.get("settings")
    if recorded is None:
        study.set_user_attr("settings", settings)
        recorded = study.user_attrs["settings"]  # re-read: a run started at once may have won
    differ = [
        key for key in settings if recorded.get(key, SETTING_DEFAULTS.get(key)) != settings[key]
    ]
    if differ and not allow_mismatch:
        was = ", ".join(f"{key}={recorded.get(key)!r}" for key in differ)
        now = ", ".join(f"{key}={settings[key]!r}" for key in differ)
        raise ValueError(
            f"Study {study.study_name!r} was run with {was} but this run has {now}: the trials "
            "would not be comparable. Use the study's settings, another study name, or "
            "--allow-mismatch (allow_mismatch=True) to mix them anyway."
        )
