"""Choice of the torch device, in one place."""

from __future__ import annotations

from dataclasses import dataclass

from backend.errors import InvalidParameterError

__all__ = ["DeviceResolution", "resolve_device"]


@dataclass(frozen=True)
class DeviceResolution:
    """The device a computation runs on and why it was chosen."""

    device: str
    reason: str


def resolve_device(device: str | None = None) -> DeviceResolution:
    """Pick the torch device: CUDA when available, else the CPU.

    Parameters
    ----------
    device : {None, "auto", "cpu", "cuda", "cuda:N"}, default=None
        ``None`` or ``"auto"`` picks CUDA when ``torch.cuda.is_available()``,
        else the CPU. An explicit value is used as given.

    Returns
    -------
    DeviceResolution
        ``device`` is a string accepted by ``torch.device``; ``reason`` says why.

    Raises
    ------
    InvalidParameterError
        If ``device`` is not one of the values above, or CUDA is asked for
        on a machine without it.
    """
    import torch

    if device is None or device == "auto":
        if torch.cuda.is_available():
            return DeviceResolution("cuda", "auto: CUDA is available")
        return DeviceResolution("cpu", "auto: no CUDA device found")
    if not isinstance(device, str):
        raise InvalidParameterError(
            f"device must be None, 'auto', 'cpu' or 'cuda[:N]'; got {device!r}."
        )
    if device == "cpu":
        return DeviceResolution("cpu", "requested")
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        if not torch.cuda.is_available():
            raise InvalidParameterError(
                f"device={device!r} was requested but no CUDA device is available; "
                "use device='cpu' or 'auto'."
            )
        index = int(device[5:]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise InvalidParameterError(
                f"device={device!r} was requested but only {torch.cuda.device_count()} "
                "CUDA device(s) exist."
            )
        return DeviceResolution(device, "requested")
    raise InvalidParameterError(
        f"device must be None, 'auto', 'cpu' or 'cuda[:N]'; got {device!r}."
    )
