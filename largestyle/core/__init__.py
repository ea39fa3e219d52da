"""Foundations every other package may use: errors, units, atomic writes, fault points, path safety, the version and VGG-19's geometry as data."""
