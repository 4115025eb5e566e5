"""Developer scripts: the plugin ZIP (:mod:`.package`), the dialog screenshots, the workflow model generator,
the Dynamic World parity check, the test matrix and the installer check (shell)."""
