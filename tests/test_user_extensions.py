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
