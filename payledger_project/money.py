"""Money as people read it: an integer count of the currency's smallest unit
shown in the currency (PAYLEDGER_CURRENCY, PAYLEDGER_CURRENCY_EXPONENT).

For display only (the admin, the ledger report, the CSV export's display
columns); the API, the database and the services keep integers.
"""

from django.conf import settings
from django.contrib import admin


def money_format(amount: int | None) -> str:
    """``7500`` as ``"75.00 USD"`` (exponent 2), ``-5`` as ``"-0.05 USD"``, ``None``
    (no amount) as ``""``. Integer arithmetic only: no float ever rounds a cent."""
    if amount is None:
        return ""
    exponent = settings.PAYLEDGER_CURRENCY_EXPONENT
    units, minor = divmod(abs(amount), 10**exponent)
    sign = "-" if amount < 0 else ""
    fraction = f".{minor:0{exponent}d}" if exponent else ""
    return f"{sign}{units}{fraction} {settings.PAYLEDGER_CURRENCY}"


def money_column(field: str, description: str):
    """An admin column (list_display, fields) showing the model's integer ``field``
    as money, sorted by the integer: ``amount_shown = money_column("amount", "amount")``."""

    @admin.display(description=description, ordering=field)
    def column(model_admin, obj) -> str:
        return money_format(getattr(obj, field))

    return column
