"""The wired-up parts one process needs: settings, database, SMS gateway, message library.

Built once per process by the web app factory, the clock and the CLI, so all three call
the same services with the same collaborators.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from coachbot.content import MessageLibrary, load_library
from coachbot.db import make_engine, make_read_session_factory, make_session_factory
from coachbot.services import consent
from coachbot.settings import Settings
from coachbot.sms.console import ConsoleGateway
from coachbot.sms.gateway import SmsGateway
from coachbot.sms.suppression import SuppressionGuard


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    read_session_factory: sessionmaker[Session]
    gateway: SmsGateway
    library: MessageLibrary

    def close(self) -> None:
        self.engine.dispose()


def build_gateway(settings: Settings) -> SmsGateway:
    if settings.sms_backend == "twilio":
        # Imported here so the console backend never loads the twilio HTTP stack.
        from coachbot.sms.twilio_gateway import TwilioGateway

        return TwilioGateway(settings)
    return ConsoleGateway()


def build_runtime(settings: Settings, gateway: SmsGateway | None = None) -> Runtime:
    engine = make_engine(settings.database_url)
    read_session_factory = make_read_session_factory(engine)
    return Runtime(
        settings=settings,
        engine=engine,
        session_factory=make_session_factory(engine),
        read_session_factory=read_session_factory,
        # Every text this process sends passes the suppression list here (issue #14), so no
        # send path, old or new, can reach a number that opted out. A read session: a
        # caller may hold SQLite's write lock around its send.
        gateway=SuppressionGuard(
            gateway or build_gateway(settings), consent.suppression_reader(read_session_factory)
        ),
        library=load_library(),
    )
