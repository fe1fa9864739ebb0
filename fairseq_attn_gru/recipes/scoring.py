"""Reading fairseq-generate's output and scoring it (fairseq-score and sacreBLEU's Python API)."""
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import sacrebleu

from .cli import FAIRSEQ_BIN



@dataclass
class Translation:
    id: int
    source: str = ""
    reference: str = ""
    hypothesis: str = ""
    soft_alignment: Optional[List[List[float]]] = None  # (target tokens + eos) x (source tokens + eos)
    extra: Dict[str, str] = field(default_factory=dict)


def parse_generate_output(text: str) -> List[Translation]:
    """The S-/T-/H-/A- lines of fairseq-generate (first hypothesis per sentence), ordered by sentence id."""
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
        elif kind == "H" and "H" not in item.extra:
            item.hypothesis = rest.split("\t", 1)[1] if "\t" in rest else ""
            item.extra["H"] = "seen"
        elif kind == "A" and item.soft_alignment is None and "," in rest:
            item.soft_alignment = [[float(p) for p in row.split(",")] for row in rest.split()]
    return [by_id[i] for i in sorted(by_id)]


def sacrebleu_score(hypotheses: List[str], references: List[str], tokenize: str = "13a") -> Dict[str, object]:
    """Corpus sacreBLEU of detokenized text: {"score", "signature"}."""
    metric = sacrebleu.metrics.BLEU(tokenize=tokenize)
    result = metric.corpus_score(hypotheses, [references])
    return {"score": round(result.score, 2), "signature": str(metric.get_signature())}


def fairseq_score(hypothesis_file: Path, reference_file: Path) -> float:
    """BLEU4 from fairseq's own ``fairseq-score`` command (tokenized BLEU)."""
    result = subprocess.run(
        [str(FAIRSEQ_BIN / "fairseq-score"), "--sys", str(hypothesis_file), "--ref", str(reference_file)],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"BLEU4? = ([0-9.]+)", result.stdout)
    if match is None:
        raise RuntimeError(f"fairseq-score printed no BLEU:\n{result.stdout}\n{result.stderr}")
    return float(match.group(1))


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


def trained_parameters(train_log: str) -> int:
    """The parameter count fairseq-train logs at start-up."""
    return int(train_log.split("num. shared model params: ")[1].split(" ")[0].replace(",", ""))


def exact_match(hypotheses: List[str], references: List[str]) -> float:
    if not references:
        return 0.0
    return sum(h.split() == r.split() for h, r in zip(hypotheses, references)) / len(references)
