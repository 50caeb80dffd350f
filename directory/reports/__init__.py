"""Patients' reports of concern about a practitioner or a clinic: what they may say, how it
is stored, and what it sets going (a site admin reads it; the register is asked again).
The pages are in ``directory/web/actions.py``; site admins see reports in the moderation
queue (``directory/accounts/views.py``). See docs/pages.md and docs/clinics.md."""
