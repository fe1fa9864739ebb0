"""The ``toy_translation`` task: seeded parallel data generated in memory."""
from .toy_translation import ToyTranslationTask

__all__ = ["ToyTranslationTask"]
