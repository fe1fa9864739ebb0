"""Reusable recipe code (scoring, plotting, the demo, the Multi30k pipeline); ``scripts/*.py`` are its entry points."""
