"""fairseq's own end-to-end flow, in-process, for every named architecture of this package and fairseq's ``lstm``.

The way fairseq tests itself (tests/test_binaries.py): random parallel text -> fairseq_cli.preprocess -> train one
epoch -> validate -> generate with many option sets -> interactive with ``sys.stdin`` replaced. Each architecture
is trained once (module-scoped fixture); every option set is its own test and checks what the option promises
(hypotheses for every test sentence, the forced prefix, scores as the length penalty says, ...).

The plugin's global fixes are in force here (as with ``--user-dir`` on the command line): 13 test sentences are all
translated in one batch (plain fairseq-fixed drops the last 5), and ``--diverse-beam-groups`` works past the first
batch (plain fairseq: IndexError). test_lstm_unchanged.py compares fairseq's lstm with and without the plugin.
"""
import math
import re

import pytest
import torch

import fairseq_flow as flow
from fairseq_attn_gru import UserError
from fairseq_attn_gru.models.config import NAMED_ARCHITECTURES

OURS = ["gru_attn", *NAMED_ARCHITECTURES]
ARCHS = [*OURS, "lstm"]
SIZES = {"train": 40, "valid": 12, "test": 13}  # 13: not a multiple of fairseq's batch multiple 8
TEST_SIZE = SIZES["test"]
WITHOUT_ATTENTION = {"gru_seq2seq"}
TOL = 2e-3  # P- scores are printed with 4 decimals


def test_every_named_architecture_is_covered():
    from fairseq.models import ARCH_MODEL_REGISTRY

    ours = {arch for arch, model in ARCH_MODEL_REGISTRY.items() if model.__module__.startswith("fairseq_attn_gru")}
    assert ours == set(OURS)
    assert set(ARCHS) == set(flow.ARCH_FLAGS)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These models are tiny: one thread is fastest, and two spin against each other on a busy 2-core machine
    (measured: 0.2 s against 3 s for the same fairseq-generate)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("flow")
    pairs = flow.write_corpus(root / "text", SIZES)
    return {"bin": flow.preprocess(root / "text", root / "bin"), "pairs": pairs}


@pytest.fixture(scope="module", params=ARCHS)
def trained(request, corpus, tmp_path_factory):
    arch = request.param
    checkpoint = flow.train(corpus["bin"], tmp_path_factory.mktemp(arch), arch)
    return {"arch": arch, "checkpoint": checkpoint, "bin": corpus["bin"], "pairs": corpus["pairs"]}


def generate(trained, *flags):
    return flow.generate(trained["bin"], trained["checkpoint"], *flags)


@pytest.fixture(scope="module")
def beam_output(trained):
    """Default generation (beam 5): the reference the other option sets are compared with."""
    return generate(trained)


def test_train_one_epoch_then_validate(trained):
    summary = flow.checkpoint_summary(trained["checkpoint"])
    assert summary["num_updates"] > 0 and summary["next_epoch"] == 2, summary  # one whole epoch done
    assert math.isfinite(summary["val_loss"])
    out = flow.validate(trained["bin"], trained["checkpoint"], "--valid-subset", "valid,test")
    losses = dict(re.findall(r"valid on '(\w+)' subset \| loss ([0-9.]+)", out))
    assert set(losses) == {"valid", "test"}, out[-2000:]
    # the same weights, data and batches as the validation at the end of training
    assert float(losses["valid"]) == pytest.approx(summary["val_loss"], abs=1e-9)


def test_beam(trained, beam_output):
    hypos = flow.assert_every_sentence(beam_output, TEST_SIZE)
    for sentence in hypos.values():
        best = sentence[0]
        assert best["positional"], best  # at least </s>
        # default --lenpen 1: the score is the mean of the per-token scores (</s> included)
        assert flow.close(best["score"], flow.length_normalised(best["positional"]), TOL), best


def test_sampling_topk(trained):
    out = generate(trained, "--sampling", "--sampling-topk", "3", "--beam", "2", "--nbest", "2", "--seed", "3")
    hypos = flow.assert_every_sentence(out, TEST_SIZE, nbest=2)
    assert all(math.isfinite(h["score"]) for sentence in hypos.values() for h in sentence)


def test_diverse_beam_over_several_batches(trained):
    # --batch-size 3: 5 batches, so dataset ids stop matching the rows of a batch after the first one
    out = generate(trained, "--diverse-beam-groups", "2", "--beam", "2", "--batch-size", "3")
    flow.assert_every_sentence(out, TEST_SIZE)


def test_prefix_size(trained):
    out = generate(trained, "--prefix-size", "2")
    hypos = flow.assert_every_sentence(out, TEST_SIZE)
    references = {sentence: fields[0][0].split() for sentence, fields in flow.lines_of(out, "T").items()}
    for sentence, (best,) in hypos.items():
        assert best["tokens"][:2] == references[sentence][:2], (sentence, best, references[sentence])


def test_nbest(trained, beam_output):
    out = generate(trained, "--nbest", "2")
    hypos = flow.assert_every_sentence(out, TEST_SIZE, nbest=2)
    single = flow.hypotheses(beam_output)
    for sentence, (first, second) in hypos.items():
        assert first["score"] >= second["score"]
        assert first["tokens"] != second["tokens"]
        assert first["tokens"] == single[sentence][0]["tokens"]  # --nbest only prints more of the same beam


def test_retain_dropout(trained, beam_output):
    out = generate(trained, "--retain-dropout")
    hypos = flow.assert_every_sentence(out, TEST_SIZE)
    plain = flow.hypotheses(beam_output)
    # dropout stays on at inference: the scores of the same checkpoint change
    assert any(abs(hypos[s][0]["score"] - plain[s][0]["score"]) > 1e-4 for s in hypos)


def test_no_repeat_ngram_size(trained):
    out = generate(trained, "--no-repeat-ngram-size", "2")
    hypos = flow.assert_every_sentence(out, TEST_SIZE)
    repeating = [" ".join(best["tokens"]) for (best,) in hypos.values()
                 if len(set(zip(best["tokens"], best["tokens"][1:]))) < len(best["tokens"]) - 1]
    # fairseq alone blocks nothing on CPU (#4709; fairseq_fixes/no_repeat_ngram.py)
    assert not repeating, f"{len(repeating)} of {TEST_SIZE} repeat a bigram, e.g. {repeating[0]!r}"


def test_match_source_len(trained):
    out = generate(trained, "--match-source-len")
    hypos = flow.assert_every_sentence(out, TEST_SIZE)
    sources = {sentence: fields[0][0].split() for sentence, fields in flow.lines_of(out, "S").items()}
    for sentence, (best,) in hypos.items():
        # fairseq ends no finite-scored hypothesis past the source length (its src_lengths count </s>)
        assert math.isfinite(best["score"]), best
        assert len(best["tokens"]) <= len(sources[sentence]) + 1, (sources[sentence], best)


def test_unnormalized_with_lenpen(trained):
    out = generate(trained, "--unnormalized", "--lenpen", "0.5")
    hypos = flow.assert_every_sentence(out, TEST_SIZE)
    for (best,) in hypos.values():
        # --unnormalized: the plain sum of the token scores, whatever --lenpen says
        assert flow.close(best["score"], sum(best["positional"]), TOL * len(best["positional"])), best


def test_print_alignment(trained):
    if trained["arch"] in WITHOUT_ATTENTION:
        with pytest.raises(UserError, match="--print-alignment needs attention"):
            generate(trained, "--print-alignment")
        return
    out = generate(trained, "--print-alignment")
    hypos = flow.assert_every_sentence(out, TEST_SIZE)
    sources = {sentence: fields[0][0].split() for sentence, fields in flow.lines_of(out, "S").items()}
    for sentence, (best,) in hypos.items():
        assert best["alignment"] is not None, sentence
        pairs = [tuple(map(int, pair.split("-"))) for pair in best["alignment"].split()]
        assert pairs, best
        # hard alignment: one source word per target word, indices inside both sentences (</s> excluded)
        assert sorted(t for _, t in pairs) == list(range(len(best["tokens"]))), best
        assert all(0 <= s < len(sources[sentence]) for s, _ in pairs), (sources[sentence], best)


def test_interactive(trained, beam_output):
    lines = [source for source, _ in trained["pairs"]["test"][:5]]
    out = flow.interactive(trained["bin"], trained["checkpoint"], lines, "--buffer-size", "2", "--batch-size", "2")
    hypos = flow.assert_every_sentence(out, len(lines))
    echoed = {sentence: fields[0][0] for sentence, fields in flow.lines_of(out, "S").items()}
    assert echoed == dict(enumerate(lines))
    # the same sentences as fairseq-generate's first five test sentences (ids follow the file): same best scores
    batch = flow.hypotheses(beam_output)
    for sentence, (best,) in hypos.items():
        assert flow.close(best["score"], batch[sentence][0]["score"], TOL), (sentence, best, batch[sentence])
