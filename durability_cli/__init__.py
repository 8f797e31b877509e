"""durability: forecast how the durability of materials decays under changing conditions.

The Python API (see docs/API.md)::

    import durability_cli as dur
    model = dur.train(df, target="capacity", static=["material"], epochs=200)
    forecast = model.forecast(plan, samples=200, threshold=0.8)

The names below come from ``durability_cli.api``, imported on first use, so that importing the
package (and ``durability --help``) does not import torch or pandas.
"""

__version__ = "0.1.0"

from durability_cli.errors import DurabilityError, InputError  # noqa: E402  (light: no torch)

_API = (
    "train",
    "tune",
    "load",
    "describe_file",
    "read",
    "set_threads",
    "Model",
    "Forecast",
    "Evaluation",
    "Columns",
)
__all__ = ["__version__", "DurabilityError", "InputError", *_API]


def __getattr__(name: str):
    if name in _API:
        from durability_cli import api

        return getattr(api, name)
    raise AttributeError(f"module 'durability_cli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
