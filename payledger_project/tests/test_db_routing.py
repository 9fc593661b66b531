"""A pooler and a read replica: the settings they switch, and where each read goes."""

from unittest import mock

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.test import SimpleTestCase, TestCase
from django.urls import reverse

from payledger_project.db_routing import REPLICA, PrimaryReplicaRouter, replica_or_primary
from payledger_project.tests.test_settings import production_settings, start_django
from testing.factories import client_for, seller_make, staff_make

POSTGRES = "postgres://app@10.0.0.5:6432/payledger"
REPLICA_URL = "postgres://app@10.0.0.6:5432/payledger"


class PoolerSettingsTests(SimpleTestCase):
    def test_through_pgbouncer_there_are_no_server_side_cursors_or_startup_options(self):
        default = production_settings(
            "DATABASES", DATABASE_URL=POSTGRES, DATABASE_POOLER="pgbouncer"
        )["DATABASES"]["default"]
        self.assertIs(default["DISABLE_SERVER_SIDE_CURSORS"], True)
        self.assertNotIn("options", default.get("OPTIONS", {}))

    def test_without_a_pooler_the_request_timeouts_ride_in_the_startup_options(self):
        default = production_settings("DATABASES", DATABASE_URL=POSTGRES)["DATABASES"]["default"]
        self.assertEqual(
            default["OPTIONS"]["options"], "-c lock_timeout=5000 -c statement_timeout=15000"
        )
        self.assertIs(default["DISABLE_SERVER_SIDE_CURSORS"], False)

    def test_an_unknown_pooler_is_refused_at_start(self):
        result = start_django(
            DEBUG="false", SECRET_KEY="s" * 50, DATABASE_URL=POSTGRES, DATABASE_POOLER="pgpool"
        )
        self.assertIn("DATABASE_POOLER must be unset or 'pgbouncer'", result.stderr)

    def test_a_replica_url_adds_the_replica_database(self):
        databases = production_settings(
            "DATABASES", DATABASE_URL=POSTGRES, DATABASE_REPLICA_URL=REPLICA_URL
        )["DATABASES"]
        self.assertEqual(
            (databases["replica"]["HOST"], databases["replica"]["PORT"]), ("10.0.0.6", 5432)
        )

    def test_without_a_replica_url_there_is_only_the_primary(self):
        databases = production_settings("DATABASES", DATABASE_URL=POSTGRES)["DATABASES"]
        self.assertEqual(list(databases), ["default"])


class RouterTests(SimpleTestCase):
    def test_only_the_primary_is_migrated(self):
        router = PrimaryReplicaRouter()
        self.assertEqual(
            (
                router.allow_migrate("default", "payments"),
                router.allow_migrate(REPLICA, "payments"),
            ),
            (True, False),
        )

    def test_reads_and_writes_go_to_the_primary_unless_a_query_names_the_replica(self):
        router = PrimaryReplicaRouter()
        self.assertEqual(
            (router.db_for_read(None), router.db_for_write(None)),
            (DEFAULT_DB_ALIAS, DEFAULT_DB_ALIAS),
        )


def with_a_replica():
    """Pretend a replica is configured (the real one is proven in test_cluster.py)."""
    return mock.patch.dict(connections.settings, {REPLICA: connections.settings["default"]})


class ReplicaReadsTests(TestCase):
    def test_a_read_that_may_lag_goes_to_the_replica_when_there_is_one(self):
        with with_a_replica():
            self.assertEqual(self.outside_a_transaction(replica_or_primary), REPLICA)

    def test_without_a_replica_every_read_goes_to_the_primary(self):
        self.assertEqual(self.outside_a_transaction(replica_or_primary), DEFAULT_DB_ALIAS)

    def test_inside_a_transaction_a_read_stays_on_the_primary_that_saw_its_writes(self):
        with with_a_replica(), transaction.atomic():
            self.assertEqual(replica_or_primary(), DEFAULT_DB_ALIAS)

    def outside_a_transaction(self, read):
        # TestCase wraps each test in a transaction; step outside it for the check.
        with mock.patch.object(connections["default"], "in_atomic_block", False):
            return read()

    def asks_for_the_replica(self, user, url: str) -> bool:
        client = client_for(user)
        with mock.patch("payments.api.replica_or_primary", return_value="default") as replica:
            response = client.get(url)
        self.assertEqual(response.status_code, 200)
        return replica.called

    def test_the_journal_its_export_and_the_request_list_ask_for_the_replica(self):
        seller = seller_make(balance=100)
        for url in [
            reverse("transaction-list"),
            reverse("transaction-export") + "?created_after=2026-01-01T00:00:00Z",
            reverse("credit-request-list"),
        ]:
            with self.subTest(url):
                self.assertTrue(self.asks_for_the_replica(seller.user, url))

    def test_the_balance_a_seller_acts_on_never_comes_from_the_replica(self):
        seller = seller_make(balance=100)
        self.assertFalse(self.asks_for_the_replica(seller.user, reverse("seller-me")))

    def test_a_decision_reads_the_request_from_the_primary(self):
        seller = seller_make()
        credit_request = seller.credit_requests.create(amount=5)
        client = client_for(staff_make())
        with mock.patch("payments.api.replica_or_primary") as replica:
            client.post(reverse("credit-request-approve", args=[credit_request.pk]))
        replica.assert_not_called()
