"""End to end through fairseq's own command-line tools: preprocess, train every named arch, generate, interactive."""
import re

import pytest
import torch

from conftest import USER_DIR, run_cli
from fairseq_attn_gru.tasks import toy_data
from fairseq_attn_gru.models.config import NAMED_ARCHITECTURES

SMALL_IWSLT = ["--encoder-hidden-size", "32", "--decoder-hidden-size", "64", "--encoder-embed-dim", "16",
               "--decoder-embed-dim", "16", "--decoder-out-embed-dim", "16"]


@pytest.fixture(scope="module")
def data_bin(tmp_path_factory):
    """A tiny reversal corpus written as text and binarized with fairseq-preprocess."""
    root = tmp_path_factory.mktemp("corpus")
    for split, size in [("train", 300), ("valid", 40), ("test", 24)]:
        pairs = toy_data.generate_pairs("reverse", 20, 2, 9, size, seed=3, split=split)
        (root / f"{split}.src").write_text("".join(s + "\n" for s, _ in pairs))
        (root / f"{split}.tgt").write_text("".join(t + "\n" for _, t in pairs))
    run_cli("fairseq-preprocess", "--source-lang", "src", "--target-lang", "tgt",
            "--trainpref", root / "train", "--validpref", root / "valid", "--testpref", root / "test",
            "--destdir", root / "bin", "--workers", "1")
    return root / "bin"


def train(data_bin, save_dir, arch, *extra):
    run_cli("fairseq-train", data_bin, "--user-dir", USER_DIR, "--arch", arch, "--cpu",
            "--optimizer", "adam", "--lr", "0.005", "--max-tokens", "1000", "--max-update", "6",
            "--save-dir", save_dir, "--no-progress-bar", "--seed", "1", *extra)
    return save_dir / "checkpoint_last.pt"


def generate(data_bin, checkpoint, *extra, nbest=1):
    out = run_cli("fairseq-generate", data_bin, "--user-dir", USER_DIR, "--path", checkpoint, "--cpu",
                  "--gen-subset", "test", "--batch-size", "8", *extra).stdout
    hypotheses = re.findall(r"^H-(\d+)\t", out, flags=re.M)
    assert len(hypotheses) == 24 * nbest, out[-2000:]
    return out


IWSLT_SIZED = ("gru_attn_iwslt_de_en", "gru_nematus")
CASES = [(arch, SMALL_IWSLT if arch in IWSLT_SIZED else []) for arch in NAMED_ARCHITECTURES] + [
    ("gru_attn_concat", ["--decoder-style", "cgru"]),
]


#: every search option through the console tools for one model of each decoder path (Luong with attention, without,
#: cgru); the other architectures run beam search and soft alignments here, and every search option in-process
#: (test_fairseq_flow.py), which is where the architecture matters: a console tool adds only its own start-up
ALL_SEARCH_OPTIONS = {"gru_attn_dot", "gru_seq2seq", "gru_nematus"}


@pytest.mark.parametrize("arch,flags", CASES, ids=[" ".join([arch, *flags[:2]]) for arch, flags in CASES])
def test_train_and_generate_every_named_arch(arch, flags, data_bin, tmp_path):
    checkpoint = train(data_bin, tmp_path, arch, *flags)
    if arch in ALL_SEARCH_OPTIONS and not flags[:1] == ["--decoder-style"]:
        generate(data_bin, checkpoint, "--beam", "5")
        generate(data_bin, checkpoint, "--sampling", "--sampling-topk", "5", "--beam", "2", "--nbest", "2", nbest=2)
        generate(data_bin, checkpoint, "--beam", "4", "--diverse-beam-groups", "2", "--diverse-beam-strength", "0.5")
        generate(data_bin, checkpoint, "--beam", "3", "--prefix-size", "1")
        if NAMED_ARCHITECTURES[arch]["attention_type"] != "none":
            out = generate(data_bin, checkpoint, "--beam", "5", "--print-alignment", "hard")
            assert re.search(r"^A-\d+\t\d+-\d+", out, flags=re.M)
    if NAMED_ARCHITECTURES[arch]["attention_type"] != "none":
        out = generate(data_bin, checkpoint, "--beam", "5", "--print-alignment", "soft")
        assert re.search(r"^A-\d+\t[0-9.,]+", out, flags=re.M)
    else:
        result = run_cli("fairseq-generate", data_bin, "--user-dir", USER_DIR, "--path", checkpoint, "--cpu",
                         "--gen-subset", "test", "--print-alignment", "hard", check=False)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert result.stderr.strip().splitlines()[-1].startswith("error: --print-alignment needs attention")


def test_interactive_and_teacher_forcing_schedule(data_bin, tmp_path):
    checkpoint = train(data_bin, tmp_path, "gru_attn_general", "--teacher-forcing", "0.9",
                       "--teacher-forcing-min", "0.5", "--teacher-forcing-decay-updates", "4",
                       "--log-interval", "1", "--log-format", "simple")
    result = run_cli("fairseq-train", data_bin, "--user-dir", USER_DIR, "--arch", "gru_attn_general", "--cpu",
                     "--optimizer", "adam", "--lr", "0.005", "--max-tokens", "1000", "--max-update", "3",
                     "--save-dir", tmp_path / "tf", "--no-progress-bar", "--log-interval", "1",
                     "--log-format", "simple", "--teacher-forcing", "0.9", "--teacher-forcing-min", "0.6",
                     "--teacher-forcing-decay-updates", "3")
    logged = [float(v) for v in re.findall(r"teacher_forcing[= ]([0-9.]+)", result.stdout + result.stderr)]
    assert logged[:3] == pytest.approx([0.9, 0.8, 0.7], abs=1e-3), logged
    result = run_cli("fairseq-interactive", data_bin, "--user-dir", USER_DIR, "--path", checkpoint, "--cpu",
                     "--beam", "5", input="w3 w4 w5\nw7 w1\n")
    assert len(re.findall(r"^H-\d+\t", result.stdout, flags=re.M)) == 2


def test_soft_alignment_matches_attention_on_unpadded_sentences(data_bin, tmp_path):
    """fairseq-generate left-pads the batch; the printed alignment must equal each sentence's own attention."""
    from fairseq import checkpoint_utils

    import fairseq_attn_gru  # noqa: F401

    checkpoint = train(data_bin, tmp_path, "gru_attn_concat")
    out = generate(data_bin, checkpoint, "--beam", "1", "--print-alignment", "soft", "--batch-size", "24")
    models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task([str(checkpoint)])
    model = models[0].eval()
    src = dict(re.findall(r"^S-(\d+)\t(.*)$", out, flags=re.M))
    hyp = {i: h for i, _score, h in re.findall(r"^H-(\d+)\t(\S+)\t(.*)$", out, flags=re.M)}
    soft = dict(re.findall(r"^A-(\d+)\t(.*)$", out, flags=re.M))
    assert len({len(s.split()) for s in src.values()}) > 1  # mixed lengths: the batch really is padded
    for i in src:
        src_tokens = task.source_dictionary.encode_line(src[i], add_if_not_exist=False).long()[None]
        tgt = task.target_dictionary.encode_line(hyp[i], add_if_not_exist=False).long()
        prev = torch.cat([tgt[-1:], tgt[:-1]])[None]
        with torch.no_grad():
            _, extra = model(src_tokens, torch.tensor([src_tokens.numel()]), prev)
        expected = extra["attn"][0][0]  # (T, S) over the unpadded source incl. eos
        printed = torch.tensor([[float(p) for p in row.split(",")] for row in soft[i].split()])
        torch.testing.assert_close(printed, expected[: printed.size(0)], atol=2e-6, rtol=0)
