"""The one error type for input that cannot be analysed."""


class HemoInputError(ValueError):
    """A file that cannot be read as a head-CT slice; the message is meant for the user (a radiologist)."""
