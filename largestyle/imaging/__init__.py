"""Pixel-level operations on whole images in bounded memory.

Colour matching, luminance transfer and YIQ (``colours``), total-variation denoising
(``denoise``), and the finishing of a rendered output that runs them (``finish``). They
work on print-size images a band of rows or a tile at a time (``pixels``), so memory
holds the image and a bounded working set, never several full-size copies.
"""
