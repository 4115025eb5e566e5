"""Lazy re-exports for the stage packages' ``__init__`` (PEP 562: a module ``__getattr__``).

A stage package (``core.chips``, ``core.training``, ...) names its entry point and options at its top
(``from deeplandcover.core.training import TrainConfig, train_model``) without importing the modules
behind them until a name is used: loading the Processing provider imports the light option modules
only, and a torch-free stage never imports torch through its package.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package`` re-exporting ``exports``.

    Args:
        package: the package's ``__name__``.
        exports: name -> the submodule defining it, relative to ``package`` (``".export"``).

    Returns:
        ``(__getattr__, __dir__)`` to assign in the package's ``__init__``. A name is imported on first
        use and then kept in the package's namespace.

    Raises:
        AttributeError: (from ``__getattr__``) a name the package does not export.
    """

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name], package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
