"""A result on a hub data set names the snapshot commit the local Hugging Face cache served for its
`main` (`run/data_commits`); once the cache serves another commit (a later download of a new
version of the data set), the run folder, a sweep's plan and its tables treat the result as on
changed data, as they treat one on an edited local file."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from compose import compose_run
from test_aggregate import write_job

from layerft import run_folder
from layerft.aggregate import aggregate
from layerft.errors import LayerftError
from layerft.hub_data import changed_hub_data, hub_data_commit, hub_data_entries
from layerft.sweep_records import read_sweep

SNLI = "stanfordnlp/snli"
THEN, NOW = "1" * 40, "2" * 40
CHANGED = f"target_task: {SNLI}@main (commit {THEN[:12]} then, {NOW[:12]} now)"


def serve(hub_cache_dir: Path, hub_id: str, commit: str) -> None:
    """The cache as datasets leaves it after an online load: `refs/main` names the commit read."""
    refs = hub_cache_dir / f"datasets--{hub_id.replace('/', '--')}" / "refs"
    refs.mkdir(parents=True, exist_ok=True)
    (refs / "main").write_text(commit)


def on_hub_data(run_dir: Path, seed: int = 1) -> Path:
    """A finished job's folder whose record names the SNLI commit THEN, and a local file for its
    stage 1 (as a KLUE-DP release file beside a hub target task)."""
    local = run_dir.parent / "pos.jsonl"
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_text("{}\n")
    metrics = write_job(run_dir, seed, 0.8, data={"injection_task.train": local}) / "metrics.json"
    commits = {"target_task": {"hub_id": SNLI, "commit": THEN}}
    metrics.write_text(json.dumps(json.loads(metrics.read_text()) | {"run/data_commits": commits}))
    return run_dir


def test_the_commit_is_the_one_the_caches_main_names(hub_cache_dir: Path) -> None:
    assert hub_data_commit(SNLI) is None  # never loaded online
    serve(hub_cache_dir, SNLI, THEN + "\n")
    assert hub_data_commit(SNLI) == THEN
    assert hub_data_commit("stanfordnlp/other") is None
    serve(hub_cache_dir, SNLI, "not a commit")
    assert hub_data_commit(SNLI) is None


def test_only_tasks_read_from_the_hub_record_their_commit(hub_cache_dir: Path) -> None:
    serve(hub_cache_dir, SNLI, THEN)
    cfg = compose_run("target_task=snli", "injection_task=demo_pos")
    tasks = {"injection_task": cfg.injection_task, "target_task": cfg.target_task}
    assert hub_data_entries(tasks) == {
        "run/data_commits": {"target_task": {"hub_id": SNLI, "commit": THEN, "files": {}}}
    }
    local = compose_run("target_task=snli", "target_task.data_files.train=/x.jsonl",
                        "target_task.data_files.validation=/y.jsonl")  # fmt: skip
    assert hub_data_entries({"target_task": local.target_task, "injection_task": None}) == {}


def test_a_result_on_a_commit_the_cache_no_longer_serves_is_on_changed_data(
    hub_cache_dir: Path, tmp_path: Path
) -> None:
    serve(hub_cache_dir, SNLI, THEN)
    sweep = tmp_path / "sweep"
    folder = on_hub_data(sweep / "a")
    write_job(sweep / "b", 2, 0.7)  # on local data: a row to table
    record = json.loads((folder / "metrics.json").read_text())
    assert changed_hub_data(record) == [] and [j.changed for j in read_sweep(sweep)[0]] == [(), ()]
    same = SimpleNamespace(data_files={}, model_folder=None, model_files={})
    run_folder.check_same_data(folder, same, "a hint")  # type: ignore[arg-type]
    serve(hub_cache_dir, SNLI, NOW)  # a later online load read a new version
    assert changed_hub_data(record) == [CHANGED]
    # A table leaves it out, listed on changed data
    [job, _], _ = read_sweep(sweep)
    assert job.changed_data == (CHANGED,)
    result = aggregate(sweep)
    assert "## On changed data (left out of the table)" in result.markdown
    assert f"| a | all | 1 | {CHANGED} | - |" in result.markdown
    # A run of its config refuses to report it as its own, or overwrite it
    with pytest.raises(LayerftError) as refused:
        run_folder.check_same_data(folder, same, "a hint")  # type: ignore[arg-type]
    assert str(refused.value) == (
        f"{folder / 'metrics.json'} is this config's result on other data: the Hugging Face "
        f"cache serves {CHANGED}; replace it with force_rerun=true (sweep.py --force), or run in "
        "a new folder (a hint)"
    )
    # Not compared: a data set the cache no longer names, a record without its commit
    (hub_cache_dir / "datasets--stanfordnlp--snli" / "refs" / "main").unlink()
    assert changed_hub_data(record) == []
    serve(hub_cache_dir, SNLI, NOW)
    assert changed_hub_data({"run/data_commits": {"target_task": {"hub_id": SNLI}}}) == []
    assert changed_hub_data({"run/data_commits": "x"}) == []


def test_a_sweeps_plan_reruns_a_result_on_a_commit_the_cache_no_longer_serves(
    hub_cache_dir: Path, tmp_path: Path
) -> None:
    from layerft import sweep_status
    from layerft.run_record import FINGERPRINT_KEY, RESULTS_VERSION, RESULTS_VERSION_KEY
    from layerft.sweep_grid import expand

    serve(hub_cache_dir, SNLI, THEN)
    [combination] = expand("demo", ["model=tiny", "injection_task=none", "tuning_mode=full",
                                    "seed=1", "target_task=snli"])  # fmt: skip
    job = on_hub_data(tmp_path / "sweep" / "job") / "metrics.json"
    job.write_text(json.dumps(json.loads(job.read_text()) | {
        FINGERPRINT_KEY: combination.fingerprint, RESULTS_VERSION_KEY: RESULTS_VERSION}))  # fmt: skip
    state = sweep_status.status([combination], tmp_path / "sweep")
    assert len(state.done) == 1 and not state.stale
    serve(hub_cache_dir, SNLI, NOW)
    state = sweep_status.status([combination], tmp_path / "sweep")
    assert not state.done and [stale.data for stale in state.stale] == [[CHANGED]]


def test_the_commit_recorded_is_the_one_the_run_read_not_one_a_later_load_moved_to(
    hub_cache_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from compose import compose_config

    from layerft import run as run_module
    from layerft.config import resolve_config
    from layerft.run_record import RunRecord

    overrides = ["model=tiny", "tracker=none", "injection_task=none", "target_task=snli"]
    cfg = compose_run(*overrides, f"cache_dir={tmp_path / 'cache'}")
    resolved = resolve_config(compose_config(*overrides))
    record = RunRecord.of(resolved, {}, overrides, ("target/eval_accuracy", True))
    # The run reads commit THEN; while it trains, another job's online load moves `main` on
    monkeypatch.setattr(run_module, "load_stage_data", lambda cfg: serve(hub_cache_dir, SNLI, THEN))

    def train(*args: object) -> tuple[dict[str, float], None]:
        serve(hub_cache_dir, SNLI, NOW)
        return {"target/eval_accuracy": 0.5}, None

    monkeypatch.setattr(run_module, "train_stages", train)
    (run_dir := tmp_path / "run").mkdir()
    run_module.train_and_record(cfg, run_dir, resolved, record, replacing=False)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["run/data_commits"] == {
        "target_task": {"hub_id": SNLI, "commit": THEN, "files": {}}
    }


def test_results_md_does_not_call_a_moved_hub_snapshot_a_changed_file(
    hub_cache_dir: Path,
    tmp_path: Path,
) -> None:
    serve(hub_cache_dir, SNLI, THEN)
    sweep = tmp_path / "sweep"
    on_hub_data(sweep / "a")
    write_job(sweep / "b", 2, 0.7)
    serve(hub_cache_dir, SNLI, NOW)
    markdown = aggregate(sweep).markdown
    assert f"| a | all | 1 | {CHANGED} | - |" in markdown
    assert (
        "Finished on a data file that holds other bytes now (sha256 of the file at the path the "
        "job read), or a hub snapshot the Hugging Face cache no longer serves; `sweep.py --force` "
        "reruns them:"
    ) in markdown


def snapshot(hub_cache_dir: Path, commit: str, files: dict[str, str]) -> dict[str, str]:
    """SNLI's snapshot at `commit` as huggingface_hub leaves it: each file a link to its
    content's blob; refs/main names the commit. Returns path -> blob of its data files."""
    repo = hub_cache_dir / "datasets--stanfordnlp--snli"
    for name, text in files.items():
        blob = hashlib.sha256(text.encode()).hexdigest()
        (repo / "blobs").mkdir(parents=True, exist_ok=True)
        (repo / "blobs" / blob).write_text(text)
        link = repo / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(repo / "blobs" / blob, link.parent))
    serve(hub_cache_dir, SNLI, commit)
    return {n: hashlib.sha256(t.encode()).hexdigest() for n, t in files.items() if n != "README.md"}


def test_a_new_commit_is_new_data_only_where_the_data_files_blobs_differ(
    hub_cache_dir: Path,
) -> None:
    train, dev = "plain_text/train-00000-of-00001.parquet", "plain_text/validation-00000-of-00001.parquet"  # fmt: skip
    blobs = snapshot(hub_cache_dir, THEN, {"README.md": "card", train: "rows", dev: "dev rows"})
    cfg = compose_run("target_task=snli", "injection_task=none")
    record = hub_data_entries({"target_task": cfg.target_task})
    assert record["run/data_commits"]["target_task"]["files"] == blobs  # the card left out
    # The card edited: a new commit, the same data
    snapshot(hub_cache_dir, NOW, {"README.md": "a new card", train: "rows", dev: "dev rows"})
    assert changed_hub_data(record) == []
    # Only another config's files fetched at the new commit: nothing says this one's changed
    later = "3" * 40
    snapshot(hub_cache_dir, later, {"README.md": "card", "other/train.parquet": "x"})
    assert changed_hub_data(record) == []
    # New rows in a file, or a shard replaced: new data
    changed = f"target_task: {SNLI}@main (commit {THEN[:12]} then, {later[:12]} now)"
    snapshot(hub_cache_dir, later, {dev: "dev rows", train: "new rows"})
    assert changed_hub_data(record) == [changed]
    fourth = "4" * 40
    snapshot(
        hub_cache_dir, fourth, {dev: "dev rows", "plain_text/train-00000-of-00002.parquet": "rows"}
    )
    assert changed_hub_data(record) == [changed.replace(later[:12], fourth[:12])]


def test_a_repository_with_a_folder_per_config_records_that_configs_files(
    hub_cache_dir: Path,
) -> None:
    repo = hub_cache_dir / "datasets--klue--klue"
    for name in ("nli/train.parquet", "sts/train.parquet"):
        (repo / "blobs").mkdir(parents=True, exist_ok=True)
        (repo / "blobs" / name.replace("/", "-")).write_text(name)
        link = repo / "snapshots" / THEN / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(repo / "blobs" / name.replace("/", "-"), link.parent))
    serve(hub_cache_dir, "klue/klue", THEN)
    task = compose_run("target_task=klue_nli", "injection_task=none").target_task
    [entry] = hub_data_entries({"target_task": task})["run/data_commits"].values()
    assert entry["files"] == {"nli/train.parquet": "nli-train.parquet"}
