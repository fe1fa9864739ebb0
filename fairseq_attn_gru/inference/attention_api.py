"""Attention from Python: translate through the hub interface and get, per sentence, the source tokens, the output
tokens and the attention matrix; draw it with the project's heat-map code (recipes/plotting.py).

    hub = GRUAttnModel.from_pretrained(checkpoint_dir, checkpoint_file="checkpoint_best.pt", ...)
    items = hub.translate_with_attention(["w1 w2 w3"], beam=5)     # or translate_with_attention(hub, ...)
    items[0].attention.shape      # (len(output_tokens), len(source_tokens)): rows sum to 1
    items[0].plot("attention.png")                                 # or plot(items[0], "attention.png")

Tokens are the dictionary's symbols (after the hub's tokenizer/BPE, if the checkpoint has one), each list ending in
``</s>``; ``attention[t, s]`` is the weight output token t gave source token s (padding columns are removed, so the
rows sum to 1 over the real source positions). A model without attention (``gru_seq2seq``) gives ``attention=None``.
"""
import copy
from dataclasses import dataclass
from typing import List, Optional, Union

import torch
from fairseq import utils
from omegaconf import open_dict

from ..errors import UserError
from ..recipes.scoring import Translation


@dataclass
class AttentionItem:
    """One translated sentence: its tokens and the best hypothesis's attention (T x S)."""

    source: str
    source_tokens: List[str]  # source symbols + "</s>"
    output_tokens: List[str]  # output symbols + "</s>"
    attention: Optional[torch.Tensor]  # (len(output_tokens), len(source_tokens)), or None without attention
    translation: str  # the hub's decoded output (BPE removed, detokenized)
    score: float  # the hypothesis's score, as fairseq-generate prints it

    def to_translation(self, id: int = 0) -> Translation:
        """The recipes' Translation (what ``plot_attention`` draws)."""
        return Translation(id, source=" ".join(self.source_tokens[:-1]), hypothesis=" ".join(self.output_tokens[:-1]),
                           soft_alignment=None if self.attention is None else self.attention.tolist())

    def plot(self, path, title: Optional[str] = None, **kwargs) -> None:
        plot(self, path, title, **kwargs)


def plot(item: AttentionItem, path, title: Optional[str] = None, **kwargs) -> None:
    """Draw ``item``'s attention heat map to ``path`` (png, pdf, svg: by the suffix) with recipes/plotting.py."""
    from ..recipes.plotting import plot_attention  # matplotlib is imported only when a plot is drawn

    plot_attention(item.to_translation(), path, title if title is not None else item.translation, **kwargs)


def translate_with_attention(hub, sentences: Union[str, List[str]], beam: int = 5,
                             **generation_args) -> Union[AttentionItem, List[AttentionItem]]:
    """Translate ``sentences`` with ``hub`` (fairseq's GeneratorHubInterface) keeping the best hypothesis's attention.

    A str gives one AttentionItem, a list gives a list in the same order (as ``hub.translate``). ``generation_args``
    are fairseq's generation options (``max_len_b=50``, ``lenpen=1.2``, ...), as for ``hub.generate``.
    """
    if isinstance(sentences, str):
        return translate_with_attention(hub, [sentences], beam, **generation_args)[0]
    check_every_model_attends(hub.models)
    from .hub import check_generation_options

    check_generation_options(hub, beam, generation_args)
    tokenized = [hub.encode(sentence) for sentence in sentences]
    # hub.generate, keeping each batch's source tokens: they say which attention columns are padding
    gen_args = copy.deepcopy(hub.cfg.generation)
    with open_dict(gen_args):
        gen_args.beam = beam
        for name, value in generation_args.items():
            setattr(gen_args, name, value)
    generator = hub.task.build_generator(hub.models, gen_args)
    pad, src_dict, tgt_dict = hub.src_dict.pad(), hub.src_dict, hub.tgt_dict
    items = {}
    for batch in hub._build_batches(tokenized, False):
        batch = utils.apply_to_sample(lambda t: t.to(hub.device), batch)
        translations = hub.task.inference_step(generator, hub.models, batch)
        for row, (index, hypos) in enumerate(zip(batch["id"].tolist(), translations)):
            src_tokens = batch["net_input"]["src_tokens"][row]  # (S,), padded on either side
            real = src_tokens.ne(pad)  # (S,)
            best = hypos[0]
            attention = best.get("attention")  # (S, T) from SequenceGenerator
            if attention is not None and attention.numel() > 0:
                attention = attention[real].t().float().cpu()  # (T, S_real)
            else:
                attention = None
            items[index] = AttentionItem(
                source=sentences[index],
                source_tokens=[src_dict[i] for i in src_tokens[real].tolist()],
                output_tokens=[tgt_dict[i] for i in best["tokens"].tolist()],
                attention=attention,
                translation=hub.decode(best["tokens"]),
                score=float(best["score"]),
            )
    return [items[index] for index in range(len(sentences))]


def check_every_model_attends(models) -> None:
    """An ensemble's attention is the mean of its models' (fairseq's EnsembleModel), and a model without attention
    adds nothing to it: with one of two attending, every row summed to 0.5. Refused, naming the model."""
    without = [index for index, model in enumerate(models) if getattr(model.decoder, "attention", None) is None]
    if without and len(without) < len(models):
        raise UserError(f"attention from an ensemble needs attention in every model, but model {without[0] + 1} of "
                        f"{len(models)} (in the order the checkpoints were given) was trained with --attention-type "
                        "none: its share would be missing from the average (rows would sum to "
                        f"{(len(models) - len(without)) / len(models):.2f}); leave it out of this ensemble")
