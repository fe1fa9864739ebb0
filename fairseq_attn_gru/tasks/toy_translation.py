"""``--task toy_translation``: seeded toy parallel data generated in memory; no data files."""
import logging
from dataclasses import dataclass, field

import numpy as np
from fairseq.data import Dictionary, LanguagePairDataset
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.tasks import FairseqTask, register_task

from . import toy_data
from ..errors import UserError, config_error

logger = logging.getLogger(__name__)


@dataclass
class ToyTranslationConfig(FairseqDataclass):
    toy_rule: ChoiceEnum(toy_data.RULES) = field(
        default="translate",
        metadata={"help": "copy, reverse, sort, or translate (seeded lexicon + seeded block reordering; see docs/toy_task.md)"},
    )
    toy_vocab_size: int = field(default=100, metadata={"help": "number of source words (and target words)"})
    toy_min_len: int = field(default=3, metadata={"help": "shortest sentence, in words"})
    toy_max_len: int = field(default=20, metadata={"help": "longest sentence, in words"})
    toy_train_size: int = field(default=10000, metadata={"help": "training sentence pairs"})
    toy_valid_size: int = field(default=500, metadata={"help": "validation sentence pairs"})
    toy_test_size: int = field(default=500, metadata={"help": "test sentence pairs"})
    toy_seed: int = field(default=1, metadata={"help": "seed for the data and the translate rule's lexicon/order"})
    left_pad_source: bool = field(
        default=True,
        metadata={"help": "sources are left-padded, fairseq's default; like fairseq's flag, giving it turns that off"},
    )
    max_source_positions: int = field(default=256, metadata={"help": "longest source accepted, in tokens"})
    max_target_positions: int = field(default=256, metadata={"help": "longest target accepted, in tokens"})


def build_dictionary(words) -> Dictionary:
    dictionary = Dictionary()
    for word in words:
        dictionary.add_symbol(word)
    dictionary.finalize(padding_factor=8)  # fixed order: symbols are added in word-number order, counts all 1
    return dictionary


@register_task("toy_translation", dataclass=ToyTranslationConfig)
class ToyTranslationTask(FairseqTask):
    """Translation on generated data; the dictionaries follow from the options alone."""

    cfg: ToyTranslationConfig

    def __init__(self, cfg: ToyTranslationConfig, src_dict: Dictionary, tgt_dict: Dictionary):
        super().__init__(cfg)
        self.src_dict = src_dict
        self.tgt_dict = tgt_dict

    @classmethod
    def setup_task(cls, cfg: ToyTranslationConfig, **kwargs):
        toy_data.validate_options(
            str(cfg.toy_rule),
            cfg.toy_vocab_size,
            cfg.toy_min_len,
            cfg.toy_max_len,
            {
                "--toy-train-size": cfg.toy_train_size,
                "--toy-valid-size": cfg.toy_valid_size,
                "--toy-test-size": cfg.toy_test_size,
            },
            seed=cfg.toy_seed,
        )
        for flag, value in (("--max-source-positions", cfg.max_source_positions),
                            ("--max-target-positions", cfg.max_target_positions)):
            if value is not None and value < 1:
                raise config_error(flag, value, "a positive integer (tokens, </s> included)")
        src_dict = build_dictionary(toy_data.source_words(cfg.toy_vocab_size))
        tgt_dict = build_dictionary(toy_data.target_words(str(cfg.toy_rule), cfg.toy_vocab_size))
        logger.info(f"toy_translation rule={cfg.toy_rule}: [src] {len(src_dict)} types, [tgt] {len(tgt_dict)} types")
        return cls(cfg, src_dict, tgt_dict)

    def split_pairs(self, split: str):
        """The (source line, target line) pairs of ``split`` (train, valid or test)."""
        if split not in toy_data.SPLITS:
            raise config_error("--gen-subset/--valid-subset", split, "one of " + ", ".join(toy_data.SPLITS))
        size = getattr(self.cfg, f"toy_{split}_size")
        return toy_data.generate_pairs(
            str(self.cfg.toy_rule),
            self.cfg.toy_vocab_size,
            self.cfg.toy_min_len,
            self.cfg.toy_max_len,
            size,
            self.cfg.toy_seed,
            split,
        )

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        pairs = self.split_pairs(split)
        src = [self.src_dict.encode_line(s, add_if_not_exist=False).long() for s, _ in pairs]
        tgt = [self.tgt_dict.encode_line(t, add_if_not_exist=False).long() for _, t in pairs]
        self.datasets[split] = LanguagePairDataset(
            src,
            np.array([len(s) for s in src]),
            self.src_dict,
            tgt,
            np.array([len(t) for t in tgt]),
            self.tgt_dict,
            left_pad_source=self.cfg.left_pad_source,
            left_pad_target=False,
        )
        logger.info(f"toy_translation {split}: {len(pairs)} sentence pairs")

    def _split_of(self, dataset):
        return next((split for split, loaded in self.datasets.items() if loaded is dataset), None)

    def get_batch_iterator(self, dataset, max_tokens=None, max_sentences=None, max_positions=None,
                           ignore_invalid_inputs=False, *args, **kwargs):
        """fairseq's iterator; a split that cannot give a single batch is named in one line instead of an
        IndexError (empty split) or fairseq's traceback (sentences longer than --max-tokens)."""
        split = self._split_of(dataset)
        if split is not None and len(dataset) == 0:
            raise config_error(f"--toy-{split}-size", 0, f"at least 1 sentence pair: the {split} split is used here")
        if split is not None and max_tokens and not ignore_invalid_inputs:
            longest = int(max(dataset.src_sizes.max(), dataset.tgt_sizes.max()))
            if longest > max_tokens:
                raise config_error("--max-tokens", max_tokens, f"at least the longest {split} sentence: {longest} "
                                   f"tokens (--toy-max-len={self.cfg.toy_max_len} words + </s>)")
        return super().get_batch_iterator(dataset, max_tokens, max_sentences, max_positions, ignore_invalid_inputs,
                                          *args, **kwargs)

    def filter_indices_by_size(self, indices, dataset, max_positions=None, ignore_invalid_inputs=False):
        """fairseq's filter; where it would raise (or drop every sentence) the limits are named in one line."""
        split = self._split_of(dataset)
        if split is not None and max_positions is not None:
            kept, ignored = dataset.filter_indices_by_size(indices, max_positions)
            if len(ignored) > 0 and (not ignore_invalid_inputs or len(kept) == 0):
                raise UserError(self._too_long_message(split, dataset, max_positions))
        return super().filter_indices_by_size(indices, dataset, max_positions, ignore_invalid_inputs)

    def _too_long_message(self, split, dataset, max_positions) -> str:
        """Which limit the split's longest sentences exceed, and whose it is: the limit may be the one that is wrong
        (a --max-source-positions of 5), so the message names it rather than blaming --toy-max-len."""
        limits = max_positions if isinstance(max_positions, (tuple, list)) else (max_positions, max_positions)
        sides = [("source", dataset.src_sizes, limits[0], self.cfg.max_source_positions),
                 ("target", dataset.tgt_sizes, limits[1], self.cfg.max_target_positions)]
        side, sizes, limit, task_limit = next(item for item in sides
                                              if item[2] is not None and int(item[1].max()) > item[2])
        flag = f"--max-{side}-positions"
        whose = ("this task's" if limit == task_limit else
                 "the model's, from its checkpoint or --model-overrides; in training also --max-tokens")
        return (f"the {split} split has {side} sentences of up to {int(sizes.max())} tokens (</s> included), more "
                f"than {flag}={limit} allows ({whose}): lower --toy-max-len (now {self.cfg.toy_max_len}) or raise "
                "that limit")

    def build_dataset_for_inference(self, src_tokens, src_lengths, constraints=None):
        return LanguagePairDataset(
            src_tokens,
            src_lengths,
            self.source_dictionary,
            tgt_dict=self.target_dictionary,
            left_pad_source=self.cfg.left_pad_source,
            constraints=constraints,
        )

    def meaning(self):
        """The options besides the dictionaries that decide what a target means (models/trained_on.py): the rule, and
        for ``translate`` the seed, which draws its lexicon and block order."""
        found = {"--toy-rule": repr(str(self.cfg.toy_rule))}
        if str(self.cfg.toy_rule) == "translate":
            found["--toy-seed"] = repr(self.cfg.toy_seed)
        return found

    def build_generator(self, models, args, seq_gen_cls=None, extra_gen_cls_kwargs=None,
                        prefix_allowed_tokens_fn=None):
        """fairseq's generator; for this package's models the patient beam search (fairseq_fixes/patient_beam.py),
        chosen here through fairseq's extension point rather than a patch."""
        from ..fairseq_fixes.patient_beam import build_patient_generator

        return build_patient_generator(super().build_generator, models, args, seq_gen_cls, extra_gen_cls_kwargs,
                                       prefix_allowed_tokens_fn)

    def max_positions(self):
        return (self.cfg.max_source_positions, self.cfg.max_target_positions)

    @property
    def source_dictionary(self):
        return self.src_dict

    @property
    def target_dictionary(self):
        return self.tgt_dict
