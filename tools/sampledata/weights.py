"""The pre-trained weights the tests and the demo read (Dynamic World, Presto), fetched like the sample data.

``python -m deeplandcover.tools.sampledata.weights`` (``make data`` and ``make test`` run it when
``DLC_WEIGHTS_DIR`` is not set) downloads the authors' files from their repositories at pinned commits into
the per-user weights cache (:func:`core.training.weights_catalog.cache_dir`), each checked by SHA-256, and
prints their licences first. With ``DLC_WEIGHTS_DIR`` set (CI: ``../shared/weights``) it only checks that
folder. Nothing is ever written into the repository.
"""

from __future__ import annotations

import sys

from deeplandcover.core.errors import ModelFileError

TERMS = (
    "Dynamic World (Brown et al. 2022, Scientific Data 9, 251): google/dynamicworld, Apache-2.0 (NOTICE: "
    "attribution required).",
    "Presto (Tseng et al. 2023, arXiv:2304.14065): nasaharvest/presto, MIT.",
)


def ensure_weights(progress=print) -> None:
    """Check or download the Dynamic World checkpoint and Presto's state dict into the weights folder.

    Raises:
        ModelFileError: a file is missing and cannot be downloaded (offline: the message says where to put
            it, or to set DLC_WEIGHTS_DIR), or its SHA-256 differs.
    """
    from deeplandcover.core.training.dynamicworld import checkpoint_folder
    from deeplandcover.core.training.presto import presto_weights

    folder, _ = checkpoint_folder()
    progress(f"Dynamic World checkpoint: {folder}")
    presto = presto_weights("presto")
    progress(f"Presto weights: {presto.path}")


def main() -> int:
    """Print the licences, fetch or check the weights; exit status 1 with one message when that fails."""
    from deeplandcover.core.training.weights_catalog import cache_dir

    print("\n".join(TERMS) + "\n", flush=True)
    try:
        ensure_weights(lambda s: print(s, flush=True))
    except ModelFileError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"\nPre-trained weights ready in {cache_dir()} (DLC_WEIGHTS_DIR names another copy).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
