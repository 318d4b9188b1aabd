"""Exceptions the backend raises for problems a user can act on.

Every message says what happened, with numbers, and what to do. The UI shows
``str(exc)`` of any :class:`LatentLensError` as an error box, never a traceback.
"""

__all__ = [
    "LatentLensError",
    "InvalidInputError",
    "InvalidParameterError",
    "JobCancelled",
    "NotFoundError",
]


class LatentLensError(Exception):
    """Base class of the errors a user can act on."""


class InvalidInputError(LatentLensError, ValueError):
    """The data (an upload, an array, a graph, a weights file) cannot be used as given."""


class InvalidParameterError(LatentLensError, ValueError, TypeError):
    """A parameter is out of its allowed range or of the wrong type.

    The message names the parameter, the allowed range and the value received.
    """


class NotFoundError(LatentLensError, KeyError):
    """A dataset, job or artifact id is unknown to the store."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class JobCancelled(LatentLensError):
    """Raised inside a job's progress callback once the user has cancelled it."""
