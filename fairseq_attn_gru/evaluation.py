"""Reading fairseq-generate's output and scoring it (fairseq-score and sacreBLEU's Python API)."""
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import sacrebleu

FAIRSEQ_BIN = Path(sys.executable).parent
USER_DIR = str(Path(__file__).resolve().parent)  # what fairseq's --user-dir needs: this package's directory


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


def run_tool(tool: str, flags: List[object], log_path: Path, echo_prefix: Optional[str] = None,
             echo_all: bool = False, env: Optional[Dict[str, str]] = None) -> str:
    """Run a fairseq console script and return its output, all of which also goes to ``log_path``.

    Progress: ``echo_all`` echoes every line, ``echo_prefix`` only the epoch summaries (tagged with it).
    ``env`` adds to (or overrides) this process's environment. On failure it stops with fairseq's own
    ``error:`` line when there is one (exit status 2).
    """
    command = [str(FAIRSEQ_BIN / tool), *map(str, flags)]
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env={**os.environ, **env} if env else None)
        for line in process.stdout:
            log.write(line)
            if echo_all:
                print(line, end="", flush=True)
            elif echo_prefix and ("| train |" in line or "| valid |" in line):
                print(f"  [{echo_prefix}] {line.split('| INFO | ')[-1].strip()}", flush=True)
    output = Path(log_path).read_text(encoding="utf-8")
    if process.wait() != 0:
        errors = [line for line in output.splitlines() if line.startswith("error:")]
        reason = errors[-1][len("error:"):].strip() if errors else f"exit status {process.returncode}"
        print(f"error: {tool} failed: {reason} (full log: {log_path})", file=sys.stderr, flush=True)
        sys.exit(2)
    return output


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
