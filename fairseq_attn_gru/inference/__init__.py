"""Inference extras: int8 on CPU (int8.py), attention from Python (attention_api.py), TorchScript export (torchscript.py)."""
