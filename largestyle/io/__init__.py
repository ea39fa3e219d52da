"""Image files: reading (orientation, ICC profiles, modes, alpha) and writing (PNG, JPEG, TIFF, 16-bit, dpi, sRGB profile)."""
