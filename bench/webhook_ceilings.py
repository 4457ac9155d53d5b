"""The two ceilings the webhook benchmark measures the real app against, each a Flask app
gunicorn loads by name (`bench.webhook_ceilings:bare_app()`): kept apart from the run so
gunicorn's workers import only these few lines, not the benchmark that starts them."""

from __future__ import annotations

import os

from bench.webhook_cohort import AUTH_TOKEN, PATH, PUBLIC_BASE_URL


def bare_app():  # type: ignore[no-untyped-def]
    """The ceiling: Flask parses the form and answers empty TwiML, nothing else."""
    from flask import Flask, Response, request

    app = Flask("bare")

    @app.post(PATH)
    def inbound() -> Response:
        request.form.get("MessageSid")
        return Response(
            '<?xml version="1.0" encoding="UTF-8"?><Response />', mimetype="application/xml"
        )

    return app


def signed_insert_app():  # type: ignore[no-untyped-def]
    """A fairer ceiling: what every inbound must cost whatever the pipeline does. The real
    signature check, then one INSERT of the inbound row in its own transaction, through the
    project's engine set-up (WAL and BEGIN IMMEDIATE on SQLite, the pool on PostgreSQL)."""
    from flask import Flask, Response, request
    from sqlalchemy import insert

    from coachbot.db import make_engine
    from coachbot.models import InboundMessage
    from coachbot.web.signature import is_valid_twilio_request

    app = Flask("signed_insert")
    engine = make_engine(os.environ["DATABASE_URL"])
    statement = insert(InboundMessage)
    empty = '<?xml version="1.0" encoding="UTF-8"?><Response />'

    @app.post(PATH)
    def inbound() -> Response:
        if not is_valid_twilio_request(AUTH_TOKEN, PUBLIC_BASE_URL, request):
            return Response("forbidden", status=403)
        import datetime as dt

        with engine.begin() as connection:
            connection.execute(
                statement,
                {
                    "provider_sid": request.form["MessageSid"],
                    "from_e164": request.form["From"],
                    "to_e164": request.form["To"],
                    "body": request.form["Body"],
                    "num_media": 0,
                    "is_proxy": False,
                    "received_at": dt.datetime.now(dt.UTC),
                    "response_twiml": empty,
                },
            )
        return Response(empty, mimetype="application/xml")

    return app
