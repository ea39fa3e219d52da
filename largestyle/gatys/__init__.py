"""Gatys-style optimisation: the losses, their targets, the whole and windowed objectives, the resumable L-BFGS."""
