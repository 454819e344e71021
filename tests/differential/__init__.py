"""The differential tests: the same app with tracking off and on."""
