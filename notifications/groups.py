"""The one channel-layer group of a person's open sockets: the bell's and every Space page's.

Each kind of socket in it handles its own message type ("notification.new" for the bell,
"user.event" for a Space page) and lets the other pass.
"""


def user_group(user_id: int) -> str:
    return f"user-{user_id}"
