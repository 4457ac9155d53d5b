"""Sign-in and sign-out pages, and Flask-Login wired to the server-side session records."""

from __future__ import annotations

from flask import Blueprint, Flask, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import LoginManager, current_user, login_user, logout_user

from coachbot.services.auth import LoginThrottled, end_session, resume_session, sign_in
from coachbot.web.common import (
    Staff,
    fresh_reads,
    login_required,
    now,
    read_db,
    staff,
    write_sessions,
)
from coachbot.web.forms import LoginForm

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in."
# "strong" would log out on a changed user agent; the server-side record is our real check.
login_manager.session_protection = None


def _load(token: str) -> Staff | None:
    # Runs on every signed-in request: the service reads through the request's read session
    # (no SQLite write lock) and writes only when the session ends or its once-a-minute
    # last-seen stamp is due.
    user = resume_session(write_sessions(), token, now(), read=read_db())
    signed_in = Staff(user, token) if user is not None else None
    # Staff holds copies; the view's reads start a fresh snapshot (one that includes the
    # view's own audit row, for instance).
    fresh_reads()
    return signed_in


login_manager.user_loader(_load)


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    app.register_blueprint(bp)


def _client_ip() -> str:
    # Behind a proxy, ProxyFix (configured by the deployment) makes remote_addr the client.
    return request.remote_addr or "unknown"


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.home"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            result = sign_in(
                write_sessions(),
                email=form.email.data or "",
                password=form.password.data or "",
                ip=_client_ip(),
                now=now(),
            )
        except LoginThrottled as exc:
            minutes = max(1, int(exc.retry_after.total_seconds() // 60))
            flash(f"Too many failed sign-ins. Try again in about {minutes} minutes.", "error")
            status = 429
        else:
            if result is None:
                flash("Email or password is not right.", "error")
                status = 401
            else:
                # A fresh cookie: nothing from before sign-in survives (no session fixation).
                session.clear()
                login_user(Staff(result.user, result.token))
                return redirect(url_for("dashboard.home"))
    elif request.method == "POST":
        status = 400
    return render_template("login.html", form=form), status


@bp.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    end_session(write_sessions(), staff().token, now())
    logout_user()
    session.clear()
    flash("Signed out.", "info")
    return redirect(url_for("auth.login"))
