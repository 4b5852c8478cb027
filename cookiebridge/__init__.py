"""cookiebridge: keep a chat session when the customer moves between your domains."""

__version__ = "0.1.0.dev0"
