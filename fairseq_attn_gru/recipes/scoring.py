"""Reading fairseq-generate's output and scoring it: fairseq's BLEU scorer (what ``fairseq-score`` prints) and
sacreBLEU, both through their Python APIs in this process; parameter counts from a checkpoint.
"""
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Union

import sacrebleu


@dataclass
class Translation:
    id: int
    source: str = ""
    reference: str = ""
    hypothesis: str = ""
    soft_alignment: Optional[List[List[float]]] = None  # (target tokens + eos) x (source tokens + eos)
    extra: Dict[str, str] = field(default_factory=dict)


def parse_generate_output(text: str) -> List[Translation]:
    """The S-/T-/H-/A- lines of fairseq-generate (first hypothesis per sentence, its score in ``extra["score"]``),
    ordered by sentence id."""
    by_id: Dict[int, Translation] = {}
    for line in text.splitlines():
        match = re.match(r"^([STHDA])-(\d+)\t(.*)$", line)
        if not match:
            continue
        kind, sentence_id, rest = match.group(1), int(match.group(2)), match.group(3)
        item = by_id.setdefault(sentence_id, Translation(sentence_id))
        if kind == "S":
            item.source = rest
        elif kind == "T":
            item.reference = rest
        elif kind == "H" and "score" not in item.extra:
            score, _, item.hypothesis = rest.partition("\t")
            item.extra["score"] = score  # as printed: the hypothesis's log2 score
        elif kind == "A" and item.soft_alignment is None and "," in rest:
            item.soft_alignment = [[float(p) for p in row.split(",")] for row in rest.split()]
    return [by_id[i] for i in sorted(by_id)]


def sacrebleu_score(hypotheses: List[str], references: List[str], tokenize: str = "13a") -> Dict[str, object]:
    """Corpus sacreBLEU of detokenized text: {"score", "signature"}."""
    metric = sacrebleu.metrics.BLEU(tokenize=tokenize)
    result = metric.corpus_score(hypotheses, [references])
    return {"score": round(result.score, 2), "signature": str(metric.get_signature())}


def chrf_score(hypotheses: List[str], references: List[str]) -> Dict[str, object]:
    """Corpus chrF (sacreBLEU's defaults: character 6-grams, beta 2) of detokenized text: {"score", "signature"}."""
    metric = sacrebleu.metrics.CHRF()
    result = metric.corpus_score(hypotheses, [references])
    return {"score": round(result.score, 2), "signature": str(metric.get_signature())}


#: how bleu_tok_lc is computed: the "tok-lc" convention of the WMT multimodal Findings and most Multi30k papers
#: (multi30k/dataset's lc.norm.tok files: Moses lowercase.perl | normalize-punctuation.perl | tokenizer.perl -a)
TOK_LC_CONVENTION = ("lowercased, Moses punctuation-normalised and tokenised (-a, sacremoses), "
                     "sacreBLEU tokenize=none")


def tokenized_lowercase(lines: List[str], lang: str) -> List[str]:
    """Lines as the Multi30k literature scores them: lowercase, Moses punctuation normalisation, Moses tokenisation
    with aggressive hyphen splitting (``tokenizer.perl -a``)."""
    from .cli import require_module

    sacremoses = require_module("sacremoses")
    normalizer, tokenizer = sacremoses.MosesPunctNormalizer(lang), sacremoses.MosesTokenizer(lang)
    return [tokenizer.tokenize(normalizer.normalize(line.lower()), aggressive_dash_splits=True, escape=False,
                               return_str=True) for line in lines]


def tok_lc_bleu(hypotheses: List[str], references: List[str], lang: str) -> Dict[str, object]:
    """BLEU in the tok-lc convention (TOK_LC_CONVENTION) of detokenized text: {"score", "signature"}. Only
    comparable with papers for languages sacremoses has rules for (the caller checks)."""
    metric = sacrebleu.metrics.BLEU(tokenize="none", force=True)  # force: the input is tokenized on purpose
    result = metric.corpus_score(tokenized_lowercase(hypotheses, lang), [tokenized_lowercase(references, lang)])
    return {"score": round(result.score, 2), "signature": f"{metric.get_signature()} | {TOK_LC_CONVENTION}"}


def fairseq_bleu(hypotheses: List[str], references: List[str], order: int = 4) -> float:
    """fairseq's tokenized corpus BLEU, as ``fairseq-score --sys H --ref R`` computes and prints it (2 decimals).

    Same steps as fairseq_cli/score.py: one growing Dictionary for both sides, whitespace tokens, unknown words
    never match, fairseq's C scorer (fairseq.libbleu).
    """
    from fairseq.data import Dictionary
    from fairseq.scoring import bleu

    dictionary = Dictionary()
    scorer = bleu.Scorer(bleu.BleuConfig(pad=dictionary.pad(), eos=dictionary.eos(), unk=dictionary.unk()))
    for hypothesis, reference in zip(hypotheses, references):
        hypothesis_tokens = dictionary.encode_line(hypothesis)
        scorer.add(dictionary.encode_line(reference), hypothesis_tokens)
    return float(f"{scorer.score(order):.2f}")  # fairseq-score prints "BLEU4 = {:2.2f}"


def fairseq_score(hypothesis_file: Path, reference_file: Path) -> float:
    """BLEU4 of two text files, one sentence a line: the number ``fairseq-score`` prints, computed in-process."""
    with open(hypothesis_file) as hypotheses, open(reference_file) as references:
        return fairseq_bleu(hypotheses.readlines(), references.readlines())


def score_translations(translations: List[Translation], hyp_file: Path, ref_file: Path) -> Dict[str, object]:
    """Writes hypotheses and references to the given files; BLEU by fairseq-score and sacreBLEU, exact match."""
    hypotheses = [t.hypothesis for t in translations]
    references = [t.reference for t in translations]
    Path(hyp_file).write_text("".join(h + "\n" for h in hypotheses))
    Path(ref_file).write_text("".join(r + "\n" for r in references))
    sacre = sacrebleu_score(hypotheses, references)
    return {
        "bleu": fairseq_score(hyp_file, ref_file),
        "sacrebleu": sacre["score"],
        "sacrebleu_signature": sacre["signature"],
        "exact_match": round(exact_match(hypotheses, references), 4),
    }


def checkpoint_parameters(checkpoint: Union[str, Path]) -> int:
    """The model's parameter count, from its checkpoint: what fairseq-train logs as "num. shared model params"
    (a tensor that two names share, as tied embeddings do, counts once)."""
    from fairseq import checkpoint_utils

    state = checkpoint_utils.load_checkpoint_to_cpu(str(checkpoint))
    unique = {tensor.data_ptr(): tensor.numel() for tensor in state["model"].values() if tensor.numel()}
    return sum(unique.values())


def trained_parameters(train_log_or_checkpoint: Union[str, Path]) -> int:
    """The model's parameter count: counted from a checkpoint file (a Path, or a str naming a file), or, for
    fairseq-train's log text, the count it logs at start-up."""
    source = train_log_or_checkpoint
    if isinstance(source, Path) or ("\n" not in source and os.path.isfile(source)):
        return checkpoint_parameters(source)
    return int(source.split("num. shared model params: ")[1].split(" ")[0].replace(",", ""))


def exact_match(hypotheses: List[str], references: List[str]) -> float:
    if not references:
        return 0.0
    return sum(h.split() == r.split() for h, r in zip(hypotheses, references)) / len(references)
