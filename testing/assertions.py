"""Assertions shared by the suites: every error has the one JSON shape, and a
refusal leaves the books as they were."""

from rest_framework import status

from payments.models import (
    CreditRequest,
    Event,
    PhoneAccount,
    PhoneCharge,
    PhoneChargeReversal,
    Transaction,
)
from sellers.models import Seller


def books() -> dict:
    """Every money row, decision and event as plain values, to show that a
    refused request changed nothing."""
    return {
        model.__name__: list(model.objects.order_by("pk").values())
        for model in (
            Seller,
            CreditRequest,
            PhoneAccount,
            PhoneCharge,
            PhoneChargeReversal,
            Transaction,
            Event,
        )
    }


class ErrorShapeAssertions:
    """Mix into a Django test case to check PayLedger's ``{"code", "message"}`` errors."""

    def assertErrorResponse(self, response, status_code: int, code: str) -> dict:
        self.assertEqual(response.status_code, status_code, response.content)
        self.assertEqual(response["Content-Type"], "application/json")
        body = response.json()
        self.assertEqual(body["code"], code, body)
        self.assertIsInstance(body["message"], str)
        self.assertNotEqual(body["message"], "")
        return body

    def assertFieldError(self, response, field: str) -> list[dict]:
        """A 400 ``validation_error`` naming ``field``; returns that field's errors."""
        body = self.assertErrorResponse(response, status.HTTP_400_BAD_REQUEST, "validation_error")
        self.assertIn(field, body["fields"], body)
        errors = body["fields"][field]
        self.assertTrue(errors)
        for error in errors:
            self.assertEqual(set(error), {"code", "message"})
        return errors
