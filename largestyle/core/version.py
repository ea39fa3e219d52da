"""The package version, in one place (read by the build and written into job records and reports)."""

__version__ = "0.1.0"
