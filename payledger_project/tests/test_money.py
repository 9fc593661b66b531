from django.test import SimpleTestCase, override_settings

from payledger_project.money import money_format


class MoneyFormatTests(SimpleTestCase):
    """Integers of the smallest unit as text in the currency; USD with two decimals
    is the default (the test settings, like production's, leave it unset)."""

    def test_an_amount_is_shown_in_the_currency_with_two_decimals_by_default(self):
        self.assertEqual(money_format(7500), "75.00 USD")

    def test_less_than_one_unit_keeps_its_leading_zeros(self):
        self.assertEqual(money_format(5), "0.05 USD")

    def test_zero_is_shown_with_its_decimals(self):
        self.assertEqual(money_format(0), "0.00 USD")

    def test_a_negative_amount_keeps_its_sign_before_the_units(self):
        self.assertEqual(money_format(-7505), "-75.05 USD")

    def test_an_amount_beyond_a_floats_precision_is_shown_exactly(self):
        self.assertEqual(money_format(2**63 - 1), "92233720368547758.07 USD")

    def test_no_amount_is_shown_as_nothing(self):
        self.assertEqual(money_format(None), "")

    @override_settings(PAYLEDGER_CURRENCY="JPY", PAYLEDGER_CURRENCY_EXPONENT=0)
    def test_a_currency_without_minor_units_shows_whole_units(self):
        self.assertEqual(money_format(7500), "7500 JPY")

    @override_settings(PAYLEDGER_CURRENCY="KWD", PAYLEDGER_CURRENCY_EXPONENT=3)
    def test_the_exponent_sets_the_number_of_decimals(self):
        self.assertEqual(money_format(7500), "7.500 KWD")
