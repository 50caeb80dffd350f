"""Clinics, the service vocabulary, and listings (a practitioner offering services at a clinic)."""
