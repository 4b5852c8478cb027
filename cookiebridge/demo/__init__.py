"""The demo: `cookiebridge demo`, the bridge and two customer sites on loopback, over HTTPS, in one process.

A deliberate, documented part of the package (as `datasette.fixtures` is of datasette), kept apart from the
product: the bridge (`cookiebridge.app`, `.api`, ...) never imports it. It needs the `demo` extra for its
certificates: `pip install 'cookiebridge[demo]'`. The end-to-end tests and the browser benchmark use its sites,
chat server and certificates too.

- `topology`: the hosts, port and site names ("domain-a", "domain-b"), declared once.
- `run`: `run_demo`, what the command does: bind every port, then print the banner, then serve.
- `sites`: the customer sites. Their pages are the Genesys guide's samples (`templates/`), with the demo's own
  explanations in separate scripts (`static/demo-status.js`), and a test double of Genesys Widgets 9
  (`static/widgets-double.js`: cookiebridge's model, no Genesys code).
- `chat`: an in-memory stand-in for the Digital Channels chat API the widget talks to, with a simulated agent.
- `certs`: a CA kept in the user's cache directory, and certificates for the loopback sites.
- `servers`: uvicorn servers on sockets bound beforehand.
"""

from __future__ import annotations

from typing import Any


class DemoError(Exception):
    """A demo that cannot start: the message is one line naming the problem and the fix."""


def run_demo(**options: Any) -> None:
    """Run the demo until Ctrl+C (see `run.run_demo` for the options); DemoError if it cannot start."""
    from .run import run_demo as run  # the servers' imports only when the demo runs

    run(**options)
