"""Deep Land Cover core library.

QGIS-free: nothing in this package imports ``qgis``. It runs in scripts, tests and Dask workers.
Importing this package imports nothing heavy; import the submodules you need.
"""

__all__: list[str] = []
