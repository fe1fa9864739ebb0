"""Beam search keeps going until no unfinished beam can beat the best finished hypothesis (GRUAttnModel only)."""
import torch
from fairseq.sequence_generator import SequenceGenerator

from conftest import TinyTask, build_model
from fairseq_attn_gru.fairseq_fixes.patient_beam import PatientSequenceGenerator

LENGTH = 12  # target words before </s>


def confident_model(task):
    """A GRUAttnModel whose decoder is replaced by a fixed, very confident rule: word t is token 4 + t.

    Until the end, ``</s>`` is its second choice (logit -3) and every other word far behind (-20): the
    situation in which fairseq's rule ends a sentence with only truncated hypotheses.
    """
    model = build_model("gru_attn_dot", task=task).eval()
    vocab = len(task.target_dictionary)
    eos = task.target_dictionary.eos()

    def forward(prev_output_tokens, encoder_out=None, incremental_state=None, **kwargs):
        rows, generated = prev_output_tokens.size(0), prev_output_tokens.size(1) - 1  # leading </s> is not a word
        logits = torch.full((rows, 1, vocab), -20.0)  # (B, 1, V)
        if generated < LENGTH:
            logits[:, 0, 4 + generated] = 0.0
            logits[:, 0, eos] = -3.0
        else:
            logits[:, 0, eos] = 0.0
        return logits, {"attn": [None]}

    model.decoder.forward = forward
    return model


def best_hypothesis(model, task, generator_class=PatientSequenceGenerator):
    source = torch.tensor([[5, 6, 7, task.source_dictionary.eos()]])  # (1, S)
    sample = {"net_input": {"src_tokens": source, "src_lengths": torch.tensor([4])}, "id": torch.tensor([0])}
    generator = generator_class([model], task.target_dictionary, beam_size=5, max_len_b=50)
    with torch.no_grad():
        return generator.generate([model], sample)[0][0]["tokens"].tolist()


def test_patient_stopping_finds_the_full_hypothesis_where_fairseqs_rule_truncates():
    task = TinyTask(src_words=30)
    model = confident_model(task)
    full = [4 + t for t in range(LENGTH)] + [task.target_dictionary.eos()]
    assert best_hypothesis(model, task) == full
    truncated = best_hypothesis(model, task, SequenceGenerator)  # fairseq's own rule, for contrast
    assert len(truncated) < len(full) and truncated[:-1] == full[: len(truncated) - 1]
