"""Dataset loaders, validation, and the catalogue of bundled real datasets."""

__all__: list[str] = []
