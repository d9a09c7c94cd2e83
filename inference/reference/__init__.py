"""The NumPy reference: the source of truth every kernel is checked against."""
