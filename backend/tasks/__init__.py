"""Job kinds. Importing this package registers every kind with :mod:`backend.jobs`."""

from backend.tasks import projection  # noqa: F401

__all__: list[str] = []
