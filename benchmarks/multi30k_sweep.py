"""Multi30k tuning sweep on a GPU machine (docs/multi30k.md, "What each piece bought"): 8 variants trained side
by side, each capped at the updates its measured 2-core CPU speed allows in 58 minutes, then val sacreBLEU of each.

Run from the repository root, with prepare.py's bin/ for 10,000 and 5,000 BPE merges in .devdata/bin10k and
.devdata/bin5k and the raw val.en in .devdata/val.en; fairseq importable; results go to $OUT (results.json and
one training log per variant). STOP_H (hours, default 0.1) caps every run: the 2026-11-26 sweep stopped there.
"""
import os, subprocess, sys, time, json
from pathlib import Path
sys.path.insert(0, os.getcwd())
from fairseq_attn_gru.recipes.multi30k.train import default_flags

OUT = Path(os.environ["OUT"]); WORK = Path("/tmp/sweep"); WORK.mkdir(exist_ok=True)
CONFIGS = {  # name: (bin, updates, extra flags)
    "base": ("bin10k", 10500, []),
    "cgru": ("bin10k", 7700, ["--decoder-style", "cgru"]),
    "ln": ("bin10k", 9100, ["--encoder-layer-norm", "--decoder-layer-norm"]),
    "nematus": ("bin10k", 7200, ["--arch", "gru_nematus"]),
    "nematus_ddt2": ("bin10k", 6000, ["--arch", "gru_nematus", "--decoder-transition-depth", "2"]),
    "nematus_dt2": ("bin10k", 5100, ["--arch", "gru_nematus", "--decoder-transition-depth", "2", "--encoder-transition-depth", "2"]),
    "base_bpe5k": ("bin5k", 10500, []),
    "nematus_bpe5k": ("bin5k", 7200, ["--arch", "gru_nematus"]),
}
DROP = {"--cpu": 0, "--eval-bleu": 0, "--eval-bleu-args": 1, "--eval-bleu-detok": 1, "--eval-bleu-remove-bpe": 0,
        "--best-checkpoint-metric": 1, "--maximize-best-checkpoint-metric": 0, "--patience": 1, "--keep-last-epochs": 1}
only = sys.argv[1:] or list(CONFIGS)

def flags_for(name):
    binname, updates, extra = CONFIGS[name]
    flags, skip = [], 0
    for flag in default_flags(Path(".devdata") / binname, WORK / name):
        if skip: skip -= 1; continue
        if flag in DROP: skip = DROP[flag]; continue
        flags.append(flag)
    return flags + ["--max-update", str(updates), "--no-epoch-checkpoints", "--stop-time-hours", os.environ.get("STOP_H", "0.1")] + extra

env = {**os.environ, "OMP_NUM_THREADS": "2"}
procs = {}
t0 = time.time()
for name in only:
    log = open(OUT / f"{name}.log", "w")
    procs[name] = subprocess.Popen([sys.executable, "-m", "fairseq_cli.train"] + flags_for(name), stdout=log, stderr=subprocess.STDOUT, env=env)
results = {}
for name, p in procs.items():
    p.wait(); results[name] = {"train_rc": p.returncode, "train_s": round(time.time() - t0)}
print("trained", results, flush=True)
gens = {}
for name in only:
    ckpt = WORK / name / "checkpoint_last.pt"
    if not ckpt.exists(): continue
    binname = CONFIGS[name][0]
    gens[name] = subprocess.Popen([sys.executable, "-m", "fairseq_cli.generate", f".devdata/{binname}", "--user-dir", "fairseq_attn_gru",
        "--path", str(ckpt), "--gen-subset", "valid", "--beam", "5", "--max-len-a", "1.2", "--max-len-b", "10", "--batch-size", "128",
        "--remove-bpe", "--tokenizer", "moses", "--source-lang", "de", "--target-lang", "en"], stdout=open(WORK / f"{name}.gen", "w"), stderr=open(OUT / f"{name}.genlog", "w"), env=env)
import sacrebleu
refs = Path(".devdata/val.en").read_text().splitlines()
for name, p in gens.items():
    p.wait()
    hyps = {}
    for line in (WORK / f"{name}.gen").read_text().splitlines():
        if line.startswith("D-"):
            idx, _, text = line[2:].split("\t", 2); hyps[int(idx)] = text
    out = [hyps.get(i, "") for i in range(len(refs))]
    results[name]["n_hyps"] = len(hyps)
    results[name]["val_sacrebleu"] = round(sacrebleu.corpus_bleu(out, [refs]).score, 2)
    log = (OUT / f"{name}.log").read_text()
    import re
    ups = re.findall(r"num_updates=(\d+)", log); results[name]["updates"] = int(ups[-1]) if ups else 0
    vl = re.findall(r"valid on 'valid' subset \| loss ([\d.]+)", log); results[name]["val_loss"] = vl[-1] if vl else None
    print(name, results[name], flush=True)
(OUT / "results.json").write_text(json.dumps(results, indent=1))
