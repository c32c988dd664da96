"""lowdata: make vision transformers work on small data, and measure what each remedy is worth.

`import lowdata` stays light (no torch) so the CLI answers `--help` at once; `train` loads on first use.
"""
from typing import Any

__version__ = "0.1.0"
__all__ = ["train", "pretrain", "run_study", "evaluate_run", "evaluate", "predict", "export", "load_run",
           "create_model", "quiet"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from lowdata import api

        return getattr(api, name)
    raise AttributeError(f"module 'lowdata' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The API among the module's names, though it loads on first use (so `dir(lowdata)` and tab completion
    show it)."""
    return sorted({*globals(), *__all__})
