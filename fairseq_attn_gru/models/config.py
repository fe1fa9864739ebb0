"""The ``gru_attn`` config: every flag with its help text, the named architectures' defaults, validation.

One place for all three: fairseq builds the command-line flags from ``GRUAttnConfig``, and
``scripts/flags_table.py`` builds the README's flags table from the same help strings.
"""
import dataclasses
from dataclasses import dataclass, field
from typing import Optional

from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.utils import safe_getattr

from ..errors import config_error
from .attention import ATTENTION_CLASSES
from .decoder_orders import DECODER_ORDERS

ATTENTION_TYPES = ["none", *ATTENTION_CLASSES]
DECODER_STYLES = list(DECODER_ORDERS)


@dataclass
class GRUAttnConfig(FairseqDataclass):
    dropout: float = field(default=0.1, metadata={"help": "dropout probability (default for all dropouts below)"})
    encoder_embed_dim: int = field(default=256, metadata={"help": "encoder embedding dimension"})
    encoder_embed_path: Optional[str] = field(
        default=None, metadata={"help": "pretrained encoder embeddings: text file, one 'word v1 ... vD' per line"}
    )
    encoder_freeze_embed: bool = field(default=False, metadata={"help": "freeze encoder embeddings"})
    encoder_hidden_size: int = field(default=256, metadata={"help": "encoder GRU hidden size (per direction)"})
    encoder_layers: int = field(default=1, metadata={"help": "number of encoder GRU layers"})
    encoder_bidirectional: bool = field(
        default=False,
        metadata={"help": "bidirectional encoder (the named gru_* architectures turn this on; gru_attn does not)"},
    )
    encoder_proj: bool = field(
        default=False,
        metadata={"help": "project encoder outputs to --decoder-hidden-size (lets dot attention work with any sizes)"},
    )
    encoder_dropout_in: Optional[float] = field(
        default=None, metadata={"help": "dropout on encoder input embeddings (default: --dropout)"}
    )
    encoder_dropout_out: Optional[float] = field(
        default=None, metadata={"help": "dropout on encoder outputs and between layers (default: --dropout)"}
    )
    encoder_word_dropout: float = field(
        default=0.0, metadata={"help": "probability of zeroing a source token's whole embedding"}
    )
    encoder_layer_norm: bool = field(default=False, metadata={"help": "layer-normalised encoder GRU"})
    encoder_transition_depth: int = field(default=1, metadata={"help": "GRU transitions per encoder step"})
    decoder_embed_dim: int = field(default=256, metadata={"help": "decoder embedding dimension"})
    decoder_embed_path: Optional[str] = field(
        default=None, metadata={"help": "pretrained decoder embeddings: text file, one 'word v1 ... vD' per line"}
    )
    decoder_freeze_embed: bool = field(default=False, metadata={"help": "freeze decoder embeddings"})
    decoder_hidden_size: int = field(default=256, metadata={"help": "decoder GRU hidden size"})
    decoder_layers: int = field(default=1, metadata={"help": "number of decoder GRU layers"})
    decoder_out_embed_dim: int = field(
        default=256, metadata={"help": "size of the output feature fed to the vocabulary projection"}
    )
    decoder_dropout_in: Optional[float] = field(
        default=None, metadata={"help": "dropout on decoder input embeddings (default: --dropout)"}
    )
    decoder_dropout_out: Optional[float] = field(
        default=None, metadata={"help": "dropout on decoder states and output features (default: --dropout)"}
    )
    decoder_word_dropout: float = field(
        default=0.0, metadata={"help": "probability of zeroing a previous target token's whole embedding"}
    )
    decoder_layer_norm: bool = field(default=False, metadata={"help": "layer-normalised decoder GRU"})
    decoder_transition_depth: int = field(default=1, metadata={"help": "GRU transitions per decoder step"})
    attention_type: ChoiceEnum(ATTENTION_TYPES) = field(
        default="dot",
        metadata={"help": "attention score: none, dot (s·h), general (s·Wh) or concat (vᵀtanh(W₁s+W₂h))"},
    )
    decoder_style: ChoiceEnum(DECODER_STYLES) = field(
        default="luong",
        metadata={
            "help": "luong: GRU step, then attention on the new state; "
            "bahdanau: attention on the previous state, GRU over [embedding; context]; "
            "cgru: Nematus' conditional GRU (GRU step, attention, a second GRU over the context)"
        },
    )
    input_feeding: bool = field(
        default=False, metadata={"help": "Luong input feeding: feed the previous output feature to the GRU"}
    )
    share_decoder_input_output_embed: bool = field(
        default=False, metadata={"help": "share decoder input and output embeddings"}
    )
    share_all_embeddings: bool = field(
        default=False,
        metadata={"help": "share encoder, decoder and output embeddings (needs a joined dictionary and equal dims)"},
    )
    teacher_forcing: float = field(
        default=1.0,
        metadata={"help": "training only: probability of feeding the gold previous token (else the model's own guess)"},
    )
    teacher_forcing_min: Optional[float] = field(
        default=None, metadata={"help": "lower --teacher-forcing linearly to this value (default: no schedule)"}
    )
    teacher_forcing_decay_updates: int = field(
        default=0, metadata={"help": "number of updates over which teacher forcing falls to --teacher-forcing-min"}
    )
    cpu_bf16: bool = field(
        default=False,
        metadata={
            "help": "CPU only: run matmuls and GRUs in bfloat16 under torch.autocast; weights, optimizer state, "
            "logits and loss stay fp32 (fairseq's --bf16 does not work on CPU)"
        },
    )
    int8: bool = field(
        default=False,
        metadata={"help": "CPU inference only: int8 GRUs and Linears, set at load time (docs/inference.md)"},
    )
    max_source_positions: int = field(default=1024, metadata={"help": "longest source the model accepts"})
    max_target_positions: int = field(default=1024, metadata={"help": "longest target the model produces"})


CONFIG_DEFAULTS = {f.name: f.default for f in dataclasses.fields(GRUAttnConfig)}


def base_architecture(args):
    """Fill every unset option with the GRUAttnConfig default (works on Namespace and DictConfig)."""
    for name, default in CONFIG_DEFAULTS.items():
        if safe_getattr(args, name) is None:
            setattr(args, name, default)
    for part in ("encoder", "decoder"):
        for side in ("in", "out"):
            name = f"{part}_dropout_{side}"
            if safe_getattr(args, name) is None:
                setattr(args, name, args.dropout)
    if safe_getattr(args, "teacher_forcing_min") is None:
        args.teacher_forcing_min = args.teacher_forcing


#: what a value of each option type must be, as the one-line refusal says it
VALUE_TYPES = {bool: "True or False, a bool (a string such as 'False' would count as true)",
               int: "an integer", float: "a number", str: "a string"}


def option_type(field_type):
    """(the Python type an option's value must have, whether None is allowed); None for a choice (checked apart)."""
    arguments = getattr(field_type, "__args__", None)
    if arguments and type(None) in arguments:  # Optional[X]
        return next(a for a in arguments if a is not type(None)), True
    return (field_type if field_type in VALUE_TYPES else None), False


def has_type(value, expected) -> bool:
    if expected is bool:
        return isinstance(value, bool)
    if expected in (int, float) and isinstance(value, bool):  # True is an int to Python, not a size
        return False
    return isinstance(value, (int, float) if expected is float else expected)


def check_value_types(cfg) -> None:
    """Every option holds a value of its type. A checkpoint's saved config is untyped, and --model-overrides (or
    from_pretrained's keyword arguments) can put any Python literal in it: "{'int8': 'False'}" used to turn int8 on
    (a non-empty string is true), "{'max_source_positions': '5'}" ended in a TypeError traceback."""
    for config_field in dataclasses.fields(GRUAttnConfig):
        if config_field.name.startswith("_"):
            continue
        expected, optional = option_type(config_field.type)
        value = safe_getattr(cfg, config_field.name)
        if expected is None or (value is None and optional):
            continue
        if not has_type(value, expected):
            raise config_error(_flag(config_field.name), value, VALUE_TYPES[expected])


def validate_config(cfg, task) -> None:
    """Stop on settings that cannot work, naming the flag, the value and what is allowed."""
    check_value_types(cfg)
    for name in (
        "encoder_embed_dim",
        "encoder_hidden_size",
        "encoder_layers",
        "decoder_embed_dim",
        "decoder_hidden_size",
        "decoder_layers",
        "decoder_out_embed_dim",
    ):
        value = getattr(cfg, name)
        if value <= 0:
            raise config_error(_flag(name), value, "a positive integer")
    for name in ("dropout", "encoder_dropout_in", "encoder_dropout_out", "decoder_dropout_in", "decoder_dropout_out",
                 "encoder_word_dropout", "decoder_word_dropout"):
        value = getattr(cfg, name)
        if not 0.0 <= value < 1.0:
            raise config_error(_flag(name), value, "a probability in [0, 1)")
    if str(cfg.attention_type) not in ATTENTION_TYPES:
        raise config_error("--attention-type", cfg.attention_type, "one of " + ", ".join(ATTENTION_TYPES))
    if str(cfg.decoder_style) not in DECODER_STYLES:
        raise config_error("--decoder-style", cfg.decoder_style, "one of " + ", ".join(DECODER_STYLES))
    if not 0.0 <= cfg.teacher_forcing <= 1.0:
        raise config_error("--teacher-forcing", cfg.teacher_forcing, "a probability in [0, 1]")
    if not 0.0 <= cfg.teacher_forcing_min <= cfg.teacher_forcing:
        raise config_error(
            "--teacher-forcing-min", cfg.teacher_forcing_min, f"a value in [0, --teacher-forcing={cfg.teacher_forcing}]"
        )
    if cfg.teacher_forcing_decay_updates < 0:
        raise config_error("--teacher-forcing-decay-updates", cfg.teacher_forcing_decay_updates, "0 or more")
    for name in ("encoder_transition_depth", "decoder_transition_depth"):
        if getattr(cfg, name) < 1:
            raise config_error(_flag(name), getattr(cfg, name), "1 or more")

    style, attention_type = str(cfg.decoder_style), str(cfg.attention_type)
    order = DECODER_ORDERS[style]
    if order.needs_attention and attention_type == "none":
        raise config_error(
            "--attention-type", "none", f"with --decoder-style {style} use dot, general or concat (or use luong)"
        )
    if cfg.input_feeding and not order.takes_input_feeding:
        raise config_error("--input-feeding", True, f"only with --decoder-style luong ({style} already feeds context)")
    encoder_output_dim = _encoder_output_dim(cfg)
    if attention_type == "dot" and encoder_output_dim != cfg.decoder_hidden_size:
        raise config_error(
            "--attention-type",
            "dot",
            f"only when the encoder output size ({encoder_output_dim} = --encoder-hidden-size x directions) equals "
            f"--decoder-hidden-size ({cfg.decoder_hidden_size}); add --encoder-proj or use general/concat",
        )
    if cfg.share_all_embeddings:
        if task.source_dictionary != task.target_dictionary:
            raise config_error("--share-all-embeddings", True, "only with a joined source/target dictionary")
        if cfg.encoder_embed_dim != cfg.decoder_embed_dim:
            raise config_error(
                "--share-all-embeddings",
                True,
                f"only when --encoder-embed-dim ({cfg.encoder_embed_dim}) equals --decoder-embed-dim "
                f"({cfg.decoder_embed_dim})",
            )
        if cfg.decoder_embed_path and cfg.decoder_embed_path != cfg.encoder_embed_path:
            raise config_error("--decoder-embed-path", cfg.decoder_embed_path, "equal to --encoder-embed-path")
    if (cfg.share_all_embeddings or cfg.share_decoder_input_output_embed) and (
        cfg.decoder_out_embed_dim != cfg.decoder_embed_dim
    ):
        raise config_error(
            "--decoder-out-embed-dim",
            cfg.decoder_out_embed_dim,
            f"equal to --decoder-embed-dim ({cfg.decoder_embed_dim}) when sharing input and output embeddings",
        )


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _encoder_output_dim(cfg) -> int:
    if cfg.encoder_proj:
        return cfg.decoder_hidden_size
    return cfg.encoder_hidden_size * (2 if cfg.encoder_bidirectional else 1)


# -- named architectures: defaults only, every one overridable on the command line ---------------

SMALL = dict(
    encoder_embed_dim=128,
    encoder_hidden_size=128,
    encoder_bidirectional=True,
    decoder_embed_dim=128,
    decoder_hidden_size=256,
    decoder_out_embed_dim=128,
)

NAMED_ARCHITECTURES = {
    "gru_seq2seq": dict(SMALL, attention_type="none"),
    "gru_attn_dot": dict(SMALL, attention_type="dot"),
    "gru_attn_general": dict(SMALL, attention_type="general"),
    "gru_attn_concat": dict(SMALL, attention_type="concat"),
    "gru_bahdanau": dict(SMALL, attention_type="concat", decoder_style="bahdanau"),
    # sized for a real 30k-200k sentence corpus (Multi30k, IWSLT)
    "gru_attn_iwslt_de_en": dict(
        encoder_embed_dim=256,
        encoder_hidden_size=256,
        encoder_layers=2,
        encoder_bidirectional=True,
        decoder_embed_dim=256,
        decoder_hidden_size=512,
        decoder_layers=2,
        decoder_out_embed_dim=256,
        attention_type="general",
        dropout=0.3,
    ),
}
# Nematus-style (Sennrich et al. 2017): conditional GRU, concat attention, layer-normalised GRUs; IWSLT sizes
NAMED_ARCHITECTURES["gru_nematus"] = dict(
    NAMED_ARCHITECTURES["gru_attn_iwslt_de_en"], attention_type="concat", decoder_style="cgru",
    encoder_layer_norm=True, decoder_layer_norm=True,
)
