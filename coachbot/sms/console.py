"""Development backend: nothing leaves the machine.

The services record every outbound message in the database whatever the backend, so
the console backend only invents a provider id and logs a masked line.
"""

from __future__ import annotations

import logging
import uuid

from coachbot.domain.phones import mask_phone
from coachbot.sms.gateway import OutgoingSms, SendReceipt

log = logging.getLogger(__name__)


class ConsoleGateway:
    name = "console"

    def send(self, sms: OutgoingSms) -> SendReceipt:
        sid = "CN" + uuid.uuid4().hex
        log.info("console sms to %s: %d chars, sid=%s", mask_phone(sms.to), len(sms.body), sid)
        return SendReceipt(provider_sid=sid, status="sent")
