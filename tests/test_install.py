"""Import behaviour of the package itself."""
import sys

from conftest import REPO, run_cli


def test_import_without_fairseq_says_how_to_install():
    """An ordinary ImportError a Python program can catch, whose message says what to install: `make install` in
    the checkout, and for a pip install (which cannot bring torch and fairseq itself) the two pip commands."""
    code = ("import sys; sys.modules['fairseq'] = None\n"
            "try:\n    import fairseq_attn_gru\nexcept ImportError as error:\n    print('caught:', error)\n")
    result = run_cli(sys.executable, "-c", code, cwd=REPO, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("caught:") and "make install" in result.stdout
    for needed in ("torch==2.13.0", "pip install --no-build-isolation --no-deps fairseq-fixed==0.12.3.1"):
        assert needed in result.stdout, needed


def test_user_dir_registers_everything():
    code = ("import fairseq_attn_gru\n"
            "from fairseq.models import ARCH_MODEL_REGISTRY\nfrom fairseq.tasks import TASK_REGISTRY\n"
            "print(sorted(a for a in ARCH_MODEL_REGISTRY if a.startswith('gru')), 'toy_translation' in TASK_REGISTRY)")
    out = run_cli(sys.executable, "-c", code).stdout
    assert "gru_attn_iwslt_de_en" in out and "gru_bahdanau" in out and out.strip().endswith("True")
