"""A real SMTP server on 127.0.0.1 for the notify/email tests (aiosmtpd 1.4).

Prints "listening <port>" once it accepts connections, then writes every message it accepts
to <dir>/<n>.json with the envelope and the decoded text and HTML bodies. It stops when its
standard input closes, so it never outlives the test process.

Recipients whose local part starts with "refuse" get a 550; those starting with "slow" make
the server wait 30 s before answering. Login succeeds only as user / hunter2.
"""
import asyncio
import email
import email.policy
import json
import logging
import os
import sys
import threading

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

logging.getLogger("mail.log").setLevel(logging.ERROR)


class Handler:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_RCPT(self, server, conn, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("refuse"):
            return f"550 5.1.1 <{address}>: no such mailbox here"
        if local.startswith("slow"):
            await asyncio.sleep(30)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, conn, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = message.get_body(("plain",))
        html = message.get_body(("html",))
        self.count += 1
        record = {
            "mailFrom": envelope.mail_from,
            "rcptTos": envelope.rcpt_tos,
            "login": conn.auth_data.decode() if conn.authenticated and isinstance(conn.auth_data, bytes) else None,
            "headers": {key.lower(): str(value) for key, value in message.items()},
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
            "raw": envelope.content.decode("utf-8", "replace"),
        }
        path = os.path.join(self.directory, f"{self.count:04d}.json")
        with open(path + ".tmp", "w", encoding="utf-8") as out:
            json.dump(record, out)
        os.replace(path + ".tmp", path)
        return "250 2.0.0 Message accepted for delivery"


def authenticate(server, conn, envelope, mechanism, auth_data):
    if isinstance(auth_data, LoginPassword) and auth_data.login == b"user" and auth_data.password == b"hunter2":
        return AuthResult(success=True, auth_data=auth_data.login)
    return AuthResult(success=False, handled=False)


async def main(directory):
    loop = asyncio.get_running_loop()
    handler = Handler(directory)
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="smtp.test", authenticator=authenticate, auth_require_tls=False),
        host="127.0.0.1",
        port=0,
    )
    port = server.sockets[0].getsockname()[1]
    stopped = asyncio.Event()

    def wait_for_stdin_to_close():
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(stopped.set)

    threading.Thread(target=wait_for_stdin_to_close, daemon=True).start()
    print(f"listening {port}", flush=True)
    await stopped.wait()
    server.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
