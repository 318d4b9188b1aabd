"""Job kinds. Importing this package registers every kind with :mod:`backend.jobs`."""

from backend.tasks import health, projection  # noqa: F401

__all__: list[str] = []
from backend.tasks import cluster  # noqa: F401,E402
from backend.tasks import geo  # noqa: F401,E402
from backend.tasks import graph  # noqa: F401,E402
from backend.tasks import text  # noqa: F401,E402
