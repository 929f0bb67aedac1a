"""Audit of `--best-of` (best.csv's rows), a hub data set's change check and the rows' notes on
hand-made rows and caches: behaviours test_sweep_best.py and test_hub_data.py left unguarded
(each test names the mistake it catches)."""

from __future__ import annotations

import os
from pathlib import Path
from unittest.mock import ANY

from compose import compose_run
from test_audit_stats import job, row
from test_hub_data import NOW, SNLI, THEN, serve, snapshot

from layerft.data_changes import changed_since
from layerft.hub_data import changed_hub_data, hub_data_commit, hub_data_entries
from layerft.sweep_best import best_table
from layerft.sweep_notes import notes
from layerft.sweep_table import TableRow, varied_settings

LR = "target_task.lr"


def best_of(combos: list[TableRow], keys: list[str]) -> dict[str, dict]:
    """best.csv's rows by their label over the settings other than `keys`."""
    table = best_table(combos, varied_settings(combos), {}, keys, [])
    return {",".join(f"{k}={v}" for k, v in combo.settings.items() if k not in keys): r
            for combo, r in zip(table.combos, table.rows, strict=True)}  # fmt: skip


# --- sweep_best ----------------------------------------------------------------------------------


def test_the_best_value_is_the_one_with_the_best_seed_mean_not_median() -> None:
    """Kills: np.mean -> np.median in _score and in _candidates (the tests' seed spreads are
    symmetric, where the two agree): one lucky seed lifts 1e-3's mean over 5e-5's, not its
    median."""
    lucky = row({"tuning_mode": "full", LR: "1e-3"}, {1: 0.9, 2: 0.1, 3: 0.1})
    steady = row({"tuning_mode": "full", LR: "5e-5"}, {1: 0.3, 2: 0.3, 3: 0.3})
    [best] = best_of([steady, lucky], [LR]).values()
    assert best[LR] == "1e-3"
    assert best["candidates"] == "5e-5: 0.3000 (3); 1e-3: 0.3667 (3)"


def test_a_group_whose_every_value_failed_shows_its_first() -> None:
    """Kills: `rows[0]` -> `rows[-1]` in _best: with no finished row, the first in table order
    stands for the group, as on a tie."""
    failed = [
        TableRow({"tuning_mode": "lora", LR: lr}, [], [job(1, error="boom", settings={LR: lr})])
        for lr in ("5e-5", "1e-3")
    ]
    [best] = best_of(failed, [LR]).values()
    assert best[LR] == "5e-5"
    assert best["candidates"] == "5e-5: failed; 1e-3: failed"


def test_a_key_every_row_shares_gets_no_column() -> None:
    """Kills: `[k for k in keys if k in varied]` -> `keys` in best_table: a key all rows set to
    one value is a constant (results.md's header), not a column of one value."""
    combos = [row({"tuning_mode": mode, LR: "5e-5"}, {1: 0.5}) for mode in ("full", "lora")]
    table = best_table(combos, varied_settings(combos), {}, [LR], [])
    assert LR not in table.columns and "tuning_mode" in table.columns


def test_a_serving_rows_candidates_and_ties_follow_table_order() -> None:
    """Kills: dropping the sort by table order in _groups: the row without stage 1, first in
    table order, joins the split's group after its own rows, and lost the tie that best.md
    gives the first listed."""
    none = row({"injection_task": "none"}, {1: 0.7, 2: 0.8})
    split = row({"injection_task": "demo_pos", "layer_split": "lower1"}, {1: 0.8, 2: 0.7})
    [best] = best_of([none, split], ["injection_task"]).values()
    assert best["injection_task"] == "none"
    assert best["candidates"] == "none: 0.7500 (2); demo_pos: 0.7500 (2)"


# --- hub_data ------------------------------------------------------------------------------------


def link(hub_cache_dir: Path, hub_id: str, commit: str, names: list[str]) -> None:
    """`names` in the snapshot at `commit`, each a link to a blob named after it."""
    repo = hub_cache_dir / f"datasets--{hub_id.replace('/', '--')}"
    for name in names:
        (repo / "blobs").mkdir(parents=True, exist_ok=True)
        (repo / "blobs" / name.replace("/", "-")).write_text(name)
        path = repo / "snapshots" / commit / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(os.path.relpath(repo / "blobs" / name.replace("/", "-"), path.parent))
    serve(hub_cache_dir, hub_id, commit)


def test_a_config_folder_is_matched_whole_not_by_its_names_prefix(hub_cache_dir: Path) -> None:
    """Kills: `k.startswith(f"{config}/")` -> `k.startswith(config)` in _own_files: GLUE's `mnli`
    took `mnli_matched/`'s files as its own, so a new commit of those read as mnli's data
    changed."""
    names = ["mnli/train.parquet", "mnli_matched/validation.parquet"]
    link(hub_cache_dir, "nyu-mll/glue", THEN, names)
    task = compose_run("target_task=glue_mnli", "injection_task=none").target_task
    [entry] = hub_data_entries({"target_task": task})["run/data_commits"].values()
    assert entry["files"] == {"mnli/train.parquet": "mnli-train.parquet"}


def test_a_result_whose_snapshot_held_no_data_files_is_compared_by_its_commit(
    hub_cache_dir: Path,
) -> None:
    """Kills: dropping `and files` in changed_hub_data: a record whose snapshot held no data files
    (`files: {}`, the hub cache cleared since datasets prepared its copy) compared no blobs, and
    a moved `main` was never a change."""
    serve(hub_cache_dir, SNLI, THEN)
    task = compose_run("target_task=snli", "injection_task=none").target_task
    record = hub_data_entries({"target_task": task})
    assert record["run/data_commits"]["target_task"]["files"] == {}
    serve(hub_cache_dir, SNLI, NOW)
    assert changed_hub_data(record) == [
        f"target_task: {SNLI}@main (commit {THEN[:12]} then, {NOW[:12]} now)"
    ]


def test_a_main_ref_longer_than_a_commit_names_none(hub_cache_dir: Path) -> None:
    """Kills: `re.fullmatch` -> `re.match` in hub_data_commit: a ref of 40 hex digits and more (a
    sha256, a truncated write's junk) passed as a commit."""
    serve(hub_cache_dir, SNLI, "a" * 64)
    assert hub_data_commit(SNLI) is None


def test_a_loading_script_edited_at_a_new_commit_is_no_new_data(hub_cache_dir: Path) -> None:
    """Kills: dropping `[^/]*\\.py` from METADATA: a new commit that edits only the data set's
    loading script read as the result's data changed."""
    train = "plain_text/train.parquet"
    snapshot(hub_cache_dir, THEN, {"snli.py": "script", train: "rows"})
    record = hub_data_entries({"target_task": compose_run("target_task=snli").target_task})
    assert record["run/data_commits"]["target_task"]["files"] == {train: ANY}
    snapshot(hub_cache_dir, NOW, {"snli.py": "a new script", train: "rows"})
    assert changed_hub_data(record) == []


# --- data_changes --------------------------------------------------------------------------------


def test_a_record_without_data_files_still_compares_its_hub_commits(hub_cache_dir: Path) -> None:
    """Kills: `return changed_hub_data(record)` -> `return []` in changed_since: a record that
    keeps no local files (none read, or a result from before they were recorded) had its moved
    hub snapshot ignored."""
    serve(hub_cache_dir, SNLI, NOW)
    record = {"run/data_commits": {"target_task": {"hub_id": SNLI, "commit": THEN}}}
    assert changed_since(record) == [
        f"target_task: {SNLI}@main (commit {THEN[:12]} then, {NOW[:12]} now)"
    ]


def test_changed_splits_are_named_in_sorted_order(tmp_path: Path) -> None:
    """Kills: `sorted(changed)` -> `changed` in changed_since: the splits came in the record's
    order, not the order changed_data and every other list of splits uses."""
    paths = {}
    for split in ("target_task.validation", "injection_task.train"):
        (file := tmp_path / f"{split}.jsonl").write_text("now\n")
        paths[split] = str(file)
    record = {"run/data_files": dict.fromkeys(paths, "0" * 64), "run/data_paths": paths}
    assert changed_since(record) == ["injection_task.train", "target_task.validation"]


# --- sweep_notes ---------------------------------------------------------------------------------


def test_as_many_seeds_as_the_baseline_but_other_ones_is_noted() -> None:
    """Kills: `mine.keys() != theirs.keys()` -> comparing their counts in notes: seeds 1 2
    against a baseline's 2 3 (a mean partly over other seeds) said nothing."""
    base = row({"injection_task": "none"}, {2: 0.6, 3: 0.7})
    combo = row({"injection_task": "demo_pos"}, {1: 0.8, 2: 0.9})
    assert notes(combo, base, "x") == ["seeds differ from baseline: 1 2 vs 2 3"]
