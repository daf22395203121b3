"""Serving: what a tagged document becomes for people and tools: output writers of ``parsner predict``,
pre-annotations for annotation tools, and the HTTP API with its page."""
