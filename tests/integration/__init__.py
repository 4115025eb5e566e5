"""End-to-end tests through ``qgis_process`` and the cross-version comparison of the deterministic chain."""
