"""Embeddings we compute: text, locations, graph nodes."""

__all__: list[str] = []

from backend.embed.text import MODEL_NAME, TextEmbedder, TextEmbeddingReport  # noqa: E402

__all__ += ["MODEL_NAME", "TextEmbedder", "TextEmbeddingReport"]

from backend.embed.location import (  # noqa: E402
    DFS_ENCODERS,
    ENCODERS,
    LocationEncoder,
    SatCLIPLocationEncoder,
    SirenNet,
    load_satclip_location_encoder,
    positional_encoding,
    spherical_harmonics,
)

__all__ += [
    "DFS_ENCODERS",
    "ENCODERS",
    "LocationEncoder",
    "SatCLIPLocationEncoder",
    "SirenNet",
    "load_satclip_location_encoder",
    "positional_encoding",
    "spherical_harmonics",
]

from backend.embed.graph import FastRP, LaplacianEigenmaps, force_layout  # noqa: E402

__all__ += ["FastRP", "LaplacianEigenmaps", "force_layout"]
