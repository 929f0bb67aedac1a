"""A researcher's own options, in a folder of their own read through hydra.searchpath (README,
"A new task of an existing kind", "A new backbone"): found an extension audit's way."""

from __future__ import annotations

from pathlib import Path

import pytest
from compose import compose_run

from layerft.errors import LayerftError


def test_a_second_source_on_a_package_model_names_a_model_folder_of_ones_own() -> None:
    # The hint named only conf/model/: a user whose options live outside the repo was not told
    # that their own folder's model/ serves too.
    with pytest.raises(LayerftError) as info:
        compose_run("model=minilm", "model.hub_id=/x")
    assert str(info.value).endswith(
        "model=minilm sets package: add model.package=null, or write a model option of your own "
        "(conf/model/<name>.yaml, or <dir>/model/<name>.yaml read with "
        "'hydra.searchpath=[file://<dir>]') (model=minilm)"
    )


def test_a_model_and_a_task_of_ones_own_compose_through_the_search_path(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "my_model.yaml").write_text(
        "defaults: [/base_model, _self_]\nname: my_model\nhub_id: /models/my_model\n"
    )
    (tmp_path / "target_task").mkdir()
    (tmp_path / "target_task" / "my_pairs.yaml").write_text(
        "defaults: [/base_target_task, _self_]\nname: my_pairs\nkind: sequence_classification\n"
        "data_files: {train: /data/train.jsonl, validation: /data/dev.jsonl}\n"
        "text_columns: [claim, reply]\nlabel_column: stance\nlabel_names: [disagree, agree]\n"
    )
    run = compose_run(
        f"hydra.searchpath=[file://{tmp_path}]", "model=my_model", "target_task=my_pairs"
    )
    assert (run.model.name, run.model.hub_id, run.model.package) == (
        "my_model",
        "/models/my_model",
        None,
    )
    assert (run.target_task.text_columns, run.target_task.label_column) == (
        ["claim", "reply"],
        "stance",
    )


def test_a_file_of_ones_own_named_like_a_release_file_is_not_called_one(tmp_path: Path) -> None:
    # A user's own train.tsv with a misspelt column was told "train.tsv is a release file of
    # 'glue_cola', ..., 'glue_wnli', not of 'my_sts'": any GLUE file shares that name.
    from layerft.data_check import record_error

    for split in ("train", "dev"):
        (tmp_path / f"{split}.tsv").write_text("s1\ts2\tscore\na b\tb c\t2.5\nc d\td e\t1.0\n")
    (tmp_path / "target_task").mkdir()
    (tmp_path / "target_task" / "my_sts.yaml").write_text(
        "defaults: [/base_target_task, _self_]\nname: my_sts\nkind: sequence_regression\n"
        f"data_files: {{train: {tmp_path}/train.tsv, validation: {tmp_path}/dev.tsv}}\n"
        "text_columns: [s1, s2]\nlabel_column: scor\nmetrics: [pearson_spearman]\nbest_metric: pearson\n"
    )
    run = compose_run(
        f"hydra.searchpath=[file://{tmp_path}]", "target_task=my_sts", "injection_task=none"
    )
    error = record_error(run)
    assert error is not None and "no column 'scor' (has s1, s2, score)" in error, error
    assert "is a release file of" not in error
    assert error.endswith("; a release file of 'glue_cola', 'glue_mnli', 'glue_mrpc', 'glue_qnli', "
                          "'glue_qqp', 'glue_rte', 'glue_sst2', 'glue_stsb', 'glue_wnli' is also "
                          "named train.tsv: if this is one, choose that task, not 'my_sts'"), error  # fmt: skip
