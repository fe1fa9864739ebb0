"""``--arch gru_attn``: the model fairseq builds from ``GRUAttnConfig``, and its named architectures."""
import weakref
from typing import Dict, List, Optional, Tuple

import torch
from fairseq.models import FairseqEncoderDecoderModel, register_model, register_model_architecture
from fairseq.utils import safe_getattr
from torch import Tensor

from . import trained_on
from .attention import build_attention
from .config import NAMED_ARCHITECTURES, GRUAttnConfig, base_architecture, validate_config
from .decoder import GRUDecoder
from .decoder_orders import build_decoder_order
from .embeddings import build_embedding
from .encoder import GRUEncoder


@register_model("gru_attn", dataclass=GRUAttnConfig)
class GRUAttnModel(FairseqEncoderDecoderModel):
    """GRU encoder-decoder with selectable attention (see GRUAttnConfig for every option)."""

    #: every instance alive in this process: fixes scoped to this package's models ask whether one is loaded
    live_instances = weakref.WeakSet()

    def __init__(self, encoder, decoder):
        super().__init__(encoder, decoder)
        GRUAttnModel.live_instances.add(self)
        #: ``--int8``: quantize to int8 once the checkpoint's weights are loaded (inference/int8.py)
        self.int8 = False

    # -- the forward pass, explicit for TorchScript (fairseq's takes **kwargs) --------------------------------------

    def forward(self, src_tokens: Tensor, src_lengths: Tensor, prev_output_tokens: Tensor,
                features_only: bool = False) -> Tuple[Tensor, Dict[str, List[Optional[Tensor]]]]:
        encoder_out = self.encoder(src_tokens, src_lengths=src_lengths)
        return self.decoder(prev_output_tokens, encoder_out=encoder_out, features_only=features_only)

    def __prepare_scriptable__(self):
        """``torch.jit.script`` calls this first: refuse, in one line, what the scripted model cannot run."""
        if self.encoder.cpu_bf16:
            from ..errors import UserError

            raise UserError("--cpu-bf16 runs the model under torch.autocast, which TorchScript cannot enter; its "
                            "weights are fp32: script it with cpu_bf16 off (scripts/export_torchscript.py --fp32)")
        return self

    @torch.jit.export
    def get_normalized_probs(self, net_output: Tuple[Tensor, Optional[Dict[str, List[Optional[Tensor]]]]],
                             log_probs: bool, sample: Optional[Dict[str, Tensor]] = None) -> Tensor:
        """fairseq's, exported so that SequenceGenerator can call it on the scripted model."""
        return self.get_normalized_probs_scriptable(net_output, log_probs, sample)

    @torch.jit.export
    def max_decoder_positions(self) -> int:
        return self.decoder.max_positions()

    # -- int8 inference (fairseq_attn_gru/inference/int8.py): a load-time step, never training ----------------

    def load_state_dict(self, state_dict, strict=True, model_cfg=None, args=None):
        result = super().load_state_dict(state_dict, strict=strict, model_cfg=model_cfg, args=args)
        if self.int8:
            from ..inference.int8 import quantize_model

            quantize_model(self, cpu_bf16=self.encoder.cpu_bf16)
        return result

    def prepare_for_inference_(self, cfg):
        from ..errors import UserError, running_fairseq_tool
        from ..inference.int8 import check_int8_allowed, int8_requested, quantize_model

        common = cfg.get("common") if hasattr(cfg, "get") else getattr(cfg, "common", None)
        if running_fairseq_tool() and getattr(common, "bf16", False):  # the tool's own flags (the hub passes the
            # checkpoint's training config here, whose --bf16 says how it was trained)
            raise UserError("--bf16 is not applied by fairseq's generation tools: the model would run in fp32; for "
                            "bfloat16 on a CPU use --model-overrides \"{'cpu_bf16': True}\", on a GPU --fp16")
        if self.int8 or int8_requested(cfg):  # the override also reaches checkpoints saved before --int8 existed
            self.int8 = True
            quantize_model(self, cpu_bf16=self.encoder.cpu_bf16)
            check_int8_allowed(self)  # still on CPU after fairseq's .cuda()/.half()
        super().prepare_for_inference_(cfg)

    def train(self, mode: bool = True):
        if mode and self.int8:
            from ..errors import UserError

            raise UserError("--int8 is for inference only: train in fp32 and quantize at load time "
                            "(--model-overrides \"{'int8': True}\" or from_pretrained(..., int8=True))")
        return super().train(mode)

    @classmethod
    def from_pretrained(cls, model_name_or_path, checkpoint_file="model.pt", data_name_or_path=".", int8=False,
                        **kwargs):
        """fairseq's hub interface (inference/hub.py: plus ``translate_with_attention``, and one-line refusals of
        sentences longer than the model takes); ``int8=True`` quantizes the loaded models (any checkpoint, old ones
        too). ``model_name_or_path`` is the checkpoint's directory, ``checkpoint_file`` its name there."""
        import logging
        import os
        from pathlib import Path

        from fairseq import hub_utils

        from ..errors import UserError
        from ..inference.hub import GRUAttnHubInterface
        from ..inference.int8 import check_int8_allowed, quantize_model, requested_flag

        path = Path(str(model_name_or_path))
        if path.is_file():  # fairseq would join it with checkpoint_file: NotADirectoryError
            raise UserError(f"from_pretrained({str(path)!r}): that is a file, and from_pretrained takes the "
                            f"checkpoint's directory and its file name: from_pretrained({str(path.parent)!r}, "
                            f"checkpoint_file={path.name!r})")
        if "://" not in str(model_name_or_path):  # a local directory (fairseq also takes archive URLs)
            if not path.is_dir():
                raise UserError(f"from_pretrained({str(path)!r}): no such directory (give the directory that holds "
                                "the checkpoint, and checkpoint_file=its file name)")
            for name in str(checkpoint_file).split(os.pathsep):  # an ensemble's files joined by os.pathsep
                if not (path / name).is_file():
                    raise UserError(f"from_pretrained: checkpoint_file={name!r}: no such file in {str(path)!r}")
        int8 = requested_flag("int8", int8)
        loaded = hub_utils.from_pretrained(model_name_or_path, checkpoint_file, data_name_or_path,
                                           archive_map=cls.hub_models(), **kwargs)
        logging.getLogger("fairseq.models.fairseq_model").info(loaded["args"])  # as fairseq's from_pretrained
        hub = GRUAttnHubInterface(loaded["args"], loaded["task"], loaded["models"])
        if int8:
            for model in hub.models:
                model.int8 = True
                quantize_model(model, cpu_bf16=model.encoder.cpu_bf16)
                check_int8_allowed(model)
        return hub

    @classmethod
    def build_model(cls, cfg, task):
        base_architecture(cfg)
        validate_config(cfg, task)
        trained_on.check_and_record(task)  # the checkpoint being loaded was trained for this task's data
        attention_type = str(cfg.attention_type)

        encoder_embed = build_embedding(
            task.source_dictionary, cfg.encoder_embed_dim, cfg.encoder_embed_path, "--encoder-embed-path"
        )
        if cfg.share_all_embeddings:
            decoder_embed = encoder_embed
        else:
            decoder_embed = build_embedding(
                task.target_dictionary, cfg.decoder_embed_dim, cfg.decoder_embed_path, "--decoder-embed-path"
            )
        encoder_embed.weight.requires_grad = not cfg.encoder_freeze_embed
        decoder_embed.weight.requires_grad = not cfg.decoder_freeze_embed

        encoder = GRUEncoder(
            task.source_dictionary,
            encoder_embed,
            hidden_size=cfg.encoder_hidden_size,
            num_layers=cfg.encoder_layers,
            bidirectional=cfg.encoder_bidirectional,
            dropout_in=cfg.encoder_dropout_in,
            dropout_out=cfg.encoder_dropout_out,
            word_dropout=cfg.encoder_word_dropout,
            output_proj_dim=cfg.decoder_hidden_size if cfg.encoder_proj and attention_type != "none" else 0,
            max_source_positions=cfg.max_source_positions,
            cpu_bf16=cfg.cpu_bf16,
            layer_norm=cfg.encoder_layer_norm,
            transition_depth=cfg.encoder_transition_depth,
        )
        attention = build_attention(attention_type, cfg.decoder_hidden_size, encoder.output_dim)
        order = build_decoder_order(
            str(cfg.decoder_style),
            embed_dim=cfg.decoder_embed_dim,
            hidden_size=cfg.decoder_hidden_size,
            context_dim=encoder.output_dim if attention is not None else 0,
            input_feeding=cfg.input_feeding,
            feed_dim=cfg.decoder_out_embed_dim,
            layer_norm=cfg.decoder_layer_norm,
        )
        decoder = GRUDecoder(
            task.target_dictionary,
            decoder_embed,
            hidden_size=cfg.decoder_hidden_size,
            out_embed_dim=cfg.decoder_out_embed_dim,
            num_layers=cfg.decoder_layers,
            dropout_in=cfg.decoder_dropout_in,
            dropout_out=cfg.decoder_dropout_out,
            word_dropout=cfg.decoder_word_dropout,
            attention=attention,
            order=order,
            input_feeding=cfg.input_feeding,
            encoder_final_dim=encoder.final_dim,
            share_input_output_embed=cfg.share_decoder_input_output_embed or cfg.share_all_embeddings,
            teacher_forcing=cfg.teacher_forcing,
            teacher_forcing_min=cfg.teacher_forcing_min,
            teacher_forcing_decay_updates=cfg.teacher_forcing_decay_updates,
            max_target_positions=cfg.max_target_positions,
            cpu_bf16=cfg.cpu_bf16,
            layer_norm=cfg.decoder_layer_norm,
            transition_depth=cfg.decoder_transition_depth,
        )
        model = cls(encoder, decoder)
        model.int8 = bool(safe_getattr(cfg, "int8", False))
        return model


def _register_named_architecture(arch_name: str, defaults: dict) -> None:
    def set_defaults(args):
        for name, value in defaults.items():
            if safe_getattr(args, name) is None:
                setattr(args, name, value)
        base_architecture(args)

    register_model_architecture("gru_attn", arch_name)(set_defaults)


for _name, _defaults in NAMED_ARCHITECTURES.items():
    _register_named_architecture(_name, _defaults)
