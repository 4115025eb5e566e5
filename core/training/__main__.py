"""``python -m deeplandcover.core.training``: Train Model from the command line (see docs/training.md).

Works under ``torchrun`` too. The CLI (:mod:`core.training.cli`) is imported under its package name, so
that the processes use the package's classes, not copies in ``__main__``.
"""

import sys

from deeplandcover.core.training.cli import main

sys.exit(main())
