"""The Flask application factory: a list of register steps, nothing hidden."""

from __future__ import annotations

import logging

from flask import Flask, Response

from coachbot.runtime import Runtime, build_runtime
from coachbot.settings import Settings


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    settings = settings or (runtime.settings if runtime else Settings.from_env())
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        DEBUG=settings.debug,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.env == "production",
    )
    register_runtime(app, runtime or build_runtime(settings))
    register_blueprints(app)
    register_security_headers(app, settings)
    register_logging(settings)
    return app


def register_runtime(app: Flask, runtime: Runtime) -> None:
    app.extensions["coachbot"] = runtime


def register_blueprints(app: Flask) -> None:
    from coachbot.web import health, webhooks

    app.register_blueprint(health.bp)
    app.register_blueprint(webhooks.bp)


def register_security_headers(app: Flask, settings: Settings) -> None:
    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault(
            "Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"
        )
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if settings.env == "production":
            response.headers.setdefault(
                "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
            )
        return response


def register_logging(settings: Settings) -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.DEBUG if settings.debug else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
