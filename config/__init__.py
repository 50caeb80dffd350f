"""Settings for the directory service.

``settings.DefaultConfig`` holds every default; each key can be overridden from the
environment as ``DIRECTORY_<KEY>`` (values are parsed as JSON when they can be,
so ``DIRECTORY_VERIFICATION_MAX_AGE=86400`` is an int). See the README's settings table.
"""
