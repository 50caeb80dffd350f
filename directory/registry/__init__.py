"""Registrations: numbers, statuses, what the register said and what the system believes."""
