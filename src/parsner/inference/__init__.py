"""Inference: load a model (folder, hub id, ONNX export or stand-in), run it through a backend, decode windows back
to one tag per word, and tag raw text (``Tagger``); ONNX export."""
