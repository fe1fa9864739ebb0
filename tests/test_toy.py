"""The toy_translation task: determinism, the rules, the text-file route, and the CLIs on it."""
import re

import pytest
import torch

from conftest import REPO, USER_DIR, run_cli, toy_task, train_toy
from fairseq_attn_gru.tasks import toy_data
from fairseq_attn_gru.tasks.toy_translation import ToyTranslationConfig, ToyTranslationTask

SMALL = dict(toy_vocab_size=30, toy_min_len=2, toy_max_len=9, toy_train_size=60, toy_valid_size=10, toy_test_size=10)


def make_task(**options):
    return ToyTranslationTask.setup_task(ToyTranslationConfig(**{**SMALL, **options}))


def test_same_seed_same_data_other_seed_other_data():
    first, second, other = make_task(toy_seed=5), make_task(toy_seed=5), make_task(toy_seed=6)
    for split in toy_data.SPLITS:
        assert first.split_pairs(split) == second.split_pairs(split)
        assert first.split_pairs(split) != other.split_pairs(split)
    assert first.source_dictionary.symbols == second.source_dictionary.symbols == other.source_dictionary.symbols
    assert first.target_dictionary.symbols == second.target_dictionary.symbols
    assert first.split_pairs("train") != first.split_pairs("test")  # each split has its own stream


def test_rules_on_hand_made_examples():
    source = [4, 0, 7, 4, 2]
    assert toy_data.apply_rule("copy", source, 10, 1) == [4, 0, 7, 4, 2]
    assert toy_data.apply_rule("reverse", source, 10, 1) == [2, 4, 7, 0, 4]
    assert toy_data.apply_rule("sort", source, 10, 1) == [0, 2, 4, 4, 7]
    assert toy_data.reorder_blocks(list("abcdefgh"), [2, 0, 1]) == list("cabfdegh")
    assert toy_data.reorder_blocks(list("abcde"), [1, 2, 0]) == list("bcaed")
    lexicon, block_order = toy_data.translate_rule_params(10, seed=1)
    assert sorted(lexicon.tolist()) == list(range(10)) and block_order != [0, 1, 2]
    expected = toy_data.reorder_blocks([int(lexicon[w]) for w in source], block_order)
    assert toy_data.apply_rule("translate", source, 10, 1) == expected
    pairs = toy_data.generate_pairs("translate", 10, 3, 3, 1, seed=1, split="train")
    src_words, tgt_words = pairs[0][0].split(), pairs[0][1].split()
    assert all(w.startswith("w") for w in src_words) and all(w.startswith("x") for w in tgt_words)
    assert toy_data.translate_rule_params(10, seed=2)[0].tolist() != lexicon.tolist()


def test_text_file_route_gives_the_same_dictionaries_and_sentences(tmp_path):
    options = ["--toy-rule", "translate", "--toy-vocab-size", "30", "--toy-min-len", "2", "--toy-max-len", "9",
               "--toy-train-size", "60", "--toy-valid-size", "10", "--toy-test-size", "10", "--toy-seed", "1"]
    run_cli(REPO / "scripts" / "make_toy_data.py", "--out-dir", tmp_path / "text", *options)
    text = tmp_path / "text"
    run_cli("fairseq-preprocess", "--source-lang", "src", "--target-lang", "tgt", "--trainpref", text / "train",
            "--validpref", text / "valid", "--testpref", text / "test", "--srcdict", text / "dict.src.txt",
            "--tgtdict", text / "dict.tgt.txt", "--destdir", tmp_path / "bin", "--workers", "1")
    from fairseq.tasks.translation import TranslationConfig, TranslationTask

    binarized = TranslationTask.setup_task(TranslationConfig(data=str(tmp_path / "bin"), source_lang="src",
                                                             target_lang="tgt",
                                                             dataset_impl="mmap", train_subset="train",
                                                             required_seq_len_multiple=1))
    toy = make_task(toy_rule="translate", toy_seed=1)
    assert binarized.source_dictionary.symbols == toy.source_dictionary.symbols
    assert binarized.target_dictionary.symbols == toy.target_dictionary.symbols
    for split in toy_data.SPLITS:
        binarized.load_dataset(split)
        toy.load_dataset(split)
        a, b = binarized.dataset(split), toy.dataset(split)
        assert len(a) == len(b) == 10 or split == "train"
        for i in range(len(b)):
            assert torch.equal(a[i]["source"], b[i]["source"]) and torch.equal(a[i]["target"], b[i]["target"])


@pytest.mark.parametrize("flags,message", [
    (["--toy-min-len", "5", "--toy-max-len", "2"], "--toy-max-len=2"),
    (["--toy-vocab-size", "0"], "--toy-vocab-size=0"),
    (["--toy-test-size", "-1"], "--toy-test-size=-1"),
])
def test_out_of_range_options_stop_with_one_line(flags, message, tmp_path):
    result = run_cli(REPO / "scripts" / "make_toy_data.py", "--out-dir", tmp_path, *flags, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {message}")


TOY = toy_task("reverse", vocab_size=20, min_len=3, max_len=10, train_size=4000, valid_size=100, test_size=60)


@pytest.fixture(scope="module")
def reverse_model(tmp_path_factory):
    """gru_attn_dot trained on the reversal rule until it reverses almost every test sentence."""
    save_dir = tmp_path_factory.mktemp("reverse")
    train_toy(save_dir, TOY, "--lr", "0.005", "--clip-norm", "5", "--dropout", "0", "--max-tokens", "2000",
              "--max-epoch", "8", "--no-epoch-checkpoints", "--seed", "1")
    return save_dir / "checkpoint_last.pt"


@pytest.mark.slow
def test_reversal_hard_alignment_points_at_mirror_position(reverse_model):
    out = run_cli("fairseq-generate", "--user-dir", USER_DIR, *TOY, "--path", reverse_model, "--gen-subset", "test",
                  "--cpu", "--beam", "5", "--print-alignment", "hard", "--batch-size", "32").stdout
    sources = dict(re.findall(r"^S-(\d+)\t(.*)$", out, flags=re.M))
    targets = dict(re.findall(r"^T-(\d+)\t(.*)$", out, flags=re.M))
    hypotheses = {i: h for i, _, h in re.findall(r"^H-(\d+)\t(\S+)\t(.*)$", out, flags=re.M)}
    alignments = dict(re.findall(r"^A-(\d+)\t(.*)$", out, flags=re.M))
    correct = [i for i in sources if hypotheses[i] == targets[i]]
    assert len(correct) >= 0.9 * len(sources), f"only {len(correct)} of {len(sources)} reversed exactly"
    mirrored = total = 0
    for i in correct:
        n = len(sources[i].split())
        for pair in alignments[i].split():
            src_pos, tgt_pos = map(int, pair.split("-"))
            mirrored += src_pos == n - 1 - tgt_pos
            total += 1
    assert mirrored >= 0.95 * total, f"{mirrored}/{total} alignment links point at n-1-t"


@pytest.mark.slow
def test_interactive_on_the_toy_task(reverse_model):
    long_line = " ".join(["w1"] * 300)
    result = run_cli("fairseq-interactive", "--user-dir", USER_DIR, *TOY, "--path", reverse_model, "--cpu",
                     "--beam", "5", input=f"w1 w2 w3 w4\n\nw5 nonsense w6\n{long_line}\nw7 w8 w9\n")
    hypotheses = re.findall(r"^H-\d+\t\S+\t(.*)$", result.stdout, flags=re.M)
    assert hypotheses[0] == "w4 w3 w2 w1" and hypotheses[-1] == "w9 w8 w7"
    assert len(hypotheses) == 3
    assert "skipped: input line 2 is empty" in result.stderr
    assert "longer than --max-source-positions=256" in result.stderr
    assert "1 unknown word(s) read as <unk>" in result.stderr


@pytest.mark.slow
def test_hub_interface_translates(reverse_model):
    from fairseq_attn_gru import GRUAttnModel

    hub = GRUAttnModel.from_pretrained(str(reverse_model.parent), checkpoint_file=reverse_model.name)
    assert hub.translate("w5 w6 w7 w8 w9") == "w9 w8 w7 w6 w5"


@pytest.mark.slow
def test_demo_writes_every_file(tmp_path):
    run_cli(REPO / "scripts" / "demo.py", "--out-dir", tmp_path, "--quick")
    import json

    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results) == {"none", "dot", "general", "concat"}
    for values in results.values():
        assert {"bleu", "sacrebleu", "exact_match", "params", "train_seconds"} <= set(values)
    for name in ["results.md", "bleu_by_length.png"] + [f"attention_{t}.png" for t in results]:
        assert (tmp_path / name).stat().st_size > 0, name
    assert "| concat |" in (tmp_path / "results.md").read_text()
