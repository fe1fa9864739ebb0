"""fairseq-attn-gru: a fairseq plugin with a GRU encoder-decoder and selectable attention."""
from setuptools import find_packages, setup

setup(
    name="fairseq-attn-gru",
    version="0.1.0",
    description="GRU encoder-decoder with none/dot/general/concat attention and a toy translation task for fairseq",
    long_description=open("README.md", encoding="utf-8").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["fairseq_attn_gru", "fairseq_attn_gru.*"]),
    python_requires=">=3.9",
    # torch and fairseq are installed by `make install` (fairseq-fixed needs --no-build-isolation);
    # they are not listed here so pip never swaps the CPU torch for a multi-GB CUDA build.
    install_requires=["numpy", "sacrebleu>=2.0"],
    extras_require={
        "test": ["pytest>=7", "matplotlib"],
        "multi30k": ["sacremoses", "subword-nmt"],
    },
)
