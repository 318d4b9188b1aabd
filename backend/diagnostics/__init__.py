"""Diagnostics: representation health, projection faithfulness, weight spectra, graph reconstruction."""

__all__: list[str] = []
