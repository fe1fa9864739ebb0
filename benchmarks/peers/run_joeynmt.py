"""Joey NMT's own trainer and beam search, measured (measure.py); run with .venv-joeynmt/bin/python.

    run_joeynmt.py train CONFIG.yaml --measure M.jsonl --threads N --budget-seconds S [--curve-seconds C] --final F
    run_joeynmt.py translate CONFIG.yaml --checkpoint F --src FILE --out FILE --beam K --threads N --measure M.jsonl

train: `python -m joeynmt train CONFIG --skip-test` (Joey's own entry point) with TrainManager._train_step wrapped to
count each batch's target tokens (Batch.ntokens: the non-pad tokens of trg, which holds the words and </s>, not <s>)
and keep the budget clock; at the budget it saves the weights to F and raises KeyboardInterrupt, the way Joey's loop
is built to be interrupted (it logs the step and saves its own last checkpoint too).
translate: Joey's ``translate`` (what `python -m joeynmt translate CONFIG < FILE` runs) on the file as its input
stream, its printed translations kept; the time of its ``predict`` call measured.
"""
import contextlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import TimedCalls, TrainMeasure, run_peer, translate_event  # noqa: E402


def save_weights(trainer, path) -> None:
    """The model's weights in Joey's checkpoint layout ({"model_state": ...}), all its test/translate read."""
    import torch

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model_state": trainer.model.state_dict(), "steps": trainer.stats.steps}, str(path))


def train(args) -> None:
    from joeynmt import __main__ as joey_main
    from joeynmt import training

    measure = TrainMeasure(args.measure, args.budget_seconds, args.curve_seconds, args.tag, args.profile_steps)
    original = training.TrainManager._train_step

    def measured_train_step(self, batch):
        measure.step_started()
        result = original(self, batch)
        action = measure.step_done(batch.ntokens)
        if action == "stop":
            save_weights(self, args.final)
            measure.finish(args.final, args.threads)
            raise KeyboardInterrupt  # Joey's loop ends on it and saves its own last checkpoint
        if action is not None:
            path = Path(args.final).parent / "curve" / f"{int(action)}s.ckpt"
            with measure.paused_clock():
                save_weights(self, path)
            measure.curve_point(action, str(path))
        return result

    training.TrainManager._train_step = measured_train_step
    sys.argv = ["joeynmt", "train", args.config, "--skip-test"]
    joey_main.main()
    if not Path(args.final).exists():
        raise SystemExit("error: Joey NMT's training ended before the budget (its epochs or updates ran out): "
                         "raise them in the config")


def translate(args) -> None:
    from joeynmt import prediction
    from joeynmt.config import load_config
    from joeynmt.helpers_for_ddp import get_logger

    cfg = load_config(Path(args.config))
    cfg["testing"]["load_model"] = args.checkpoint
    cfg["testing"]["beam_size"] = args.beam
    cfg["testing"]["batch_size"] = args.batch_size
    cfg["testing"]["batch_type"] = "sentence"
    get_logger("", log_file=str(Path(args.out).with_suffix(".joeynmt.log")))
    calls = TimedCalls(profile=args.profile_steps > 0)
    prediction.predict = calls.wrap(prediction.predict)
    lines = Path(args.src).read_text(encoding="utf-8").splitlines()
    # Joey's translate reads a non-interactive stdin as its input; its output_path fails in 2.3.0 (it reads
    # args.n_best, which is args.test.n_best), so it prints the translations, one a line, into the output file
    with open(args.src, encoding="utf-8") as stream, open(args.out, "w", encoding="utf-8") as out:
        sys.stdin = stream
        with contextlib.redirect_stdout(out):
            prediction.translate(cfg=cfg, output_path=None)
    hypotheses = Path(args.out).read_text(encoding="utf-8").splitlines()
    translate_event(args.measure, args.tag, len(lines), calls, args.beam, args.threads,
                    sum(len(line.split()) + 1 for line in hypotheses))


def main(argv=None):
    run_peer(__doc__, train, translate, argv)

if __name__ == "__main__":
    main()
