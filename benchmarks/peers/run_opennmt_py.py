"""OpenNMT-py's own trainer and beam search, measured (measure.py); run with .venv-opennmt_py/bin/python.

    run_opennmt_py.py train CONFIG.yaml --measure M.jsonl --threads N --budget-seconds S [--curve-seconds C] --final F
    run_opennmt_py.py translate CONFIG.yaml --checkpoint F --src FILE --out FILE --beam K --threads N --measure M.jsonl

train: `onmt_train -config CONFIG` (OpenNMT-py's own entry point) with Trainer._gradient_accumulation wrapped to count
each batch's target tokens (batch["tgt"][:, 1:] not padding: the words and </s>, not <s>, as OpenNMT-py's own
normalisation counts them) and keep the budget clock; at the budget the trainer's own ModelSaver writes the
checkpoint (moved to F) and the training loop is left.
translate: `onmt_translate` (its own entry point: -model F -src FILE -output FILE -beam_size K, batches of
--batch-size sentences), the time of the translator's ``_translate`` call measured.
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import BudgetReached, TimedCalls, TrainMeasure, run_peer, translate_event  # noqa: E402


def save_checkpoint(trainer, path) -> None:
    """OpenNMT-py's own checkpoint (weights, vocabularies, options) through the trainer's ModelSaver, moved to
    ``path``."""
    written, _ = trainer.model_saver._save(trainer.optim.training_step, trainer.model)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    os.replace(written, path)


def target_tokens(batch, padding_idx: int) -> int:
    return int(batch["tgt"][:, 1:, 0].ne(padding_idx).sum().item())


def train(args) -> None:
    from onmt import trainer as onmt_trainer
    from onmt.bin import train as onmt_train

    measure = TrainMeasure(args.measure, args.budget_seconds, args.curve_seconds, args.tag, args.profile_steps)
    accumulate, train_loop = onmt_trainer.Trainer._gradient_accumulation, onmt_trainer.Trainer.train

    def measured_accumulation(self, true_batches, normalization, total_stats, report_stats):
        measure.step_started()
        result = accumulate(self, true_batches, normalization, total_stats, report_stats)
        action = measure.step_done(sum(target_tokens(batch, self.train_loss.padding_idx) for batch in true_batches))
        if action == "stop":
            save_checkpoint(self, args.final)
            measure.finish(args.final, args.threads)
            raise BudgetReached
        if action is not None:
            path = Path(args.final).parent / "curve" / f"{int(action)}s.pt"
            with measure.paused_clock():
                save_checkpoint(self, path)
            measure.curve_point(action, str(path))
        return result

    def budgeted_train(self, *a, **k):
        try:
            return train_loop(self, *a, **k)
        except BudgetReached:
            return None

    onmt_trainer.Trainer._gradient_accumulation = measured_accumulation
    onmt_trainer.Trainer.train = budgeted_train
    sys.argv = ["onmt_train", "-config", args.config]
    onmt_train.main()
    if not Path(args.final).exists():
        raise SystemExit("error: OpenNMT-py's training ended before the budget (train_steps ran out): raise "
                         "train_steps in the config")


def translate(args) -> None:
    from onmt.bin import translate as onmt_translate
    from onmt.translate import translator

    calls = TimedCalls(profile=args.profile_steps > 0)
    translator.Inference._translate = calls.wrap(translator.Inference._translate)
    sys.argv = ["onmt_translate", "-model", args.checkpoint, "-src", args.src, "-output", args.out,
                "-beam_size", str(args.beam), "-batch_size", str(args.batch_size), "-batch_type", "sents",
                "-seed", "1"]
    onmt_translate.main()
    lines = Path(args.src).read_text(encoding="utf-8").splitlines()
    hypotheses = Path(args.out).read_text(encoding="utf-8").splitlines()
    translate_event(args.measure, args.tag, len(lines), calls, args.beam, args.threads,
                    sum(len(line.split()) + 1 for line in hypotheses))


def main(argv=None):
    run_peer(__doc__, train, translate, argv)

if __name__ == "__main__":
    main()
