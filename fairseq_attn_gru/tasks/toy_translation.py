"""``--task toy_translation``: seeded toy parallel data generated in memory; no data files."""
import logging
from dataclasses import dataclass, field

import numpy as np
from fairseq.data import Dictionary, LanguagePairDataset
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.tasks import FairseqTask, register_task

from . import toy_data
from ..errors import config_error

logger = logging.getLogger(__name__)


@dataclass
class ToyTranslationConfig(FairseqDataclass):
    toy_rule: ChoiceEnum(toy_data.RULES) = field(
        default="translate",
        metadata={"help": "copy, reverse, sort, or translate (seeded lexicon + seeded block reordering; see README)"},
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
        )
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

    def build_dataset_for_inference(self, src_tokens, src_lengths, constraints=None):
        return LanguagePairDataset(
            src_tokens,
            src_lengths,
            self.source_dictionary,
            tgt_dict=self.target_dictionary,
            left_pad_source=self.cfg.left_pad_source,
            constraints=constraints,
        )

    def max_positions(self):
        return (self.cfg.max_source_positions, self.cfg.max_target_positions)

    @property
    def source_dictionary(self):
        return self.src_dict

    @property
    def target_dictionary(self):
        return self.tgt_dict
