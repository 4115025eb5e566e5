"""``python -m deeplandcover.core.training``: Train Model from the command line (see docs/training.md).

Works under ``torchrun`` too. The trainer is imported under its package name, so that the processes use the
package's classes, not copies in ``__main__``.
"""

import sys

from deeplandcover.core.training.trainer import main

sys.exit(main())
