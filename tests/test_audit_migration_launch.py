"""Mutation audit of record_migration (an earlier fingerprint scheme's records, read through the
config kept beside them) and sweep_launch (run_grid: what a stopped launch keeps and reports, and
the combinations a forced launch leaves out; FailedJobs). Each test names the mutant it kills,
one that no earlier test (test_audit_records.py, test_results.py, test_audit_sweep_launch.py,
test_sweep.py) caught."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from compose import compose_config
from omegaconf import OmegaConf
from test_audit_sweep_launch import (
    NOTHING_LEFT,
    combination,
    launch_that,
    stored_sweeper,
)

from layerft import record_migration, sweep_launch
from layerft.config import resolve_config
from layerft.fingerprint import config_fingerprint, seedless_fingerprint, unhashed_settings
from layerft.record_migration import KEPT_CONFIG, migrated_fingerprints
from layerft.run_record import FINGERPRINT_KEY, FINGERPRINT_SCHEME_KEY
from layerft.sweep_launch import FailedJobs
from layerft.sweep_status import LeftOut

# --- record_migration ----------------------------------------------------------------------------


def keep_config(run_dir: Path, *overrides: str) -> dict:
    """The config of `overrides` kept beside a finished run (KEPT_CONFIG); returns it resolved."""
    (run_dir / KEPT_CONFIG).parent.mkdir(parents=True)
    OmegaConf.save(compose_config(*overrides), run_dir / KEPT_CONFIG)
    return resolve_config(compose_config(*overrides))


def assert_migrated(run_dir: Path, overrides: list[str], scheme: int) -> None:
    """A record of `overrides` written under fingerprint `scheme`, its config kept beside it, is
    found under this scheme's keys (which differ from that scheme's there)."""
    config = keep_config(run_dir, *overrides)
    choices = {"injection_task": overrides[0].split("=")[1]}
    record = {FINGERPRINT_KEY: config_fingerprint(config, scheme=scheme),
              FINGERPRINT_SCHEME_KEY: scheme, "run/choices": choices, "run/overrides": overrides}  # fmt: skip
    assert record[FINGERPRINT_KEY] != config_fingerprint(config)  # the schemes differ here
    assert migrated_fingerprints(run_dir, record) == (
        config_fingerprint(config),
        seedless_fingerprint(config),
        unhashed_settings(config),
    )


def test_a_scheme_2_record_that_set_stage_1s_scaling_is_migrated(tmp_path: Path) -> None:
    """Kills "injection_lr_schedule.scaling" dropped from _READ_SWITCHES: a scheme-2 record that
    set stage 1's scaling (leaving its option's layer_decay unread) kept the fingerprint scheme 2
    gave it, so its result was never found and the job ran again."""
    overrides = [
        "injection_task=demo_pos",
        "lr_schedule@injection_lr_schedule=layerwise_decay",
        "injection_lr_schedule.scaling=uniform",
    ]
    assert_migrated(tmp_path, overrides, scheme=2)


@pytest.mark.parametrize(
    "key", ["tuning_mode.method", "lr_schedule.scaling", "injection_lr_schedule.scaling",
            "layer_split.stage2.policy"],
)  # fmt: skip
def test_every_key_deciding_whether_a_setting_is_read_may_key_a_record_otherwise(key: str) -> None:
    """Kills a key dropped from _READ_SWITCHES (layer_split.stage2.policy decides whether
    lr_multiplier is read, as the scalings decide layer_decay): a scheme-2 record overriding it
    was not migrated."""
    assert record_migration._may_key_otherwise(key) is True


def test_a_scheme_3_record_that_set_stage_1s_data_path_otherwise_is_migrated(
    tmp_path: Path,
) -> None:
    """Kills _respelt_path looking at target_task alone: a scheme-3 record (written before data
    paths were recorded) whose override spelt stage 1's data folder otherwise than as it is read
    kept its old fingerprint, and its result was never found (the job ran again)."""
    overrides = ["injection_task=ud_dp", "injection_task.data_dir=./ud//ewt"]
    assert record_migration._respelt_path(overrides[1]) is True
    assert_migrated(tmp_path, overrides, scheme=3)


@pytest.mark.parametrize(
    "span", ["++target_task.spans.doc_stride=64", "target_task.spans={doc_stride: 64}"]
)
def test_a_scheme_4_record_setting_another_kinds_node_any_way_is_migrated(
    tmp_path: Path, span: str
) -> None:
    """Kills _kind_setting reading the override as written (`str(o)`, not its key): a scheme-4
    classification record that set a span setting with `++`, or the node above it, kept its old
    fingerprint (scheme 4 hashed the span setting), and its result was never found."""
    overrides = ["injection_task=none", "tuning_mode=full", span]
    assert_migrated(tmp_path, overrides, scheme=4)


def test_a_kept_config_that_cannot_be_reached_is_no_migration(tmp_path: Path) -> None:
    """Kills `except OSError` narrowed to FileNotFoundError around the kept config's stat: a
    folder whose `.hydra/finished` is no folder (NotADirectoryError) stopped the plan and the
    tables, where its scheme-1 record is simply not migrated."""
    overrides = ["injection_task=none", "tuning_mode=full"]
    config = resolve_config(compose_config(*overrides))
    (tmp_path / KEPT_CONFIG.parent.parent).mkdir(parents=True)
    (tmp_path / KEPT_CONFIG.parent).write_text("")  # a file where the folder would be
    record = {FINGERPRINT_KEY: config_fingerprint(config, scheme=1), "run/overrides": overrides,
              "run/choices": {"injection_task": "none"}}  # fmt: skip
    assert migrated_fingerprints(tmp_path, record) is None


def test_a_kept_config_this_layerft_cannot_read_is_no_migration(tmp_path: Path) -> None:
    """Kills _kept_config_keys catching ValueError alone: a kept config of an older layerft whose
    keys this one no longer knows raised out of the plan and the tables, where its record is
    simply not migrated (its folder then reads as another config's)."""
    (tmp_path / KEPT_CONFIG).parent.mkdir(parents=True)
    (tmp_path / KEPT_CONFIG).write_text("seed: 1\nno_such_key: 1\n")
    record = {FINGERPRINT_KEY: "f" * 16, "run/overrides": [],
              "run/choices": {"injection_task": "none"}}  # fmt: skip
    assert migrated_fingerprints(tmp_path, record) is None


def test_a_scheme_1_record_without_a_fingerprint_is_not_migrated(tmp_path: Path) -> None:
    """Kills `or FINGERPRINT_KEY not in record` dropped: a failure recorded before its config
    validated (no fingerprint) in a folder whose earlier run kept its config raised KeyError,
    stopping the plan and the tables, where it is no record to migrate."""
    overrides = ["injection_task=none", "tuning_mode=full"]
    keep_config(tmp_path, *overrides)
    failure = {"run/choices": {"injection_task": "none"}, "run/seed": 1,
               "run/overrides": overrides, "run/error": "bad key"}  # fmt: skip
    assert migrated_fingerprints(tmp_path, failure) is None


def test_a_scheme_1_record_without_choices_is_not_migrated(tmp_path: Path) -> None:
    """Kills `not isinstance(choices, dict) or` dropped: a scheme-1 record with no choices
    raised AttributeError (None has no .get), stopping the plan and the tables."""
    overrides = ["injection_task=none", "tuning_mode=full"]
    config = keep_config(tmp_path, *overrides)
    record = {FINGERPRINT_KEY: config_fingerprint(config, scheme=1), "run/overrides": overrides}
    assert migrated_fingerprints(tmp_path, record) is None


# --- sweep_launch: run_grid ----------------------------------------------------------------------


def test_a_forced_launch_lists_its_left_out_jobs_as_its_forced_jobs_are_spelt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills run_grid building its sweeper unforced (`_skipping_sweeper(False, left)`): each job of
    a forced launch carries force_rerun=true, so a repeat listed without it matched no job and
    was trained twice, a blocked one failed in another config's folder."""
    launch_that(monkeypatch, lambda: None)
    left = LeftOut(
        [], [(combination("seed=1"), combination("seed=2"))], [combination("seed=3")], []
    )
    assert sweep_launch.run_grid("demo", ["seed=1,2,3"], tmp_path, True, left) is None
    stored = stored_sweeper()
    assert stored["repeats"] == [["seed=1", "force_rerun=True"]]
    assert stored["blocked"] == [["seed=3", "force_rerun=True"]]


def test_a_stopped_launch_prints_no_traceback_unless_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Kills `if traceback_wanted()` turned around: a job's escaped failure printed its traceback
    above the stop's one line (LAYERFT_TRACEBACK=1 asks for it)."""

    def stop() -> None:
        raise RuntimeError("a job's failure escaped it")

    launch_that(monkeypatch, stop)
    monkeypatch.delenv("LAYERFT_TRACEBACK", raising=False)
    line = "RuntimeError: a job's failure escaped it"
    assert sweep_launch.run_grid("demo", ["seed=1"], tmp_path, False, NOTHING_LEFT) == line
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("LAYERFT_TRACEBACK", "1")
    assert sweep_launch.run_grid("demo", ["seed=1"], tmp_path, False, NOTHING_LEFT) == line
    assert capsys.readouterr().err.startswith("Traceback (most recent call last):")


def test_an_os_error_naming_no_file_is_its_own_line_not_a_folder_not_made() -> None:
    """Kills `and err.filename` dropped: an OSError with no file (a full disk, a broken pipe)
    read `cannot create None: ...`, blaming a job folder that does not exist."""
    full = OSError(28, "No space left on device")
    assert sweep_launch._stopped_by(full) == "OSError: [Errno 28] No space left on device"


def test_a_job_log_hydra_could_not_open_names_the_file() -> None:
    """Kills `log_file_error_line(err) or` dropped: a job's sweep.log Hydra could not open was
    reported as logging's `Unable to configure handler`, naming no file."""
    try:
        try:
            raise PermissionError(13, "Permission denied", "/s/job/sweep.log")
        except PermissionError as cause:
            raise ValueError("Unable to configure handler 'file'") from cause
    except ValueError as err:
        line = sweep_launch._stopped_by(err)
    assert line == "cannot write /s/job/sweep.log: Permission denied"


def test_a_failure_rewritten_during_the_multirun_is_counted(tmp_path: Path, monkeypatch) -> None:
    """Kills FailedJobs' `self.before.get(p) != stamp` -> `p not in self.before`: a job of a reused
    folder that failed again (its failed.json rewritten) was not counted, and train.py -m exited
    0 for a multirun whose job failed."""
    monkeypatch.setattr(FailedJobs, "failed", [])
    folder = tmp_path / "0"
    folder.mkdir()
    (folder / "failed.json").write_text('{"run/error": "ValueError: earlier"}')
    os.utime(folder / "failed.json", ns=(1_000_000_000, 1_000_000_000))
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    report = FailedJobs()
    report.on_multirun_start(config)
    (folder / "failed.json").write_text('{"run/error": "ValueError: again"}')
    report.on_multirun_end(config)
    assert FailedJobs.failed == [folder]
