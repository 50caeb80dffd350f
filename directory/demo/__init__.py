"""The fictional demo data behind ``flask demo load`` (and so behind ``make run``)."""
