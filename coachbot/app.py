"""The Flask application factory: a list of register steps, nothing hidden."""

from __future__ import annotations

import dataclasses
import logging
import secrets
import traceback
from types import TracebackType

from flask import Flask, Response, current_app, g, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import InternalServerError

from coachbot.runtime import Runtime, build_runtime
from coachbot.settings import Settings

log = logging.getLogger(__name__)


class CoachbotFlask(Flask):
    def log_exception(
        self,
        exc_info: tuple[type[BaseException], BaseException, TracebackType]
        | tuple[None, None, None],
    ) -> None:
        """An unhandled exception, logged by type and frames, never by its message: a
        database error's message carries the statement's parameters, which can be a text's
        body or a phone number (Flask's own version logs the whole message)."""
        error = exc_info[1]
        if error is None:
            return
        frames = traceback.extract_tb(error.__traceback__)[-5:]
        where = " > ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in frames)
        rule = request.url_rule.rule if request.url_rule is not None else "(no route)"
        log.error("unhandled %s on %s %s at %s", type(error).__name__, request.method, rule, where)


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    settings = settings or (runtime.settings if runtime else Settings.from_env())
    app = CoachbotFlask(__name__, template_folder="web/templates", static_folder="web/static")
    app.config.update(
        SECRET_KEY=settings.secret_key,
        DEBUG=settings.debug,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.env == "production",
        SESSION_COOKIE_NAME="coachbot_session",
        # Flask-Login's remember-me cookie would outlive logout; it is never issued.
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=settings.env == "production",
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the server-side session
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
    )
    register_runtime(app, runtime or build_runtime(settings))
    register_pager(app)
    register_blueprints(app)
    register_dashboard(app)
    register_security_headers(app, settings)
    register_logging(settings)
    return app


def register_runtime(app: Flask, runtime: Runtime) -> None:
    settings = runtime.settings
    if (
        settings.env == "development"
        and settings.sms_backend == "console"
        and not settings.twilio_auth_token
    ):
        # The phone simulator signs its replies like Twilio does, so the webhook's signature
        # check runs for real; with no Twilio account in development, this process makes up
        # its own key (no real Twilio can reach a console-backend deployment anyway).
        runtime.settings = dataclasses.replace(
            settings, twilio_auth_token="dev-simulator-" + secrets.token_hex(16)
        )
    app.extensions["coachbot"] = runtime


def register_pager(app: Flask) -> None:
    """The web process's pager thread (PAGER_ENABLED): an inbound text that raised a pageable
    alert kicks it after its commit, so the on-call is paged without waiting for the tick.
    Settings built in code (tests) leave it off; `coachbot serve` and gunicorn start it."""
    from coachbot.domain.clock import utcnow
    from coachbot.services.paging import Pager, run_due

    runtime: Runtime = app.extensions["coachbot"]
    if not runtime.settings.pager_enabled:
        return

    def run() -> object:
        return run_due(runtime.session_factory, runtime.gateway, runtime.settings, utcnow())

    app.extensions["coachbot_pager"] = Pager(run).start()


def register_blueprints(app: Flask) -> None:
    from coachbot.web import health, webhooks

    app.register_blueprint(health.bp)
    app.register_blueprint(webhooks.bp)


def register_dashboard(app: Flask) -> None:
    """Sign-in, CSRF on every form, and the dashboard, API and simulator blueprints."""
    from coachbot.web import (
        alerts,
        api,
        auth,
        common,
        dashboard,
        exports,
        inbox,
        media_samples,
        oncall,
        operator,
        patients,
        preferences,
        simulator,
        suppression,
        webhooks,
    )

    csrf = CSRFProtect(app)
    # Twilio cannot send our CSRF token (its signature is the check); the API takes bearer
    # tokens only and never reads the session cookie.
    csrf.exempt(webhooks.bp)
    csrf.exempt(api.bp)
    auth.init_app(app)
    for blueprint in (
        dashboard.bp,
        patients.bp,
        alerts.bp,
        exports.bp,
        api.bp,
        api.tokens_bp,
        simulator.bp,
        operator.bp,
        inbox.bp,
        oncall.bp,
        suppression.bp,
        preferences.bp,
        media_samples.bp,
    ):
        app.register_blueprint(blueprint)
    app.teardown_appcontext(common.close_db)

    @app.context_processor
    def _globals() -> dict[str, object]:
        return {"simulator_enabled": simulator.simulator_enabled()}

    @app.errorhandler(404)
    def _not_found(_error: Exception) -> ResponseReturnValue:
        if request.path.startswith(("/api/", "/sms/")):
            return {"error": "not found"}, 404
        return render_template("404.html"), 404

    @app.errorhandler(CSRFError)
    def _csrf_refused(error: CSRFError) -> ResponseReturnValue:
        return render_template("400.html", reason=error.description), 400

    @app.errorhandler(InternalServerError)
    def _server_error(error: InternalServerError) -> ResponseReturnValue:
        return server_error(error)


def server_error(_error: InternalServerError) -> ResponseReturnValue:
    """An unhandled exception (logged by `CoachbotFlask.log_exception`): nothing of the
    request is kept, and the answer is a plain page (JSON under /api/ and /sms/).

    The request's sessions are rolled back here, before anything else runs, so a half-made
    change is never committed by later code (teardown would only close them)."""
    for name in ("db", "read_db"):
        session = g.get(name)
        if session is not None:
            try:
                session.rollback()
            except Exception:  # a dead connection: closing it at teardown discards it anyway
                log.warning("rollback after an unhandled error failed", exc_info=False)
    if request.path.startswith(("/api/", "/sms/")):
        return {"error": "internal error"}, 500
    # Rendered without the context processors: they read the signed-in user and the inbox
    # count from the database, and the database may be what failed.
    page = current_app.jinja_env.get_template("500.html").render()
    return Response(page, status=500, mimetype="text/html")


def register_security_headers(app: Flask, settings: Settings) -> None:
    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none';"
            " object-src 'none'",
        )
        response.headers.setdefault("X-Frame-Options", "DENY")
        if request.blueprint not in (None, "health", "webhooks") or request.path == "/":
            # Pages carry health information: never kept by the browser or a proxy.
            response.headers.setdefault("Cache-Control", "no-store")
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
