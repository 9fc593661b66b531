"""Statements and balances at a point in time, read from the journal's running balance."""

from contextlib import contextmanager
from datetime import UTC, datetime
from unittest import mock

from django.db import connection, connections
from django.test import TestCase, TransactionTestCase
from django.urls import reverse

from payledger_project.db_routing import REPLICA
from payments.models import PhoneCharge, Transaction
from payments.selectors import seller_balance_before, seller_statement
from payments.services import phone_charge_create, phone_charge_reverse
from testing.assertions import ErrorShapeAssertions
from testing.factories import client_for, credit_approved_make, seller_make, staff_make

PHONE = "+14155550123"


def day(number: int, hour: int = 12) -> datetime:
    return datetime(2026, 11, number, hour, tzinfo=UTC)


def stamp(row: Transaction, when: datetime) -> None:
    Transaction.objects.filter(pk=row.pk).update(created_at=when)


class StatementApiTests(ErrorShapeAssertions, TestCase):
    @classmethod
    def setUpTestData(cls):
        # Nov 1 credit 1000 -> 1000; Nov 2 charge 300 -> 700;
        # Nov 3 credit 50 -> 750 and charge 100 -> 650; Nov 4 that charge reversed -> 750;
        # Nov 5 charge 25 -> 725.
        cls.seller = seller_make()
        cls.other = seller_make(balance=10)

        def charge(amount: int) -> Transaction:
            return phone_charge_create(
                seller_id=cls.seller.pk, phone_number=PHONE, amount=amount
            ).transaction

        def reverse_last_charge() -> Transaction:
            charge = PhoneCharge.objects.filter(seller=cls.seller).latest("id")
            reverser = staff_make(reverser=True)
            return phone_charge_reverse(charge_id=charge.pk, reversed_by=reverser).transaction

        for when, step in [
            (day(1), lambda: credit_approved_make(seller=cls.seller, amount=1_000).transaction),
            (day(2), lambda: charge(300)),
            (day(3, 9), lambda: credit_approved_make(seller=cls.seller, amount=50).transaction),
            (day(3, 10), lambda: charge(100)),
            (day(4), lambda: reverse_last_charge()),
            (day(5), lambda: charge(25)),
        ]:
            stamp(step(), when)

    def statement(self, user, **query):
        return client_for(user).get(reverse("statement"), query)

    def test_opening_and_closing_balances_come_from_the_chain(self):
        body = self.statement(
            self.seller.user, **{"from": "2026-11-02T00:00:00Z", "to": "2026-11-04T00:00:00Z"}
        ).json()
        self.assertEqual((body["opening_balance"], body["closing_balance"]), (1_000, 650))

    def test_totals_count_each_kind_inside_the_range(self):
        body = self.statement(
            self.seller.user, **{"from": "2026-11-02T00:00:00Z", "to": "2026-11-04T00:00:00Z"}
        ).json()
        self.assertEqual(
            body["totals"],
            {
                "credit": {"amount": 50, "count": 1},
                "charge": {"amount": 400, "count": 2},
                "reversal": {"amount": 0, "count": 0},
            },
        )

    def test_a_reversal_inside_the_range_is_totalled(self):
        body = self.statement(
            self.seller.user, **{"from": "2026-11-04T00:00:00Z", "to": "2026-11-05T00:00:00Z"}
        ).json()
        self.assertEqual(
            (body["opening_balance"], body["totals"]["reversal"], body["closing_balance"]),
            (650, {"amount": 100, "count": 1}, 750),
        )

    def test_opening_plus_totals_is_closing(self):
        body = self.statement(
            self.seller.user, **{"from": "2026-10-01T00:00:00Z", "to": "2026-11-05T13:00:00Z"}
        ).json()
        totals = {kind: total["amount"] for kind, total in body["totals"].items()}
        self.assertEqual(
            body["opening_balance"] + totals["credit"] - totals["charge"] + totals["reversal"],
            body["closing_balance"],
        )
        self.assertEqual(body["closing_balance"], 725)

    def test_the_statement_links_the_journal_page_of_the_same_range(self):
        body = self.statement(
            self.seller.user, **{"from": "2026-11-02T00:00:00Z", "to": "2026-11-04T00:00:00Z"}
        ).json()
        rows = client_for(self.seller.user).get(body["journal"]).json()["results"]
        self.assertEqual([row["amount"] for row in rows], [100, 50, 300])

    def test_staff_who_may_view_the_journal_read_a_named_sellers_statement(self):
        body = self.statement(
            staff_make(),
            **{"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z"},
            seller=self.seller.pk,
        ).json()
        self.assertEqual((body["seller"], body["closing_balance"]), (self.seller.pk, 1_000))

    def test_a_seller_naming_another_seller_finds_nothing(self):
        response = self.statement(
            self.other.user,
            **{"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z"},
            seller=self.seller.pk,
        )
        self.assertErrorResponse(response, 404, "not_found")

    def test_a_range_that_ends_before_it_starts_is_refused(self):
        response = self.statement(
            self.seller.user, **{"from": "2026-11-04T00:00:00Z", "to": "2026-11-02T00:00:00Z"}
        )
        self.assertFieldError(response, "to")

    def test_a_timestamp_without_an_offset_is_refused(self):
        response = self.statement(
            self.seller.user, **{"from": "2026-11-02T00:00:00", "to": "2026-11-04T00:00:00Z"}
        )
        self.assertFieldError(response, "from")

    def test_me_at_an_instant_answers_the_balance_then(self):
        response = client_for(self.seller.user).get(
            reverse("seller-me"), {"at": "2026-11-03T09:30:00Z"}
        )
        self.assertEqual(
            (response.json()["balance"], response.json()["at"]), (750, "2026-11-03T09:30:00Z")
        )

    def test_me_before_any_movement_answers_zero(self):
        response = client_for(self.seller.user).get(
            reverse("seller-me"), {"at": "2020-01-01T00:00:00Z"}
        )
        self.assertEqual(response.json()["balance"], 0)

    def test_me_with_a_bad_instant_is_refused(self):
        response = client_for(self.seller.user).get(reverse("seller-me"), {"at": "yesterday"})
        self.assertFieldError(response, "at")


class BalanceAtPlanTests(TransactionTestCase):
    ROWS = 100_000

    def test_the_balance_at_an_instant_is_one_index_step_in_a_long_journal(self):
        seller = seller_make()
        with connection.cursor() as cursor:
            # A long journal of charges for one seller (only the plan is under test),
            # a second apart up to day 29: the instant asked about lies within it.
            cursor.execute(
                "INSERT INTO payments_phoneaccount (phone_number, balance, created_at)"
                " VALUES (%s, 0, now())",
                [PHONE],
            )
            cursor.execute(
                "WITH charges AS ("
                " INSERT INTO payments_phonecharge (seller_id, phone_number, amount, created_at)"
                " SELECT %s, %s, 1, %s - make_interval(secs => n)"
                " FROM generate_series(1, %s) AS n RETURNING id, created_at)"
                " INSERT INTO payments_transaction"
                " (seller_id, kind, amount, balance_after, created_at, phone_charge_id)"
                " SELECT %s, 'charge', 1, 7, created_at, id FROM charges",
                [seller.pk, PHONE, day(29), self.ROWS, seller.pk],
            )
            cursor.execute("ANALYZE payments_transaction")
        plan = (
            Transaction.objects.filter(seller_id=seller.pk, created_at__lt=day(28))
            .order_by("-created_at", "-id")
            .values("balance_after")[:1]
            .explain()
        )
        self.assertIn("transaction_seller_newest", plan)
        self.assertNotIn("Seq Scan", plan)
        self.assertEqual(seller_balance_before(seller_id=seller.pk, instant=day(28)), 7)


class StatementInstantTests(TestCase):
    def test_an_offset_past_what_the_database_takes_is_read_in_utc(self):
        seller = seller_make()
        response = client_for(seller.user).get(
            reverse("statement"),
            {"from": "1052-07-04T02:40:05+16:38", "to": "2026-11-28T22:01:20Z"},
        )
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(response.json()["from"], "1052-07-03T10:02:05Z")

    def test_an_instant_that_leaves_the_calendar_in_utc_is_refused(self):
        seller = seller_make()
        response = client_for(seller.user).get(
            reverse("seller-me"), {"at": "0001-01-01T00:00:00+05:00"}
        )
        self.assertEqual(response.status_code, 400, response.content)


@contextmanager
def a_lagging_replica(test_class: type[TransactionTestCase]):
    """A replica alias on the test database that lags: its connection holds a
    REPEATABLE READ snapshot taken on entry, so it sees nothing committed since.
    ``test_class`` is let use it while it lasts."""
    with (
        mock.patch.dict(connections.settings, {REPLICA: connections.settings["default"]}),
        mock.patch.object(test_class, "databases", {*test_class.databases, REPLICA}),
    ):
        replica = connections[REPLICA]
        try:
            with replica.cursor() as cursor:
                cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
                cursor.execute("SELECT count(*) FROM payments_transaction")
            yield
        finally:
            replica.close()
            del connections[REPLICA]


class StatementReplicaTests(TransactionTestCase):
    """A statement's closing balance must agree with its totals, so both come from
    the primary's one snapshot, never from a replica that may lag."""

    def test_the_closing_balance_includes_a_charge_a_lagging_replica_has_not_seen(self):
        seller = seller_make(balance=500)
        with a_lagging_replica(type(self)):
            phone_charge_create(seller_id=seller.pk, phone_number=PHONE, amount=200)
            statement = seller_statement(
                seller_id=seller.pk,
                start=datetime(2000, 1, 1, tzinfo=UTC),
                end=datetime(2999, 1, 1, tzinfo=UTC),
            )
        self.assertEqual(
            (statement.closing_balance, statement.totals["charge"]["count"]),
            (300, 1),
            "the closing balance is the primary's, after every movement in its totals",
        )
