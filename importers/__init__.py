"""Registers and what they say: sources that look registrations up, and the jobs that use them."""
