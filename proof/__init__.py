"""The reliability suite: `python -m proof [--quick] [--db sqlite|postgresql|both]`.

Real dispatcher processes, the real web app and the real SDK against the loopback Twilio
server (tests.support.fake_twilio), on a fresh SQLite file or PostgreSQL schema per run.
Every scenario reports what it tried and whether the invariants held, with the numbers."""
