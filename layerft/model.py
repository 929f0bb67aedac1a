"""The `model` config group: which backbone and tokenizer, loaded from a package, a hub id, a folder
converted on first use, or built tiny (`layerft/tiny_model.py`); a hub that does not answer is
found by one probe (`layerft/network.py`), not by a library's retries."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import MISSING, OmegaConf

from layerft.config_errors import CONF
from layerft.errors import LayerftError, first_line
from layerft.model_files import local_folder
from layerft.model_hub import no_folder_error, unreachable_error, unreachable_hub_error
from layerft.network import refused_status
from layerft.tiny_model import TinyConfig, build_tiny_backbone, build_tiny_tokenizer

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

# transformers, tokenizers and huggingface_hub are imported where a model or tokenizer loads, not
# above: composing a config imports this module, and a bad config is reported without them.


def _converted_e5_small(cache_dir: Path) -> Path:
    from layerft.e5_offline import converted_e5_small

    return converted_e5_small(cache_dir)


def _converted_e5_small_at(cache_dir: Path) -> Path:
    from layerft.e5_offline import converted_folder

    return converted_folder(cache_dir)


# `converted` sources: name -> writer of a Hugging Face folder under the run's cache_dir (once),
# returning that folder; for models a package ships in its own format. CONVERTED_AT: where each
# writes it, writing nothing (a sweep's plan compares the files of a converted folder).
CONVERTERS: dict[str, Callable[[Path], Path]] = {"e5_small": _converted_e5_small}
CONVERTED_AT: dict[str, Callable[[Path], Path]] = {"e5_small": _converted_e5_small_at}


@dataclass
class ModelConfig:
    """Schema of one backbone option. Exactly one of `package`, `hub_id`, `converted`, `tiny` is the
    source."""

    name: str = MISSING
    package: str | None = None
    package_subdir: str = "model"
    hub_id: str | None = None
    revision: str | None = None
    converted: str | None = None  # a CONVERTERS name
    tiny: TinyConfig | None = None
    trust_remote_code: bool = False
    # Sentence heads (classification, regression) start from the checkpoint's pooler (dense+tanh on
    # the first token), as transformers' BertForSequenceClassification does: set for checkpoints
    # whose pooler was pre-trained (BERT's, with next-sentence prediction). False: all fresh.
    pretrained_pooler: bool = False

    def __post_init__(self) -> None:
        sources = [
            s for s in (self.package, self.hub_id, self.converted, self.tiny) if s is not None
        ]
        if len(sources) != 1:
            names = ("package", "hub_id", "converted", "tiny")
            given = [n for n in names if getattr(self, n) is not None]
            raise LayerftError(
                f"model '{self.name}': set exactly one of package, hub_id, tiny, converted "
                f"(set: {', '.join(given) or 'none'}){_source_fix(self.name, given)}"
            )
        if self.converted is not None and self.converted not in CONVERTERS:
            raise LayerftError(
                f"model '{self.name}': unknown converted source '{self.converted}' "
                f"(known: {', '.join(sorted(CONVERTERS))})"
            )


def _source_fix(name: str, given: list[str]) -> str:
    """How to keep one of two sources: unset the one the shipped option `name` sets (a source
    given on top of it, such as a local folder as `model.hub_id`, is the user's)."""
    if len(given) != 2:
        return ""
    option = CONF / "model" / f"{name}.yaml"
    own = [s for s in given if option.is_file() and OmegaConf.load(option).get(s) is not None]
    if len(own) != 1:  # an option of one's own: which of the two it set is not known here
        return f"; unset one: model.{given[0]}=null or model.{given[1]}=null"
    return (
        f"; model={name} sets {own[0]}: add model.{own[0]}=null, or write a model option of "
        "your own (conf/model/<name>.yaml, or <dir>/model/<name>.yaml read with "
        "'hydra.searchpath=[file://<dir>]')"
    )


def resolve_model_path(cfg: ModelConfig, cache_dir: Path | None = None) -> str:
    """Where from_pretrained reads: a folder inside an installed package, a converted folder under
    `cache_dir`, or the hub id."""
    if cfg.converted is not None:
        if cache_dir is None:
            raise LayerftError(
                f"model '{cfg.name}' is converted on first use: it needs a cache_dir"
            )
        return str(CONVERTERS[cfg.converted](cache_dir))
    if cfg.package is None:
        assert cfg.hub_id is not None
        if cfg.hub_id.startswith(("/", ".", "~")):  # a folder, never a hub id
            folder = Path(cfg.hub_id).expanduser()
            if not folder.is_dir():
                raise no_folder_error(cfg, folder)
            return str(folder)
        if (unreachable := unreachable_hub_error(cfg)) is not None:
            raise unreachable
        return cfg.hub_id
    try:
        module = importlib.import_module(cfg.package)
    except ImportError as err:
        raise LayerftError(
            f"model '{cfg.name}': package '{cfg.package}' is not installed (pip install it, "
            f"or use model=tiny)"
        ) from err
    path = Path(module.__file__).resolve().parent / cfg.package_subdir
    if not (path / "config.json").is_file():
        raise LayerftError(f"model '{cfg.name}': no config.json in {path}")
    return str(path)


def load_tokenizer(cfg: ModelConfig, cache_dir: Path | None = None) -> PreTrainedTokenizerFast:
    """The backbone's fast tokenizer (fast tokenizers give word ids for tagging)."""
    if cfg.tiny is not None:
        return build_tiny_tokenizer()
    from transformers import AutoTokenizer

    tokenizer = from_pretrained(AutoTokenizer, cfg, cache_dir)
    if not tokenizer.is_fast:
        raise LayerftError(f"model '{cfg.name}': layerft needs a fast tokenizer")
    return tokenizer


def load_backbone(
    cfg: ModelConfig, cache_dir: Path | None = None, *, pooler: bool | None = None
) -> PreTrainedModel:
    """A fresh copy of the pre-trained encoder, with its pooler when `pooler` (default:
    `pretrained_pooler`; a run asks for it only for a head that reads it), which
    `heads.build_task_model` hands to a sentence head."""
    pooler = cfg.pretrained_pooler if pooler is None else pooler
    if cfg.tiny is not None:
        return build_tiny_backbone(cfg.tiny, vocab_size=len(build_tiny_tokenizer()), pooler=pooler)
    from transformers import AutoModel

    backbone, loading = from_pretrained(
        AutoModel,
        cfg,
        cache_dir,
        use_safetensors=True,
        add_pooling_layer=pooler,
        output_loading_info=True,
        # transformers 5 keeps a checkpoint's dtype (bf16 stays bf16); the optimizer needs fp32
        # master weights, and mixed precision is the trainer's business.
        dtype=torch.float32,
    )
    if missing := sorted(k for k in loading["missing_keys"] if k.startswith("pooler.")):
        raise LayerftError(
            f"model '{cfg.name}': model.pretrained_pooler=true, but {cfg.hub_id or cfg.name} has no "
            f"pooler weights ({', '.join(missing)} missing); set model.pretrained_pooler=false "
            "for a fresh sentence head"
        )
    return backbone


def from_pretrained(loader: Any, cfg: ModelConfig, cache_dir: Path | None, **kwargs: Any) -> Any:
    """`loader.from_pretrained` on the model's folder or hub id, failing with the offline advice."""
    try:
        return loader.from_pretrained(
            resolve_model_path(cfg, cache_dir),
            revision=cfg.revision,
            trust_remote_code=cfg.trust_remote_code,
            **kwargs,
        )
    except ValueError as err:
        if "trust_remote_code" in str(err):
            # transformers refused to run the model's own code: only the user can vouch for it.
            raise LayerftError(
                f"model '{cfg.name}': {cfg.hub_id} contains custom code (auto_map); set "
                "model.trust_remote_code=true only if you trust it, as that runs the folder's code"
            ) from err
        # A config.json without model_type, or no tokenizer file transformers can read.
        raise _unusable(cfg, err) from err
    except OSError as err:
        if status := refused_status(err):  # transformers calls this "a connection error"
            raise LayerftError(
                f"model '{cfg.name}': the hub refused '{cfg.hub_id}' (HTTP {status}: "
                "authentication or access); check HF_TOKEN, or accept the model's terms on its page"
            ) from err
        if local_folder(cfg):
            raise _unusable(cfg, err) from err
        if "model.safetensors" in str(err):  # found, but with .bin weights only
            raise LayerftError(
                f"model '{cfg.name}': '{cfg.hub_id}' has no model.safetensors at revision "
                f"{cfg.revision or 'main'} (weights load as safetensors only); set model.revision "
                "to one that has it (the hub's conversion pull request, refs/pr/<n>), or convert "
                "the .bin into a local folder with safetensors.torch.save_file"
            ) from err
        raise unreachable_error(cfg, first_line(err)) from err


def _unusable(cfg: ModelConfig, err: Exception) -> LayerftError:
    """What a folder (or hub repository) lacks when transformers cannot build from it."""
    if local_folder(cfg):
        return LayerftError(
            f"model '{cfg.name}': could not load the folder {cfg.hub_id} ({first_line(err)}); "
            "it needs config.json, the tokenizer's files and model.safetensors (weights load "
            "as safetensors only: convert a .bin with safetensors.torch.save_file)"
        )
    where = cfg.hub_id or cfg.package or cfg.converted
    return LayerftError(f"model '{cfg.name}': could not build from '{where}' ({first_line(err)})")


def tokenizer_fingerprint_source(tokenizer: PreTrainedTokenizerFast) -> str:
    """A string that changes whenever tokenization would (for the tokenized-data cache key)."""
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    # Each call sets truncation/padding on the backend; they are per-call arguments, not identity.
    state.pop("truncation", None)
    state.pop("padding", None)
    return json.dumps(state, sort_keys=True)
