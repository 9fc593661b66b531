"""The ledger held to its model over random operation sequences (see ledger_machines)."""

import sys
from unittest import mock

from django.test import TestCase, tag
from hypothesis.stateful import run_state_machine_as_test

from payledger_project.postgresql.prepared import PreparedStatement
from payments import services
from payments.tests.ledger_machines import (
    MACHINE_SETTINGS,
    ApiLedgerMachine,
    ServiceLedgerMachine,
)
from testing.mutants import replaced_once


@tag("long")
class LedgerModelTests(TestCase):
    def test_the_services_agree_with_the_model_over_random_histories(self):
        run_state_machine_as_test(ServiceLedgerMachine, settings=MACHINE_SETTINGS)
        print("\nservices vs model:", dict(ServiceLedgerMachine.totals), file=sys.stderr)

    def test_the_api_agrees_with_the_model_over_random_histories(self):
        run_state_machine_as_test(ApiLedgerMachine, settings=MACHINE_SETTINGS)
        print("\nHTTP API vs model:", dict(ApiLedgerMachine.totals), file=sys.stderr)


@tag("long")
class BrokenBuildTests(TestCase):
    """The model catches a service that skips the conditional debit."""

    def test_a_charge_without_the_balance_condition_is_reported(self):
        unguarded = PreparedStatement(
            "payledger_charge_unguarded",
            replaced_once(
                services.CHARGE_IN_ONE_STATEMENT.sql,
                "AND balance >= %(amount)s",
                "",
                where="CHARGE_IN_ONE_STATEMENT",
            ),
        )
        with (
            mock.patch.object(services, "CHARGE_IN_ONE_STATEMENT", unguarded),
            self.assertRaises(AssertionError) as caught,
        ):
            run_state_machine_as_test(ServiceLedgerMachine, settings=MACHINE_SETTINGS)
        # The property broken: a charge the balance cannot cover is refused as such
        # (unguarded, it overdraws, or the database's CHECK answers a 500).
        self.assertRegex(
            str(caught.exception),
            r"charge: answered .*, the model Answer\(status=409, code='insufficient_balance'",
        )
