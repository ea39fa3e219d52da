"""Every render setting and its default, in one place."""
