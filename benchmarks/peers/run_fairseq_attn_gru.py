"""This project's model on fairseq's own trainer and beam search, measured the same way as the peers (measure.py);
run with .venv/bin/python.

    run_fairseq_attn_gru.py train FLAGS.json --measure M.jsonl --threads N --budget-seconds S [--curve-seconds C]
        --final F
    run_fairseq_attn_gru.py translate FLAGS.json --checkpoint F --src FILE --out FILE --beam K --threads N
        --measure M.jsonl

FLAGS.json: {"flags": [fairseq-train flags], "prep": the `fairseq-attn-gru prepare` directory}.
train: fairseq-train (fairseq_cli.train.cli_main) with Trainer.train_step wrapped to count each update's target
tokens (sample["ntokens"]: the non-pad target tokens, the words and </s>) and keep the budget clock; at the budget
the trainer's own save_checkpoint writes F and training ends there.
translate: the pipeline's Translator (fairseq's hub interface, what `fairseq-attn-gru translate` uses) on the
already-encoded lines; the time of its generate call measured.
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import BudgetReached, TimedCalls, TrainMeasure, run_peer, translate_event  # noqa: E402


def save(trainer, path) -> None:
    """The trainer's own checkpoint, as fairseq's checkpoint_utils.save_checkpoint writes it (optimizer state
    consolidated first)."""
    trainer.consolidate_optimizer()
    trainer.save_checkpoint(str(path), {})


def train(args) -> None:
    from fairseq import trainer as fairseq_trainer
    from fairseq_cli import train as fairseq_train

    flags = json.loads(Path(args.config).read_text())["flags"]
    measure = TrainMeasure(args.measure, args.budget_seconds, args.curve_seconds, args.tag, args.profile_steps)
    original = fairseq_trainer.Trainer.train_step

    def measured_train_step(self, samples, *a, **k):
        measure.step_started()
        result = original(self, samples, *a, **k)
        action = measure.step_done(sum(sample.get("ntokens", 0) for sample in samples if sample))
        if action == "stop":
            Path(args.final).parent.mkdir(parents=True, exist_ok=True)
            save(self, args.final)
            measure.finish(args.final, args.threads)
            raise BudgetReached
        if action is not None:
            path = Path(args.final).parent / "curve" / f"{int(action)}s.pt"
            path.parent.mkdir(parents=True, exist_ok=True)
            with measure.paused_clock():
                save(self, path)
            measure.curve_point(action, str(path))
        return result

    fairseq_trainer.Trainer.train_step = measured_train_step
    sys.argv = ["fairseq-train", *map(str, flags)]
    try:
        fairseq_train.cli_main()
    except BudgetReached:
        return
    if not Path(args.final).exists():
        raise SystemExit("error: fairseq-train ended before the budget (--max-epoch, --max-update or --patience): "
                         "raise them")


def translate(args) -> None:
    from fairseq_attn_gru.pipeline.evaluate import Translator

    prep = json.loads(Path(args.config).read_text())["prep"]
    translator = Translator(prep, args.checkpoint, beam=args.beam, batch_size=args.batch_size)
    hub = translator.hub
    lines = Path(args.src).read_text(encoding="utf-8").splitlines()
    tokens = [hub.src_dict.encode_line(line, add_if_not_exist=False) for line in lines]
    calls = TimedCalls(profile=args.profile_steps > 0)
    outputs = calls.wrap(hub.generate)(tokens, beam=args.beam)
    hypotheses = [hub.tgt_dict.string(hypos[0]["tokens"].int().cpu(), extra_symbols_to_ignore={hub.tgt_dict.eos()})
                  for hypos in outputs]
    Path(args.out).write_text("".join(line + "\n" for line in hypotheses), encoding="utf-8")
    translate_event(args.measure, args.tag, len(lines), calls, args.beam, args.threads,
                    sum(len(line.split()) + 1 for line in hypotheses))


def main(argv=None):
    run_peer(__doc__, train, translate, argv)

if __name__ == "__main__":
    main()
