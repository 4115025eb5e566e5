"""Normalisation, dihedral transforms, spectral indices and time-series cleaning."""
