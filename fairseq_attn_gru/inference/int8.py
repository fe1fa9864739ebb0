"""int8 inference on CPU: PyTorch dynamic quantization of a loaded model's GRUs and Linear layers.

Weights of every ``nn.GRU``, ``nn.GRUCell`` and ``nn.Linear`` (encoder GRU and output projection, the decoder's bridge, GRU,
attention projections, output feature and vocabulary projections) become int8; activations are quantized per
batch on the fly. A layer-normalised or deep-transition GRU (``DeepGRU``, models/recurrent.py) becomes an
:class:`Int8DeepGRU`: its weight matrices are int8 Linear layers, its biases and layer-norm gains stay fp32.
Embeddings stay fp32 (and so does a vocabulary projection that shares the embedding matrix), and so does the concat
score's vector v (``ScoreVector``): it weighs elementwise work that int8 cannot speed up.
Nothing changes in training or in checkpoints: the model is built and loaded in fp32 as always, then quantized in
place (``GRUAttnModel.load_state_dict`` calls :func:`quantize_model` when the config says ``int8``).

Refusals, each one line (:class:`UserError`): a PyTorch build without a quantized engine, a model with a weight
matrix outside those types, a model on an accelerator, ``--cpu-bf16`` together with int8, and training
(``model.train()``) a quantized model.
"""
import logging
import warnings
from typing import List

import torch
import torch.nn as nn
from torch import Tensor

from ..errors import UserError, config_error
from ..models.config import VALUE_TYPES
from ..models.recurrent import DeepGRU

logger = logging.getLogger(__name__)

#: the module types replaced by their dynamically quantized versions
QUANTIZED_TYPES = (nn.GRU, nn.GRUCell, nn.Linear)
#: engines that run dynamic int8 GRU and Linear
INT8_ENGINES = ("x86", "fbgemm", "onednn", "qnnpack")


class Int8DeepGRU(DeepGRU):
    """``DeepGRU`` for int8 inference: each weight matrix (W_i and W_h^j of every layer and direction) is a dynamically
    quantized ``Linear`` in ``int8_linears``, which ``_linear`` multiplies by; biases and layer-norm gains stay fp32
    parameters under their names. The step loop is the plain one (the hand-written backward is training's).
    Eager only: TorchScript cannot index ``int8_linears`` by a computed position (inference/torchscript.py refuses)."""

    @classmethod
    def from_float(cls, float_gru: DeepGRU) -> "Int8DeepGRU":
        from torch.ao.nn.quantized import dynamic as nnqd
        from torch.ao.quantization import default_dynamic_qconfig

        int8 = cls.__new__(cls)
        nn.Module.__init__(int8)
        for name in ("input_size", "hidden_size", "num_layers", "bidirectional", "dropout", "layer_norm",
                     "transition_depth", "batch_first"):
            setattr(int8, name, getattr(float_gru, name))
        linears = []
        for index in range(int8.num_layers * (2 if int8.bidirectional else 1)):
            params = float_gru._named_params(index)
            for weight in [params[0]] + params[4::4]:  # W_i, then W_h^j of each transition j
                linear = nn.Linear(weight.size(1), weight.size(0), bias=False)
                linear.weight, linear.qconfig = weight, default_dynamic_qconfig
                linears.append(nnqd.Linear.from_float(linear))
        int8.int8_linears = nn.ModuleList(linears)
        for name, parameter in float_gru.named_parameters(recurse=False):
            if parameter.dim() == 1:  # biases and gains
                int8.register_parameter(name, parameter)
            else:  # a weight matrix: int8_linears has it; _named_params reads None in its place
                object.__setattr__(int8, name, None)
        return int8.eval()

    def _linear(self, x: Tensor, index: int, slot: int, weight, bias):
        projected = self.int8_linears[index * (1 + self.transition_depth) + slot](x)  # (·, 3H)
        return projected if bias is None else projected + bias  # (·, 3H)

    def _fast_path(self, x: Tensor) -> bool:
        return False


def quantized_engine() -> str:
    """The quantized engine int8 inference runs on; UserError naming what is missing when there is none."""
    supported: List[str] = [e for e in torch.backends.quantized.supported_engines if e != "none"]
    usable = [e for e in supported if e in INT8_ENGINES]
    if not usable:
        raise UserError(
            "int8 needs a quantized engine (one of " + ", ".join(INT8_ENGINES) + "), and this PyTorch build "
            f"has none (torch.backends.quantized.supported_engines={torch.backends.quantized.supported_engines}); "
            "drop int8 or install a CPU build of PyTorch with FBGEMM/oneDNN (x86) or QNNPACK (ARM)"
        )
    engine = torch.backends.quantized.engine
    if engine not in usable:
        engine = usable[0]
        torch.backends.quantized.engine = engine
    return engine


def check_int8_allowed(model: nn.Module, cpu_bf16: bool = False) -> None:
    """Refuse, in one line, what int8 cannot do, saying what makes it run."""
    if cpu_bf16:
        raise UserError("int8 is not allowed together with --cpu-bf16 (this model has it on, from its checkpoint or "
                        "your options): its weights are fp32, so turning bf16 off lets int8 run: --model-overrides "
                        "\"{'int8': True, 'cpu_bf16': False}\" (from Python: int8=True, cpu_bf16=False)")
    devices = {p.device.type for p in model.parameters()} | {b.device.type for b in model.buffers()}
    if devices - {"cpu"}:
        raise UserError(f"int8 runs on CPU only, but the model is on {sorted(devices - {'cpu'})}: "
                        "add --cpu (or keep the hub model on CPU)")
    halves = sorted({str(p.dtype).replace("torch.", "") for p in model.parameters()} - {"float32"})
    if halves:  # fairseq-generate --fp16 (or --bf16) converts the weights before int8 could quantize them
        raise UserError(f"int8 quantizes fp32 weights, but the model's are {', '.join(halves)} (--fp16/--bf16, or "
                        "model.half()): drop --fp16/--bf16; int8 is its own CPU precision")
    quantized_engine()


def quantize_model(model: nn.Module, cpu_bf16: bool = False) -> nn.Module:
    """Quantize ``model``'s GRUs and Linear layers to int8 in place (dynamic quantization); returns it, in eval mode."""
    check_int8_allowed(model, cpu_bf16)
    if is_int8(model):
        return model
    left_out = unquantizable_layers(model)
    if left_out:  # e.g. a recurrence of our own: its matmuls would stay fp32 under an int8 label
        raise UserError(f"int8 quantizes nn.GRU, nn.GRUCell, nn.Linear and DeepGRU only; {', '.join(left_out)} would "
                        "stay fp32, so int8 is refused for this model")
    for name, module in list(model.named_modules()):
        if type(module) is DeepGRU:
            model.set_submodule(name, Int8DeepGRU.from_float(module))
    from torch.ao.quantization import quantize_dynamic

    engine = quantized_engine()
    with warnings.catch_warnings():
        # torch 2.13 marks quantized tensor creation deprecated (pytorch#184982): said once in docs/inference.md
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*deprecated")
        for child in list(model.children()):
            # quantize_dynamic's inplace convert swaps submodules of what it is given, never the module itself
            quantize_dynamic(child, set(QUANTIZED_TYPES), dtype=torch.qint8, inplace=True)
    model.eval()
    left = float_layers(model)
    if left:  # never present fp32 layers as int8
        raise RuntimeError(f"int8 quantization left fp32 layers: {', '.join(left)}")
    logger.info(f"int8: dynamic quantization on engine {engine}: {', '.join(quantized_layers(model))}")
    return model


def unquantizable_layers(model: nn.Module) -> List[str]:
    """``name (Class)`` of each module with a weight matrix of its own that neither dynamic quantization nor
    :class:`Int8DeepGRU` would convert (embeddings excepted: they are lookups, and stay fp32 by design)."""
    found = []
    for name, module in model.named_modules():
        if isinstance(module, (*QUANTIZED_TYPES, nn.Embedding, DeepGRU)):
            continue
        if any(p.dim() >= 2 for p in module.parameters(recurse=False)):
            found.append(f"{name} ({type(module).__name__})")
    return found


def float_layers(model: nn.Module) -> List[str]:
    """Names of the fp32 ``nn.GRU``/``nn.Linear``/``DeepGRU`` modules left in ``model`` (empty once quantized)."""
    return [name for name, module in model.named_modules() if type(module) in (*QUANTIZED_TYPES, DeepGRU)]


def quantized_layers(model: nn.Module) -> List[str]:
    """Names of the dynamically quantized modules in ``model``."""
    from torch.ao.nn.quantized import dynamic as nnqd

    return [name for name, module in model.named_modules()
            if isinstance(module, (nnqd.GRU, nnqd.GRUCell, nnqd.Linear, Int8DeepGRU)) and ".int8_linears." not in name]


def is_int8(model: nn.Module) -> bool:
    return bool(quantized_layers(model)) and not float_layers(model)


def int8_requested(cfg) -> bool:
    """Whether fairseq's ``--model-overrides`` (in the generation config ``cfg``) asks for ``int8``.

    fairseq applies overrides only to options a checkpoint's config already has, so for a checkpoint saved before
    ``--int8`` existed the override would vanish: the model reads it here, in ``prepare_for_inference_``.
    """
    import ast

    common_eval = cfg.get("common_eval") if hasattr(cfg, "get") else getattr(cfg, "common_eval", None)
    overrides = getattr(common_eval, "model_overrides", None) if common_eval is not None else None
    if not overrides:
        return False
    try:
        value = ast.literal_eval(overrides) if isinstance(overrides, str) else overrides
    except (ValueError, SyntaxError):
        return False  # fairseq itself evaluates (and reports) a broken --model-overrides first
    if not isinstance(value, dict) or "int8" not in value:
        return False
    return requested_flag("--model-overrides 'int8'", value["int8"])


def requested_flag(what: str, value) -> bool:
    """``value`` of a yes/no request (int8=..., cpu_bf16=...) as a bool; anything but True or False is refused:
    the string 'False' is true to Python, and used to quantize."""
    if not isinstance(value, bool):
        raise config_error(what, value, VALUE_TYPES[bool])
    return value
