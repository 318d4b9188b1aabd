"""Embeddings we compute: text, locations, graph nodes."""

__all__: list[str] = []
