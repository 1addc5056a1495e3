"""E-mail activities, written in Python (componentize-py).

`send-email` writes the message as JSON into /outbox, the directory the
plugin's manifest grants; a real one would talk to an SMTP relay instead
(with `allow_outbound` granting exactly that host).

componentize-py snapshots the modules imported at build time: import
everything at the top, a module imported lazily inside a function is not
available at run time.
"""
import json
import re

import wit_world
from componentize_py_types import Err
from wit_world.imports import context
from wit_world.imports.types import ApplicationError, LogLevel

ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class WitWorld(wit_world.WitWorld):
    def send_email(self, email: wit_world.Email) -> str:
        if not ADDRESS.match(email.to):
            raise Err(ApplicationError(
                message=f"{email.to!r} is not a valid address",
                error_type="InvalidAddress",
                non_retryable=True,
                details=None,
            ))
        info = context.info()
        # One message per activity: a retry rewrites it instead of sending twice.
        message_id = f"{info.workflow_id}-{info.activity_id}"
        with open(f"/outbox/{message_id}.json", "w") as f:
            json.dump({"id": message_id, "to": email.to, "subject": email.subject, "body": email.body}, f, indent=2)
        context.log(LogLevel.INFO, f"sent {email.subject!r} to {email.to} ({message_id}, attempt {info.attempt})")
        return message_id
