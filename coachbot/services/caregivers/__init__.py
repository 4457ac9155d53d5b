"""Caregivers as consented partners in the close-watch weeks (issue #16).

Modules: `records` (adding, linking and editing a caregiver from the enrol and edit forms, the
bulk CSV and the CLI), `invitations` (the double opt-in request, sent by the clock tick at a
permitted instant), `checks` (the daily observation check, its follow-up, "Have you seen ...
today?" and the no-answer alerts, all run by the tick) and `answers` (what a caregiver's text
means: YES, STOP, a count or OK/WORSE/WORRIED, "Which person?").
"""
