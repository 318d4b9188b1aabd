"""Embeddings we compute: text, locations, graph nodes."""

__all__: list[str] = []


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
