"""Lines a mutation audit of file_settings, launch_worker, plots_cells and demo_data found
unguarded: which keys a grid or experiment file is recorded as setting and how results.md counts
them, which shadowed options are named, a heatmap cell's k/n marks whatever order its rows come
in, and the demo corpora's grammar, labels and per-seed data (each test names the mutation it
kills)."""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cloudpickle
import pytest
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, OmegaConf
from omegaconf.basecontainer import BaseContainer
from test_aggregate import lr_heatmap_texts, stopped_before_one_job
from test_demo_data import pos_records  # noqa: F401 - a fixture, generated once here

from layerft import launch_worker
from layerft.demo_data import (
    _NOUNS,
    _POSS,
    _TOPICS,
    generate_demo_pos,
    generate_demo_sentiment,
)
from layerft.file_settings import file_settings, file_settings_lines, setting_text, shadowed_options
from layerft.launch_worker import shippable

GLOBAL = "# @package _global_\n"


def run_hydra(folders: list[Path], choices: dict[str, str | None], **extra: object) -> DictConfig:
    """The `hydra` node file_settings and shadowed_options read: Hydra's own package, then
    `folders` (file sources) in search-path order, then `extra` sources (`schema`: path)."""
    sources = [{"path": "hydra.conf", "schema": "pkg", "provider": "hydra"}]
    sources += [{"path": str(f), "schema": "file", "provider": "main"} for f in folders]
    sources += [{"path": p, "schema": s, "provider": "schema"} for s, p in extra.items()]
    return OmegaConf.create(
        {"runtime": {"choices": choices, "config_sources": sources}, "overrides": {"task": []}}
    )


def write_option(folder: Path, group: str, name: str, text: str) -> None:
    (folder / group).mkdir(parents=True, exist_ok=True)
    (folder / group / f"{name}.yaml").write_text(text)


# --- file_settings ------------------------------------------------------------------------------


def test_an_experiment_files_keys_are_recorded_at_any_depth(tmp_path: Path) -> None:
    """Kills: GLOBAL_GROUPS without "experiment" (an experiment file recorded nothing); the
    credential test on the whole dotted key (`tracker.token` shown in clear: the regex wants
    the name's start); nested `defaults`/`hydra` keys skipped like the top-level nodes; an empty
    mapping dropped (`len(value)` not asked); a third level losing its first part (`b.c`)."""
    write_option(
        tmp_path, "experiment", "e",
        GLOBAL + "defaults:\n  - override /model: tiny\n"
        "a:\n  b:\n    c: 3\n  empty: {}\n  hydra: 1\n  defaults: 2\n"
        "tracker:\n  token: s3cret\nhydra:\n  job:\n    name: x\n",
    )  # fmt: skip
    cfg = OmegaConf.create(
        {
            "a": {"b": {"c": 3}, "empty": {}, "hydra": 1, "defaults": 2},
            "tracker": {"token": "s3cret"},
        }
    )
    hydra = run_hydra([tmp_path], {"experiment": "e", "sweep": None})
    assert file_settings(cfg, hydra) == {
        "a.b.c": "3", "a.empty": "{}", "a.hydra": "1", "a.defaults": "2", "tracker.token": "***",
    }  # fmt: skip


def test_the_file_read_is_the_first_on_the_search_path(tmp_path: Path) -> None:
    """Kills: _option_file searching the sources last to first (it recorded the keys of a file
    Hydra never read), or keeping the last it found (a missing option then raised)."""
    first, second = tmp_path / "first", tmp_path / "second"
    write_option(first, "sweep", "g", GLOBAL + "x: 1\n")
    write_option(second, "sweep", "g", GLOBAL + "y: 2\n")
    cfg = OmegaConf.create({"x": 1, "y": 2})
    assert file_settings(cfg, run_hydra([first, second], {"sweep": "g"})) == {"x": "1"}
    assert file_settings(cfg, run_hydra([first, second], {"sweep": "missing"})) == {}


def test_setting_text_spells_values_as_a_command_line() -> None:
    """Kills: `value is None` dropped (`None`, not `null`); resolve=False (`["${n}",2]`); a
    DictConfig not turned into a dict, or a dict not written as JSON (`{'a': 1}`)."""
    cfg = OmegaConf.create({"n": 1, "l": ["${n}", 2], "d": {"a": "${n}"}})
    assert setting_text(None) == "null"
    assert setting_text(cfg.l) == "[1,2]"
    assert setting_text(cfg.d) == '{"a":1}'
    assert setting_text({"a": 1}) == '{"a":1}'


def test_no_shadowing_is_said_of_hydras_own_groups_or_a_structured_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills: hydra/ groups not skipped (a folder's hydra/launcher/basic.yaml named as not read,
    where Hydra's package decides); folders taken from every source but pkg (Hydra's structured
    source has path "", which is the current folder)."""
    conf, mine = tmp_path / "conf", tmp_path / "mine"
    for folder in (conf, mine):
        write_option(folder, "hydra/launcher", "basic", "x: 1\n")
        write_option(folder, "target_task", "own", "name: own\n")
    monkeypatch.chdir(mine)  # holds target_task/own.yaml, yet is no folder of the search path
    choices = {"hydra/launcher": "basic", "target_task": "own"}
    assert shadowed_options(run_hydra([conf, mine], choices)) == [
        f"{mine}/target_task/own.yaml is not read: target_task=own reads {conf}/target_task/"
        "own.yaml (earlier on the search path); give yours a name of its own"
    ]
    assert shadowed_options(run_hydra([conf], choices, structured="")) == []


def test_results_md_counts_what_each_job_s_file_set() -> None:
    """Kills: a record of no settings ({}) taken for an older layerft's (None); a key set alike
    in only some jobs called set "in every job"; a key set in some jobs only left out of the
    second line; its values in record order, not sorted."""
    jobs = [
        SimpleNamespace(file_settings={"a": "2", "b": "1"}),
        SimpleNamespace(file_settings={"a": "1"}),
        SimpleNamespace(file_settings={}),
    ]
    assert file_settings_lines(jobs) == [  # type: ignore[arg-type]
        "Set by the grid or experiment file in some jobs, or to other values: "
        "`a` (1, 2; not by the file in some), `b` (1; not by the file in some)."
    ]


# --- plots_cells --------------------------------------------------------------------------------


def test_a_cells_missing_combination_is_marked_whatever_the_rows_order() -> None:
    """Kills: grid_counts skipping the first cell of `run` as a rectangle's corner: with the rows
    reversed, none/lora (the only cell in neither demo_pos's column nor full's row) comes first,
    and demo_pos/full's missing lr=2 went unmarked (it averages lr=1 alone: 0.700 of 2 seeds,
    where its grid has 2 combinations x 2 seeds)."""
    assert lr_heatmap_texts(stopped_before_one_job()[::-1]) == {
        ("demo_pos", "full"): "0.700\n1/2 combos\n2/4 runs",
        ("demo_pos", "lora"): "0.600",  # (0.7 + 0.5) / 2
        ("none", "full"): "0.600",
        ("none", "lora"): "0.600",
    }


# --- demo_data ----------------------------------------------------------------------------------

PLURAL_NOUNS = {plural for _, plural in _NOUNS}


def clause_starts(tokens: list[str], tags: list[str]) -> list[int]:
    """Where each clause of a demo_pos sentence starts: first, after a conjunction or a comma."""
    return [0] + [i + 1 for i, (w, t) in enumerate(zip(tokens, tags, strict=True))
                  if t in ("CCONJ", "SCONJ") or w == ","]  # fmt: skip


def test_demo_pos_subjects_agree_with_was_and_were(
    pos_records,  # noqa: F811 - the fixture imported above
) -> None:
    """Kills: a subject pronoun's number dropped ("we was"), a numeral's phrase singular ("two
    dogs was"), was/were swapped, and a singular noun after a numeral ("two dog")."""
    seen = Counter()
    for record in pos_records:
        tokens, tags = record["tokens"], record["tags"]
        for i in clause_starts(tokens, tags):
            if tags[i] == "PRON" and tokens[i] in ("i", "you", "he", "she", "we", "they", "it"):
                verb, plural = tokens[i + 1], tokens[i] in ("you", "we", "they")
            elif tags[i] == "NUM":
                noun = i + 1 + (tags[i + 1] == "ADJ")
                assert tags[noun] == "NOUN" and tokens[noun] in PLURAL_NOUNS, tokens
                verb, plural = tokens[noun + 1], True
            else:
                continue
            if verb in ("was", "were"):
                assert verb == ("were" if plural else "was"), tokens
                seen[verb, plural] += 1
    assert set(seen) == {("was", False), ("were", True)}


def test_demo_pos_possessives_are_pronouns_and_like_can_sit_in_a_noun_phrase(
    pos_records,  # noqa: F811 - the fixture imported above
) -> None:
    """Kills: possessives tagged DET (UD English: "my" is PRON); "a city like paris" never made
    (`kind > 0.92` never true), leaving only "ran like ..." for "like" as ADP."""
    tags_of = Counter()
    inside_np = 0
    for record in pos_records:
        pairs = list(zip(record["tokens"], record["tags"], strict=True))
        tags_of.update(t for w, t in pairs if w in _POSS)
        inside_np += sum(
            (a[1], b, c[1]) == ("NOUN", ("like", "ADP"), "PROPN")
            for a, b, c in zip(pairs, pairs[1:], pairs[2:], strict=False)
        )
    assert set(tags_of) == {"PRON"}
    assert inside_np > 100  # 492 in these records


def test_demo_pos_embeds_one_clause_deep_and_reaches_its_word_limit(
    pos_records,  # noqa: F811 - the fixture imported above
) -> None:
    """Kills: `or nested` dropped (a nested clause saying "that ..." again), a relative clause in
    a nested clause, a fronted subordinate clause built as a main one; and `<` for `<=`
    _MAX_WORDS (no sentence of 24 words: 2 of these 2000 have exactly 24)."""
    most = Counter()
    for record in pos_records:
        pairs = list(zip(record["tokens"], record["tags"], strict=True))
        for that in (("that", "SCONJ"), ("that", "PRON")):
            most[that] = max(most[that], pairs.count(that))
    assert most == {("that", "SCONJ"): 1, ("that", "PRON"): 1}
    assert Counter(len(r["tokens"]) for r in pos_records)[24] == 2


def test_demo_sentiment_contrasts_two_topics_in_its_share_of_reviews() -> None:
    """Kills: one topic drawn for both clauses of "X but Y" ("the film was good but the film was
    bad" contradicts itself); the construction weights (0.4 plain, 0.3 contrast, 0.3
    concessive) dropped for a uniform draw (about 100 of each)."""
    records = generate_demo_sentiment(300, seed=3)
    kinds = Counter(
        "concessive" if "though " in r["text"] else "contrast" if " but " in r["text"] else "plain"
        for r in records
    )
    assert kinds == {"plain": 132, "contrast": 88, "concessive": 80}  # this seed's draw
    topics = set(_TOPICS)
    for text in (r["text"] for r in records if " but " in r["text"]):
        first, second = (
            [w for w in re.findall(r"[a-z]+", part) if w in topics] for part in text.split(" but ")
        )
        assert len(first) == len(second) == 1 and first != second, text


def test_a_seeds_demo_data_is_pinned() -> None:
    """Kills: labels unshuffled (alternating neg/pos), the construction weights dropped, the
    balance tipped the other way for odd sizes (4 of 7 positive), and any change to which
    sentences a seed gives ("!" or "really" never drawn, ...): results on the demo tasks must be
    reproducible across layerft versions."""
    labels = [r["label"][0] for r in generate_demo_sentiment(12, seed=0)]
    assert "".join(labels) == "ppnpnnppnnpn"
    assert generate_demo_sentiment(7, seed=0) == [
        {"text": "the pasta was excellent, but the waiter was boring.", "label": "negative"},
        {"text": "my sister loathed the plot.", "label": "negative"},
        {"text": "my sister enjoyed the service.", "label": "positive"},
        {"text": "my parents loved the hotel, but my sister hated the soup.", "label": "negative"},
        {"text": "the dessert was weak but the food is great.", "label": "positive"},
        {"text": "the room was not horrible.", "label": "positive"},
        {"text": "though the staff was pleasant, the plot is not pleasant.", "label": "negative"},
    ]
    assert [" ".join(r["tokens"]) for r in generate_demo_pos(2, seed=0)] == [
        "this cat tried to take this watch but i laughed to the car like anna .",
        "this garden that took three gardens wanted to cook berlin .",
    ]
    assert generate_demo_pos(2, seed=0)[1]["tags"] == [
        "DET", "NOUN", "PRON", "VERB", "NUM", "NOUN", "VERB", "PART", "VERB", "PROPN", "PUNCT",
    ]  # fmt: skip


# --- launch_worker ------------------------------------------------------------------------------


class Unpicklable(Exception):
    """An error whose pickling raises something other than TypeError."""

    def __reduce__(self) -> Any:
        raise ValueError("no pickling this")


def test_a_failed_jobs_error_is_logged_whole_and_sent_back_as_text(capsys) -> None:
    """Kills: shippable's traceback not printed, or printed for COMPLETED jobs only; the status
    of a return value that cannot be sent back left as it was (COMPLETED); its text naming the
    pickling error instead of the job's; `except TypeError` (pickling errors of other types
    escaped and no return file was written)."""
    try:
        raise KeyError("lost")
    except KeyError as error:
        failed = JobReturn(status=JobStatus.FAILED, _return_value=error)
    assert shippable(failed) is failed and failed._return_value.args == ("lost",)
    assert "Traceback" in capsys.readouterr().err
    done = shippable(JobReturn(status=JobStatus.COMPLETED, _return_value=Unpicklable("x")))
    assert capsys.readouterr().err == ""  # a value, not a failure: no traceback of it
    assert done.status == JobStatus.FAILED
    assert str(done._return_value) == (
        "Unpicklable('x') (cannot be sent back to the launcher: no pickling this)"
    )


class Prctl:
    """ctypes.CDLL(None) as end_with_launcher uses it: records each prctl call."""

    calls: list[tuple[int, int]] = []

    def __init__(self, name: None, use_errno: bool) -> None:
        pass

    def prctl(self, option: int, arg: int) -> int:
        self.calls.append((option, arg))
        return 0


def test_a_job_asks_the_kernel_for_sigterm_when_its_launcher_ends(monkeypatch) -> None:
    """Kills: `and` for `or` (a job replayed by hand, no LAYERFT_LAUNCHER_PID, crashed on
    int(None)); the prctl call dropped, of another option than PR_SET_PDEATHSIG (1) or another
    signal than SIGTERM; the launcher-gone test inverted; its exit code other than 143."""
    Prctl.calls = []
    monkeypatch.setattr(launch_worker.ctypes, "CDLL", Prctl)
    monkeypatch.setattr(
        launch_worker.os, "_exit", lambda code: (_ for _ in ()).throw(SystemExit(code))
    )
    monkeypatch.delenv(launch_worker.LAUNCHER_PID, raising=False)
    launch_worker.end_with_launcher()
    assert Prctl.calls == []
    monkeypatch.setenv(launch_worker.LAUNCHER_PID, str(os.getppid()))
    launch_worker.end_with_launcher()  # its launcher runs: the job goes on
    assert Prctl.calls == [(1, 15)]  # prctl(PR_SET_PDEATHSIG, SIGTERM)
    monkeypatch.setenv(launch_worker.LAUNCHER_PID, str(os.getpid()))  # not our parent: gone
    with pytest.raises(SystemExit) as stop:
        launch_worker.end_with_launcher()
    assert stop.value.code == 128 + 15


def test_the_return_file_is_written_whole_by_a_rename(tmp_path: Path, monkeypatch) -> None:
    """Kills: os.replace dropped (no return file: the launcher read the job as died), and the
    return written in place (a launcher could read half a file)."""
    job_file, return_file = tmp_path / "job.pkl", tmp_path / "return.pkl"
    job = launch_worker.ShippedJob(None, print, OmegaConf.create({}), {})  # type: ignore[arg-type]
    job_file.write_bytes(cloudpickle.dumps(job))
    monkeypatch.setattr(
        launch_worker,
        "run_shipped",
        lambda job: JobReturn(status=JobStatus.COMPLETED, _return_value=7),
    )
    renames = []
    replace = os.replace
    monkeypatch.setattr(
        launch_worker.os, "replace", lambda a, b: renames.append((a, b)) or replace(a, b)
    )
    launch_worker.main(job_file, return_file)
    assert renames == [(tmp_path / "return.pkl.partial", return_file)]
    assert cloudpickle.loads(return_file.read_bytes())._return_value == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.pkl", "return.pkl"]


def test_a_shipped_job_runs_with_hydras_state_as_shipped(monkeypatch) -> None:
    """Kills: Singleton.set_state dropped (the job ran without the launcher's config store and
    resolvers), setup_globals dropped (no `${now:...}` after the shipped state replaced the
    resolvers), and the run dir's key other than hydra.sweep.dir."""
    monkeypatch.setattr(Singleton, "_instances", Singleton._instances)  # restored after
    monkeypatch.setattr(BaseContainer, "_resolvers", BaseContainer._resolvers)
    resolvers = {k: v for k, v in BaseContainer._resolvers.items() if k != "now"}
    state = {"instances": {}, "omegaconf_resolvers": resolvers | {"shipped": lambda: 1}}
    seen: dict[str, Any] = {}

    def run_job(**kwargs: Any) -> str:
        seen.update(kwargs, has=[OmegaConf.has_resolver(n) for n in ("shipped", "now")])
        return "returned"

    monkeypatch.setattr(launch_worker, "run_job", run_job)
    job = launch_worker.ShippedJob(None, print, OmegaConf.create({}), state)  # type: ignore[arg-type]
    assert launch_worker.run_shipped(job) == "returned"
    assert seen["has"] == [True, True]
    assert (seen["job_dir_key"], seen["job_subdir_key"]) == (
        "hydra.sweep.dir",
        "hydra.sweep.subdir",
    )


def test_a_job_process_sets_itself_up_before_running_its_job(monkeypatch) -> None:
    """Kills: cli without quick_exit (3-5 s of final collections per job), guard_console (a
    closed console killed the job), end_with_launcher (an orphan trained on), or
    interrupted_exit (a traceback, not one line, for Ctrl-C or SIGTERM)."""
    from layerft import console, interrupts, processes

    calls: list[Any] = []

    @contextlib.contextmanager
    def recorded(name: str) -> Iterator[None]:
        calls.append(name)
        yield

    monkeypatch.setattr(processes, "quick_exit", lambda: calls.append("quick_exit"))
    monkeypatch.setattr(console, "guard_console", lambda: calls.append("guard_console"))
    monkeypatch.setattr(console, "console_checked", lambda: recorded("console_checked"))
    monkeypatch.setattr(interrupts, "interrupted_exit", lambda: recorded("interrupted_exit"))
    monkeypatch.setattr(launch_worker, "end_with_launcher", lambda: calls.append("end_with"))
    monkeypatch.setattr(launch_worker, "main", lambda *files: calls.append(files))
    monkeypatch.setattr(sys, "argv", ["-c", "job.pkl", "return.pkl"])
    launch_worker.cli()
    assert calls == [
        "quick_exit", "guard_console", "end_with", "console_checked", "interrupted_exit",
        (Path("job.pkl"), Path("return.pkl")),
    ]  # fmt: skip
