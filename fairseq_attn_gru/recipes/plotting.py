"""Attention heat maps, one function for the toy demo and the Multi30k recipe (matplotlib: the `demo` extra).

matplotlib is imported when a figure is drawn, not with this module: a script checks for it with ``pyplot()``
before its long work, and a missing matplotlib is then one ``error:`` line, also under ``python -m``.
"""
from .cli import require_module
from .scoring import Translation


def pyplot():
    """matplotlib.pyplot drawing to files only (the Agg backend: no display), or MissingDependencyError."""
    require_module("matplotlib").use("Agg")
    return require_module("matplotlib.pyplot")


def plot_attention(translation: Translation, path, title: str, source_label: str = "source",
                   target_label: str = "output", figsize=(7, 6), fontsize: int = 7) -> None:
    """Rows: output tokens + </s>; columns: source tokens + </s>; colour: attention weight in [0, 1].

    A translation without an alignment (a model without attention) gets a panel saying so.
    """
    plt = pyplot()
    figure, axes = plt.subplots(figsize=figsize)
    source_tokens = translation.source.split() + ["</s>"]
    target_tokens = translation.hypothesis.split() + ["</s>"]
    if translation.soft_alignment is None:
        axes.text(0.5, 0.5, "no attention:\nthe decoder sees only the\nfinal encoder state",
                  ha="center", va="center", fontsize=14)
        axes.set_axis_off()
    else:
        image = axes.imshow(translation.soft_alignment, cmap="viridis", aspect="auto", vmin=0, vmax=1)
        axes.set_xticks(range(len(source_tokens)), source_tokens, rotation=90, fontsize=fontsize)
        axes.set_yticks(range(len(target_tokens)), target_tokens, fontsize=fontsize)
        axes.set_xlabel(source_label)
        axes.set_ylabel(target_label)
        figure.colorbar(image, ax=axes, fraction=0.04)
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
