"""The translation pipeline for any pair (fairseq_attn_gru/pipeline/, the `fairseq-attn-gru` steps).

Against references computed another way: the in-process Translator against fairseq-generate on the same encoded
text, detokenised text against the raw lines, cleaning counts against a corpus built to hold each case, BLEU tok-lc
against hand-tokenised text. End to end through the console tool as a person runs it: a 200-line slice of Multi30k
English->French (skipped without ../shared), and a synthetic Georgian->Armenian pair, a script sacremoses does not
tokenise, through SentencePiece. Every bad input of the issue: one line, nothing written.
"""
import datetime
import json
import os
import random
import re
import shutil

import pytest
from conftest import SHARED, USER_DIR, one_line_error, run_cli

from fairseq_attn_gru.errors import UserError
from fairseq_attn_gru.pipeline import prepare, run, train
from fairseq_attn_gru.pipeline.clean import Limits, clean_pairs
from fairseq_attn_gru.pipeline.corpus import read_text
from fairseq_attn_gru.pipeline.evaluate import Translator, chosen_model
from fairseq_attn_gru.pipeline.text import text_processing
from fairseq_attn_gru.recipes.scoring import parse_generate_output, sacrebleu_score, tok_lc_bleu, tokenized_lowercase

MULTI30K = SHARED / "data" / "multi30k"
TINY_MODEL = ["--encoder-embed-dim", "16", "--encoder-hidden-size", "16", "--encoder-layers", "1",
              "--decoder-embed-dim", "16", "--decoder-hidden-size", "32", "--decoder-layers", "1",
              "--decoder-out-embed-dim", "16"]
# a corpus of a few hundred short lines: more, smaller batches, a short warm-up, validation every 5 epochs
SMALL_CORPUS = ["--dropout", "0", "--lr", "0.005", "--warmup-updates", "50", "--max-tokens", "500",
                "--validate-interval", "5"]
needs_multi30k = pytest.mark.skipif(not MULTI30K.is_dir(), reason=f"needs the raw Multi30k files in {MULTI30K}")


def tool(*args, check=True, input=None):
    """`fairseq-attn-gru ARGS` as a person runs it; one thread (tiny models only lose time to synchronisation)."""
    return run_cli("fairseq-attn-gru", *args, check=check, input=input, timeout=600, env={"OMP_NUM_THREADS": "1"})


# -- synthetic corpora: word-for-word translations a tiny model learns in seconds -----------------------------------

GERMAN = {"ein": "a", "mann": "man", "frau": "woman", "hund": "dog", "katze": "cat", "sieht": "sees",
          "hat": "has", "roten": "red", "blauen": "blue", "ball": "ball", "hut": "hat", "und": "and",
          "auf": "on", "dem": "the", "tisch": "table", "kind": "child", "spielt": "plays", "mit": "with",
          "rot-weißen": "red-white", "&": "&"}
# Georgian and Armenian letters: scripts sacremoses has no rules for
GEORGIAN_LETTERS, ARMENIAN_LETTERS = "აბგდევზთიკლმნოპჟრსტუფქღყშჩცძწჭხჯჰ", "աբգդեզէըթժիլխծկհձղճմյնշոչպջռսվտրցւփքօֆ"


def german_english_line(rng, oov=False):
    german = [rng.choice(list(GERMAN)) for _ in range(rng.randint(2, 7))]
    english = [GERMAN[word] for word in german]
    if oov:  # a word with a letter the training data never has: <unk> on both sides after BPE
        german.insert(1, "Zebra")
        english.insert(1, "zebra")
    german[0], english[0] = german[0].capitalize(), english[0].capitalize()
    if rng.random() < 0.3:  # typographic quotes: Moses punctuation normalisation changes them
        return f"„{' '.join(german)}“ .", f"\"{' '.join(english)}\" ."
    return " ".join(german) + ".", " ".join(english) + "."


def georgian_armenian_lexicon(size=24, seed=0):
    rng = random.Random(seed)
    word = lambda letters: "".join(rng.choice(letters) for _ in range(rng.randint(2, 6)))  # noqa: E731
    return {word(GEORGIAN_LETTERS): word(ARMENIAN_LETTERS) for _ in range(size)}


def georgian_armenian_line(rng, lexicon):
    source = [rng.choice(list(lexicon)) for _ in range(rng.randint(2, 7))]
    return " ".join(source) + ".", " ".join(lexicon[word] for word in source) + "։"  # Armenian full stop


def write_corpus(root, langs, make_line, sizes):
    """root/<split>.<lang> for each split of ``sizes`` ({split: lines}), line i of a split ``make_line(rng, split,
    i)``; returns root."""
    rng = random.Random(0)
    root.mkdir(parents=True, exist_ok=True)
    for split, size in sizes.items():
        pairs = [make_line(rng, split, i) for i in range(size)]
        for lang, column in zip(langs, (0, 1)):
            (root / f"{split}.{lang}").write_text("".join(pair[column] + "\n" for pair in pairs), encoding="utf-8")
    return root


def german_english(root, sizes=None):
    sizes = sizes or {"train": 1000, "val": 24, "test_2016_flickr": 8}
    return write_corpus(root, ("de", "en"),
                        lambda rng, split, i: german_english_line(rng, oov=split != "train" and i % 5 == 0), sizes)


# -- units ----------------------------------------------------------------------------------------------------------

def test_read_text_drops_bom_and_crlf_and_keeps_separators_inside_a_line(tmp_path):
    path = tmp_path / "x.en"
    path.write_bytes("\ufeffone\r\ntwo\u2028half\r\nthree\rsame line\n\n".encode("utf-8"))
    assert read_text(path) == ["one", "two\u2028half", "three\rsame line", ""]
    path.write_bytes(b"no newline at the end")
    assert read_text(path) == ["no newline at the end"]


def test_cleaning_drops_each_case_once_and_counts_it():
    pairs = [("a b", "c d"), ("", "x"), ("x", "   "), (" ".join("w" * 11), "y"),  # empty, empty, too long (11 > 10)
             ("one", "1 2 3 4"), ("one two", "1 2 3 4"),  # ratio 4 > 3: dropped; ratio 2: kept
             ("a b", "c d"), ("a b", "c e")]  # an exact duplicate (dropped); the same source, another target (kept)
    sources, targets = [s for s, _ in pairs], [t for _, t in pairs]
    kept_sources, kept_targets, counts = clean_pairs(sources, targets, Limits(max_words=10, max_ratio=3))
    assert list(zip(kept_sources, kept_targets)) == [("a b", "c d"), ("one two", "1 2 3 4"), ("a b", "c e")]
    assert counts == {"pairs": 8, "empty": 2, "too_long": 1, "length_ratio": 1, "duplicate": 1, "kept": 3}
    assert clean_pairs(["one"], ["1 2 3 4 5 6 7 8 9 10"], Limits(max_ratio=0))[2]["kept"] == 1  # 0: no ratio check


@pytest.mark.parametrize("processing", ["moses-bpe", "sentencepiece"])
def test_decoding_the_encoded_text_gives_the_raw_lines_back(tmp_path, processing):
    """decode(encode(x)) == x: SentencePiece gives the raw text itself (this text needs no NFKC change); Moses gives
    x after its punctuation normalisation, except where detokenisation is no exact inverse (`" .` becomes `".`)."""
    rng = random.Random(1)
    lines = {"de": [], "en": []}
    for _ in range(300):
        german, english = german_english_line(rng)
        lines["de"].append(german)
        lines["en"].append(english)
    worker = text_processing(tmp_path, processing, ("de", "en"), "separate", 60)
    worker.learn(lines)
    assert set(worker.model_files()) <= {path.name for path in tmp_path.iterdir()}
    for lang, raw in lines.items():
        encoded = worker.encode(raw, lang)
        assert any(len(e.split()) > len(r.split()) for e, r in zip(encoded, raw))  # split into subwords
        decoded = worker.decode(encoded, lang)
        if processing == "sentencepiece":
            assert decoded == raw
        else:
            normalised = [line.replace("„", '"').replace("“", '"') for line in raw]  # Moses' German quotes
            same = sum(a == b for a, b in zip(decoded, normalised))
            assert same == sum('" .' not in line for line in normalised) > 150, (lang, same)


def test_bleu_tok_lc_scores_lowercased_moses_tokens():
    assert tokenized_lowercase(["A dog-house, in Paris."], "en") == ["a dog @-@ house , in paris ."]
    assert tok_lc_bleu(["A DOG-house, in Paris."], ["a dog-house, in paris."], "en")["score"] == 100.0
    # the same text cased and detokenised scores lower: 13a keeps "dog-house" one token and case matters
    assert sacrebleu_score(["A DOG-house, in Paris."], ["a dog-house, in paris."])["score"] < 100
    signature = tok_lc_bleu(["a"], ["a"], "en")["signature"]
    assert "tok:none" in signature and "lowercased" in signature


# -- bad input: one line, nothing written ---------------------------------------------------------------------------

BAD_INPUT = [  # (what is damaged, the arguments' change, the message's start)
    ("line counts", lambda d: (d / "val.en").write_text("a dog\n"), [],
     "'{d}/val.de' has 24 lines but '{d}/val.en' has 1: a split's files must be line-aligned"),
    ("missing split", lambda d: (d / "val.de").unlink(), [], "missing valid file '{d}/val.de'"),
    ("not UTF-8", lambda d: (d / "train.de").write_bytes(b"ein \xff Hund\n"), [],
     "'{d}/train.de' is not UTF-8 text (line 1, byte 0xff)"),
    ("empty test set", lambda d: (d / "test_2016_flickr.en").write_text(""), [], "'{d}/test_2016_flickr.en' is empty"),
    ("same languages", None, ["--target-lang", "de"], "--source-lang and --target-lang are both 'de'"),
    ("bad code", None, ["--source-lang", "de-AT"], "--source-lang='de-AT' is not allowed: a language code"),
    ("unknown to sacremoses", None, ["--text-processing", "moses-bpe", "--source-lang", "ka"],
     "--source-lang='ka': sacremoses has no tokenisation"),
    ("other way's size", None, ["--bpe-merges", "100"],
     "--bpe-merges is not allowed with --text-processing sentencepiece"),
]


@pytest.mark.parametrize("damage, change, message", [case[1:] for case in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_run_refuses_bad_input_in_one_line_and_writes_nothing(tmp_path, damage, change, message):
    """In-process (the checks come before anything slow); the console form of such a refusal is checked below."""
    data = german_english(tmp_path / "data")
    if damage:
        damage(data)
    work = tmp_path / "work"
    with pytest.raises(UserError) as refused:
        run.main(["--source-lang", "de", "--target-lang", "en", "--data", str(data), "--work", str(work), *change])
    assert str(refused.value).startswith(message.format(d=data)) and "\n" not in str(refused.value)
    assert not work.exists()


def test_a_refusal_is_one_error_line_of_the_console_tool(tmp_path):
    data = german_english(tmp_path / "data")
    (data / "val.en").write_text("a dog\n")
    result = tool("run", "--source-lang", "de", "--target-lang", "en", "--data", data, "--work", tmp_path / "w",
                  check=False)
    one_line_error(result, f"'{data}/val.de' has 24 lines but '{data}/val.en' has 1")
    assert not (tmp_path / "w").exists()


def test_crlf_and_a_byte_order_mark_prepare_as_the_same_text(tmp_path):
    unix = german_english(tmp_path / "unix")
    windows = tmp_path / "windows"
    shutil.copytree(unix, windows)
    for path in windows.iterdir():
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    for data in (unix, windows):
        prepare.main(["--source-lang", "de", "--target-lang", "en", "--data", str(data), "--out",
                      str(tmp_path / f"{data.name}_prep"), "--text-processing", "moses-bpe", "--bpe-merges", "50"])
    for name in ("text/train.de", "text/valid.en", "bin/dict.de.txt", "bpe.codes"):
        assert (tmp_path / "windows_prep" / name).read_bytes() == (tmp_path / "unix_prep" / name).read_bytes(), name


def test_prepare_reuses_its_output_and_refuses_other_settings_or_input(tmp_path, capsys):
    data, out = german_english(tmp_path / "data"), tmp_path / "prep"
    args = ["--source-lang", "de", "--target-lang", "en", "--data", str(data), "--out", str(out)]
    prepare.main([*args, "--text-processing", "moses-bpe", "--bpe-merges", "50"])
    made = {path: path.stat().st_mtime_ns for path in out.rglob("*")}
    prepare.main([*args, "--text-processing", "moses-bpe", "--bpe-merges", "50"])
    assert "is prepared with these settings and inputs: reusing it" in capsys.readouterr().out
    assert {path: path.stat().st_mtime_ns for path in out.rglob("*")} == made
    with pytest.raises(UserError, match=re.escape("subword_size 50 then, 60 now")):
        prepare.main([*args, "--text-processing", "moses-bpe", "--bpe-merges", "60"])
    (data / "train.en").write_text((data / "train.en").read_text().replace("dog", "hound"))
    with pytest.raises(UserError, match=re.escape(f"the train .en file's content ({data / 'train.en'})")):
        prepare.main([*args, "--text-processing", "moses-bpe", "--bpe-merges", "50"])
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="exists and is not a `fairseq-attn-gru prepare` output"):
        prepare.main([*args[:-1], str(tmp_path / "other"), "--text-processing", "moses-bpe", "--bpe-merges", "50"])
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"
    assert {path: path.stat().st_mtime_ns for path in out.rglob("*")} == made


def test_a_one_sided_test_set_is_named_once_and_left_out(tmp_path, capsys, monkeypatch):
    """Czech has no test_2017_flickr: `run` finds the splits once and hands them to prepare, so the note is printed
    once, and the one-sided set is neither checked nor counted. Stopped where training would start."""
    class TrainingWouldStart(Exception):
        pass

    def no_training(*args, **kwargs):
        raise TrainingWouldStart

    monkeypatch.setattr(run, "train", no_training)
    monkeypatch.setattr(run, "machine_description", lambda: {"model": "CPU", "cores": 2, "fp32_matmul_gflops": 1.0,
                                                             "bf16_matmul_gflops": 1.0})
    data = german_english(tmp_path / "data")
    (data / "test_2017_flickr.de").write_text("Ein Hund.\n", encoding="utf-8")  # no .en beside it
    with pytest.raises(TrainingWouldStart):
        run.run(["--source-lang", "de", "--target-lang", "en", "--data", str(data), "--work", str(tmp_path / "work"),
                 "--text-processing", "moses-bpe", "--bpe-merges", "50"])
    note = f"note: {data / 'test_2017_flickr'} has no .en file: not a de-en test set"
    assert capsys.readouterr().out.count(note) == 1
    prepared = json.loads((tmp_path / "work" / "prep" / "prep.json").read_text())
    assert prepared["lines"] == {"train": 1000, "val": 24, "test_2016_flickr": 8}


def test_training_is_reused_resumed_or_refused_as_its_record_says(tmp_path, capsys):
    data, prep = german_english(tmp_path / "data"), tmp_path / "prep"
    prepare.main(["--source-lang", "de", "--target-lang", "en", "--data", str(data), "--out", str(prep),
                  "--text-processing", "moses-bpe", "--bpe-merges", "50"])
    flags = [*TINY_MODEL, "--max-update", "3"]
    save = tmp_path / "main"
    info = train.train(prep, save, flags, precision="fp32", echo_prefix="t")
    assert info["epochs"] == 1 and info["precision"] == "fp32" and "--cpu" in info["train_flags"]
    log = (save / "train.log").read_text()
    assert train.train(prep, save, flags, precision="fp32", echo_prefix="t") == info  # reused: not trained again
    assert (save / "train.log").read_text() == log and "reusing the model trained earlier" in capsys.readouterr().out
    with pytest.raises(UserError, match=re.escape("--max-update: '3' there, '5' now")):
        train.train(prep, save, [*TINY_MODEL, "--max-update", "5"], precision="fp32")
    # an interrupted training (no train_info.json, the record unfinished) resumes: fairseq continues its updates.
    # Killed outright (SIGKILL), the record never got that run's minutes: the checkpoint's own count (made 2 minutes
    # here) is where the resumed run counts from
    record = json.loads((save / train.RUN_RECORD).read_text())
    (save / train.RUN_RECORD).write_text(json.dumps({**record, "finished": False, "train_minutes": 0.0}))
    (save / train.INFO_FILE).unlink()
    import torch

    state = torch.load(save / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    state["extra_state"]["previous_training_time"] = 120.0
    torch.save(state, save / "checkpoint_last.pt")
    resumed = train.train(prep, save, flags, precision="fp32", echo_prefix="t")
    assert "resuming the interrupted training" in capsys.readouterr().out
    assert (save / "train.log").read_text().startswith(log) and "Loaded checkpoint" in (save / "train.log").read_text()
    assert 2.0 <= resumed["train_minutes"] < 3.0


# -- end to end -----------------------------------------------------------------------------------------------------

RESULT_KEYS = {"source_lang", "target_lang", "command", "date", "wall_minutes", "cpu", "prep", "arch", "train_flags",
               "train_minutes", "epochs", "device", "precision", "checkpoint", "tests", "comparison"}


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    """`fairseq-attn-gru run` on a Georgian->Armenian pair from file prefixes, with SentencePiece."""
    root = tmp_path_factory.mktemp("ka_hy")
    lexicon = georgian_armenian_lexicon()
    data = write_corpus(root / "data", ("ka", "hy"), lambda rng, split, i: georgian_armenian_line(rng, lexicon),
                        {"train": 1500, "dev": 24, "test": 12})
    result = tool("run", "--source-lang", "ka", "--target-lang", "hy", "--train", data / "train", "--valid",
                  data / "dev", "--test", data / "test", "--work", root / "work", "--text-processing", "sentencepiece",
                  "--sentencepiece-vocab", "120", "--minutes", "2", "--max-update", "400", "--precision", "fp32",
                  *SMALL_CORPUS, *TINY_MODEL)
    return root, data, result


def test_a_script_sacremoses_does_not_know_runs_through_sentencepiece(synthetic_run):
    root, data, result = synthetic_run
    results = json.loads((root / "work" / "results.json").read_text())
    assert set(results) == RESULT_KEYS
    assert (results["source_lang"], results["target_lang"]) == ("ka", "hy")
    assert results["date"] == datetime.date.today().isoformat()
    assert results["train_minutes"] <= results["wall_minutes"] + 0.05  # the whole command, training included
    assert results["prep"]["text_processing"] == "sentencepiece" and results["prep"]["cleaning"]["pairs"] == 1500
    scores = results["tests"]["test"]
    assert scores["bleu_tok_lc"] is None and "sacremoses has no rules for 'hy'" in scores["bleu_tok_lc_signature"]
    assert scores["sacrebleu"] > 50 and scores["chrf"] > 60, scores  # it learnt the lexicon (82.64 / 87.54 seen)
    hypotheses = (root / "work" / "main" / "test.hyp.hy").read_text(encoding="utf-8").splitlines()
    assert len(hypotheses) == 12 and all(set(line) <= set(ARMENIAN_LETTERS + " ։") for line in hypotheses)
    assert results["command"].startswith("fairseq-attn-gru run --source-lang ka --target-lang hy --train ")


def test_translate_reads_stdin_and_gives_one_line_per_line(synthetic_run):
    root, data, _ = synthetic_run
    sources = read_text(data / "test.ka")
    checkpoint = root / "work" / "main" / json.loads((root / "work" / "results.json").read_text())["checkpoint"]["chosen"]
    result = tool("translate", "--prep", root / "work" / "prep", "--checkpoint", checkpoint,
                  input="\ufeff" + "\r\n".join([*sources[:3], " ", *sources[3:]]) + "\r\n")
    expected = (root / "work" / "main" / "test.hyp.hy").read_text().splitlines()
    assert result.stdout.splitlines() == [*expected[:3], "", *expected[3:]]  # an empty line stays empty
    one_line_error(tool("translate", "--prep", root / "work" / "prep", "--checkpoint", checkpoint, "--input",
                        data / "test.ka", "--output", data / "test.ka", check=False), "--output ")
    assert read_text(data / "test.ka") == sources


def test_work_stands_for_the_model_run_chose_and_scored(synthetic_run, tmp_path):
    """--work WORK translates with WORK/prep and the checkpoint `run` chose on val: the run's own test output, from
    the console tool and from Translator.from_work; the wrong combinations and an unfinished directory are one line."""
    root, data, _ = synthetic_run
    work = root / "work"
    expected = (work / "main" / "test.hyp.hy").read_text(encoding="utf-8").splitlines()
    assert tool("translate", "--work", work, "--input", data / "test.ka").stdout.splitlines() == expected
    assert Translator.from_work(work).translate(read_text(data / "test.ka")) == expected
    chosen = json.loads((work / "results.json").read_text())["checkpoint"]["chosen"]
    assert chosen_model(work) == (work / "prep", str(work / "main" / chosen))
    one_line_error(tool("translate", "--work", work, "--prep", work / "prep", check=False),
                   "--work is not allowed with --prep or --checkpoint")
    one_line_error(tool("translate", "--prep", work / "prep", check=False), "no model: give --work WORK")
    one_line_error(tool("evaluate", "--work", tmp_path, "--test", data / "test", check=False),
                   f"--work {str(tmp_path)!r}: {str(tmp_path / 'main' / 'selection.json')!r} is missing")


def test_moses_refuses_the_script_and_names_the_way_that_works(tmp_path):
    one_line_error(tool("prepare", "--source-lang", "ka", "--target-lang", "hy", "--train", tmp_path / "t",
                        "--valid", tmp_path / "v", "--out", tmp_path / "p", "--text-processing", "moses-bpe",
                        check=False),
                   "--source-lang='ka': sacremoses has no tokenisation rules for it")
    assert not (tmp_path / "p").exists()


@pytest.fixture(scope="module")
def multi30k_run(tmp_path_factory):
    """`fairseq-attn-gru run` on the first 200 lines of Multi30k English->French, two models side by side."""
    if not MULTI30K.is_dir():
        pytest.skip(f"needs the raw Multi30k files in {MULTI30K}")
    work = tmp_path_factory.mktemp("en_fr")
    args = ["run", "--source-lang", "en", "--target-lang", "fr", "--data", MULTI30K, "--work", work, "--limit", 200,
            "--text-processing", "moses-bpe", "--bpe-merges", 500, "--minutes", 2, "--max-epoch", 8, "--precision",
            "fp32", "--models", 2, *TINY_MODEL, "--lr", "0.005", "--warmup-updates", "20"]  # 8 epochs: it learns to end its sentences (faster beam search)
    return work, args, tool(*args)


@needs_multi30k
def test_multi30k_slice_of_a_new_pair_end_to_end(multi30k_run):
    work, args, _ = multi30k_run
    results = json.loads((work / "results.json").read_text())
    assert set(results) == RESULT_KEYS | {"members"}
    assert results["cpu"]["fp32_matmul_gflops"] > 0 and results["cpu"]["cores"] >= 1
    assert set(results["tests"]) == {"test_2016_flickr", "test_2017_flickr"}
    for scores in results["tests"].values():
        assert {"sacrebleu", "signature", "chrf", "chrf_signature", "bleu_tok_lc", "bleu_tok_lc_signature"} <= set(scores)
        assert "tok:13a" in scores["signature"] and isinstance(scores["bleu_tok_lc"], float)
    assert len((work / "main" / "test_2017_flickr.hyp.fr").read_text().splitlines()) == 200
    for seed, member in enumerate(results["members"], start=1):
        assert member["train_flags"][-2:] == ["--seed", str(seed)] and member["epochs"] == 8
        assert set(member["checkpoint"]["val_sacrebleu"]) == {"checkpoint_best.pt", "checkpoint_avg5.pt"}
    assert (work / "results_attention.png").stat().st_size > 0


@needs_multi30k
def test_multi30k_rerun_reuses_every_step(multi30k_run):
    work, args, _ = multi30k_run
    logs = {path: path.read_text() for path in work.glob("main/model*/train.log")}
    output = tool(*args).stdout
    assert "reusing it" in output and output.count("reusing the model trained earlier") == 2
    assert {path: path.read_text() for path in logs} == logs


@needs_multi30k
def test_the_ensemble_translates_as_fairseq_generate_with_both_checkpoints(multi30k_run, tmp_path):
    """The test translations are those of fairseq-generate --path A:B on the same encoded text (fairseq's ensemble:
    the models' token probabilities averaged at each step), and the scores tell them from either model's alone."""
    work, _, _ = multi30k_run
    chosen = [work / "main" / path for path in json.loads((work / "results.json").read_text())["checkpoint"]["chosen"]]
    ours = {t.id: t for t in parse_generate_output((work / "main" / "test_2016_flickr.generate.log").read_text())}
    encoded = binarized_test(work / "prep", MULTI30K / "test_2016_flickr", ("en", "fr"), tmp_path, limit=200)

    def generate(paths):
        output = run_cli("fairseq-generate", encoded, "--user-dir", USER_DIR, "--path", os.pathsep.join(map(str, paths)),
                         "--gen-subset", "test", "--beam", 5, "--batch-size", 64, "--cpu",
                         env={"OMP_NUM_THREADS": "1"}).stdout
        return {t.id: t for t in parse_generate_output(output)}

    assert chosen_model(work) == (work / "prep", os.pathsep.join(map(str, chosen)))  # --work: the same ensemble
    ensemble = generate(chosen)
    assert [ours[i].source for i in ours] == [ensemble[i].source for i in ours]
    for i in ours:
        assert ours[i].hypothesis == ensemble[i].hypothesis, i
        assert abs(float(ours[i].extra["score"]) - float(ensemble[i].extra["score"])) < 1e-3, i
    for alone in (generate(chosen[:1]), generate(chosen[1:])):
        assert max(abs(float(ensemble[i].extra["score"]) - float(alone[i].extra["score"])) for i in ours) > 1e-2


def binarized_test(prep, prefix, langs, tmp_path, limit=None):
    """The raw split encoded by the prepared directory's text processing, then fairseq-preprocess'ed with its
    dictionaries: what fairseq-generate reads (the reference path for the in-process Translator)."""
    settings = prepare.load_prep(prep)
    worker = prepare.processing_of(prep, settings)
    for lang in langs:
        lines = read_text(f"{prefix}.{lang}", limit)
        (tmp_path / f"text.{lang}").write_text("".join(line + "\n" for line in worker.encode(lines, lang)))
    run_cli("fairseq-preprocess", "--source-lang", langs[0], "--target-lang", langs[1], "--testpref",
            tmp_path / "text", "--srcdict", prep / "bin" / f"dict.{langs[0]}.txt", "--tgtdict",
            prep / "bin" / f"dict.{langs[1]}.txt", "--destdir", tmp_path / "bin", "--workers", 1)
    return tmp_path / "bin"


@pytest.mark.slow
@pytest.mark.parametrize("processing, vocab", [("moses-bpe", "joint"), ("sentencepiece", "separate")])
def test_translator_gives_fairseq_generates_translations(tmp_path, processing, vocab):
    """Translator (in-process, raw text in) against fairseq-generate on prepare's encoding of the same lines: the
    same subword source, hypothesis, score and soft attention; its plain text is the decoded hypothesis."""
    data = german_english(tmp_path / "data")
    prep = tmp_path / "prep"
    size_flag = "--bpe-merges" if processing == "moses-bpe" else "--sentencepiece-vocab"
    prepare.main(["--source-lang", "de", "--target-lang", "en", "--data", str(data), "--out", str(prep),
                  "--text-processing", processing, "--vocab", vocab, size_flag, "80"])
    run_cli("fairseq-train", prep / "bin", "--user-dir", USER_DIR, "--task", "translation", "--arch", "gru_attn_dot",
            "--source-lang", "de", "--target-lang", "en", "--dropout", 0, "--optimizer", "adam", "--lr", 0.005,
            "--clip-norm", 5, "--max-tokens", 2000, "--max-update", 100, "--cpu", "--seed", 1, "--num-workers", 0,
            "--disable-validation", "--save-interval", 1000, "--save-dir", tmp_path / "ck",
            env={"OMP_NUM_THREADS": "1"})  # about 6 s
    checkpoint = tmp_path / "ck" / "checkpoint_last.pt"
    output = run_cli("fairseq-generate", binarized_test(prep, data / "val", ("de", "en"), tmp_path), "--user-dir",
                     USER_DIR, "--task", "translation", "--source-lang", "de", "--target-lang", "en", "--path",
                     checkpoint, "--gen-subset", "test", "--beam", 5, "--batch-size", 64, "--cpu",
                     "--print-alignment", "soft", env={"OMP_NUM_THREADS": "1"}).stdout
    before = parse_generate_output(output)
    translator = Translator(prep, checkpoint)
    sources, references = read_text(data / "val.de"), read_text(data / "val.en")
    ours = translator.translations(sources, references, alignment=True)
    assert len(ours) == len(before) == 24 and any("<unk>" in t.source for t in before)  # the OOV lines
    for old, new in zip(before, ours):
        assert (new.id, new.source, new.reference, new.hypothesis) == (old.id, old.source, old.reference,
                                                                       old.hypothesis)
        # fairseq prints six decimals: batches of different shapes may round the last one the other way
        assert [len(row) for row in new.soft_alignment] == [len(row) for row in old.soft_alignment]
        assert old.soft_alignment and all(new_row == pytest.approx(old_row, abs=2e-6) for new_row, old_row
                                          in zip(new.soft_alignment, old.soft_alignment))
        assert abs(float(new.extra["score"]) - float(old.extra["score"])) < 1e-4
    assert [t.extra["text"] for t in ours] == translator.processing.decode([t.hypothesis for t in before], "en")
    # it learnt something (moses-bpe 20-40, SentencePiece's smaller pieces 8 after 100 updates): not empty outputs
    assert sacrebleu_score(translator.translate(sources), references)["score"] > 5


def test_evaluate_int8_translates_with_the_quantized_model(synthetic_run, tmp_path):
    """`evaluate --precision int8` loads the checkpoint quantized (the log names the int8 layers) and scores it."""
    root, data, _ = synthetic_run
    args = ["evaluate", "--prep", root / "work" / "prep", "--checkpoint", root / "work" / "main" / "checkpoint_best.pt",
            "--test", data / "test"]
    fp32 = tool(*args, "--out-dir", tmp_path / "fp32")
    int8 = tool(*args, "--out-dir", tmp_path / "int8", "--precision", "int8")
    assert "int8: dynamic quantization" in int8.stdout + int8.stderr
    assert "int8: dynamic quantization" not in fp32.stdout + fp32.stderr
    for result in (fp32, int8):
        scores = json.loads(result.stdout.strip().splitlines()[-1])["test"]
        assert "tok:13a" in scores["signature"] and scores["sacrebleu"] > 20


def test_evaluate_lenpen_reaches_beam_search_and_bad_values_are_one_line(synthetic_run, tmp_path):
    """--lenpen is fairseq's length penalty: a large one picks longer finished hypotheses than 0 does (an early
    epoch's checkpoint: the final model is sure enough of its lengths that no penalty changes them)."""
    root, data, _ = synthetic_run
    early = min(root.glob("work/main/checkpoint[0-9]*.pt"), key=lambda path: int(path.stem[len("checkpoint"):]))
    args = ["evaluate", "--prep", root / "work" / "prep", "--checkpoint", early, "--src", data / "dev.ka",
            "--ref", data / "dev.hy"]
    lengths = {}
    for lenpen in ("0", "3"):
        tool(*args, "--out-dir", tmp_path / lenpen, "--lenpen", lenpen)
        lengths[lenpen] = len((tmp_path / lenpen / "dev.hyp.hy").read_text())
    assert lengths["3"] > lengths["0"], lengths
    one_line_error(tool(*args, "--lenpen", "nan", check=False),
                   "--lenpen=nan is not allowed: a finite number (1.0: fairseq's default)")
    one_line_error(tool(*args[:3], "--checkpoint", tmp_path / "none.pt", *args[5:], check=False),
                   f"--checkpoint {str(tmp_path / 'none.pt')!r} does not exist")
    one_line_error(tool(*args[:-2], check=False), "--src and --ref go together")


def test_reuse_comparison_keeps_the_earlier_runs_table_and_names_its_flags(synthetic_run, tmp_path):
    root, data, _ = synthetic_run
    results_path = tmp_path / "results.json"
    own_work = tmp_path / "work"
    shutil.copytree(root / "work" / "prep", own_work / "prep")
    args = ["run", "--source-lang", "ka", "--target-lang", "hy", "--train", data / "train", "--valid", data / "dev",
            "--test", data / "test", "--work", own_work, "--text-processing", "sentencepiece",
            "--sentencepiece-vocab", "120", "--results", results_path, "--reuse-comparison", "--max-update", 2,
            "--precision", "fp32", *SMALL_CORPUS, *TINY_MODEL]
    results_path.write_text(json.dumps({"train_flags": ["--earlier"], "comparison": {}}))
    one_line_error(tool(*args, check=False), f"--reuse-comparison: {str(results_path)!r} holds no comparison to reuse")
    assert not (own_work / "main").exists()  # refused before any training
    earlier = {"dot": {"extra_flags": ["--attention-type", "dot"], "val_sacrebleu": 1.5}}
    results_path.write_text(json.dumps({"train_flags": ["--earlier"], "comparison": earlier}))
    tool(*args)
    results = json.loads(results_path.read_text())
    assert results["comparison"] == earlier and results["comparison_base_flags"] == ["--earlier"]
    assert "--max-update" in results["train_flags"]  # this run's own flags, not the earlier ones
