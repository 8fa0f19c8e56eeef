"""Product rules of ticketing (DESIGN.md), in one place.

The commission is also a setting (`SPACES_TICKET_COMMISSION_BPS`, `SPACES_TICKET_HIGH_COMMISSION_BPS`,
`SPACES_TICKET_THRESHOLD_CENTS`, from the environment): an operator sets their own cut. These are
its defaults.
"""

CURRENCY = "usd"

# Platform commission in basis points: the low rate until the host's lifetime ticket earnings reach
# the threshold, the high rate from then on (the host keeps 97 %, then 80 %).
COMMISSION_BPS = 300
HIGH_COMMISSION_BPS = 2000
THRESHOLD_CENTS = 5_000_000

# Prices and caps a host may set.
MIN_PRICE_CENTS = 100
MAX_PRICE_CENTS = 99_900
MAX_CAPACITY = 100_000

# A seat is held this long while its buyer is in checkout. Stripe keeps a session open for at least
# 30 minutes, so the sweep expires the Stripe session itself when the hold runs out.
HOLD_MINUTES = 15

# Who may sell tickets: followers, age, and Spaces hosted in the last RECENT_DAYS days.
MIN_FOLLOWERS = 1000
MIN_AGE = 18
MIN_RECENT_SPACES = 3
RECENT_DAYS = 30

# Tickets are refunded when a scheduled Space has not started this long after its start time.
REFUND_GRACE_MINUTES = 60
