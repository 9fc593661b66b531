"""The bytes a receiver gets for each event type, pinned as they were before the
payloads got one definition (issue 25): receivers written against them must not
break. Ids and dates differ from run to run and are filled in; the rest is literal."""

from datetime import datetime

from django.test import TestCase

from payments.models import CreditRequest, Event, PhoneCharge
from payments.services import (
    credit_request_approve,
    credit_request_create,
    credit_request_reject,
    phone_charge_create,
    phone_charge_reverse,
)
from testing.factories import seller_make, staff_make
from webhooks.services import (
    SUBSCRIBABLE_EVENT_TYPES,
    webhook_deliver_next,
    webhook_endpoint_create,
)
from webhooks.tests.receiver import Receiver

PHONE = "+14155550123"
CREDIT_REQUEST = (
    '{"id":%(event)d,"type":"%(type)s","seller":%(seller)d,"created_at":"%(event_at)s",'
    '"data":{"id":%(id)d,"amount":%(amount)d,"seller":%(seller)d,"status":"%(status)s",'
    '"balance":%(balance)d,"created_at":"%(created_at)s","decided_at":%(decided_at)s,'
    '"decided_by":%(decided_by)s,"rejection_reason":%(rejection_reason)s}}'
)
PHONE_CHARGE_CREATED = (
    '{"id":%(event)d,"type":"phone_charge.created","seller":%(seller)d,'
    '"created_at":"%(event_at)s","data":{"id":%(id)d,"amount":300,"seller":%(seller)d,'
    '"balance":700,"reference":"order-1","created_at":"%(created_at)s",'
    '"phone_number":"+14155550123","transaction_id":%(transaction_id)d}}'
)
PHONE_CHARGE_REVERSED = (
    '{"id":%(event)d,"type":"phone_charge.reversed","seller":%(seller)d,'
    '"created_at":"%(event_at)s","data":{"id":%(id)d,"amount":300,"seller":%(seller)d,'
    '"balance":700,"reversal":{"reason":"Wrong number","reversed_at":"%(reversed_at)s",'
    '"reversed_by":%(reversed_by)d,"balance_after":1000,"transaction_id":%(reversal_transaction_id)d},'
    '"reversed":true,"reference":"order-1","created_at":"%(created_at)s",'
    '"reversed_at":"%(reversed_at)s","phone_number":"+14155550123",'
    '"transaction_id":%(transaction_id)d}}'
)


def rfc3339(moment: datetime) -> str:
    """DRF's text for a date, written out: UTC, "Z", microseconds only when there are any."""
    assert moment.utcoffset().total_seconds() == 0
    micros = f".{moment.microsecond:06d}" if moment.microsecond else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + micros + "Z"


class DeliveredBytesTests(TestCase):
    def setUp(self):
        self.receiver = Receiver(lambda event_id, nth: 200)
        self.addCleanup(self.receiver.stop)
        self.seller = seller_make(balance=1_000)
        self.staff = staff_make(reverser=True)
        endpoint = webhook_endpoint_create(
            seller=self.seller, url=self.receiver.url("hooks"), event_types=SUBSCRIBABLE_EVENT_TYPES
        )
        self.receiver.secrets["hooks"] = endpoint.secret

    def delivered(self) -> list[bytes]:
        while webhook_deliver_next():
            pass
        return [request.body for request in self.receiver.received]

    def event_values(self, event_type: str) -> dict:
        event = Event.objects.filter(seller=self.seller, type=event_type).latest("id")
        return {"event": event.pk, "event_at": rfc3339(event.created_at), "seller": self.seller.pk}

    def credit_request_bytes(self, event_type: str, credit_request: CreditRequest, balance: int):
        credit_request.refresh_from_db()
        decided = credit_request.decided_at is not None
        return CREDIT_REQUEST % {
            **self.event_values(event_type),
            "type": event_type,
            "id": credit_request.pk,
            "amount": credit_request.amount,
            "status": credit_request.status,
            "balance": balance,
            "created_at": rfc3339(credit_request.created_at),
            "decided_at": f'"{rfc3339(credit_request.decided_at)}"' if decided else "null",
            "decided_by": str(self.staff.pk) if decided else "null",
            "rejection_reason": (
                f'"{credit_request.rejection_reason}"'
                if credit_request.rejection_reason
                else "null"
            ),
        }

    def test_credit_request_events_arrive_as_before(self):
        asked = credit_request_create(seller=self.seller, amount=500)
        expected = [self.credit_request_bytes("credit_request.created", asked, 1_000)]
        credit_request_approve(credit_request_id=asked.pk, decided_by=self.staff)
        expected.append(self.credit_request_bytes("credit_request.approved", asked, 1_500))
        refused = credit_request_create(seller=self.seller, amount=200)
        expected.append(self.credit_request_bytes("credit_request.created", refused, 1_500))
        credit_request_reject(credit_request_id=refused.pk, decided_by=self.staff, reason="Unpaid")
        expected.append(self.credit_request_bytes("credit_request.rejected", refused, 1_500))
        self.assertEqual([body.decode() for body in self.delivered()], expected)

    def test_phone_charge_events_arrive_as_before(self):
        charge = phone_charge_create(
            seller_id=self.seller.pk, phone_number=PHONE, amount=300, reference="order-1"
        )
        phone_charge_reverse(charge_id=charge.pk, reversed_by=self.staff, reason="Wrong number")
        charge = PhoneCharge.objects.select_related("transaction", "reversal__transaction").get()
        values = {
            "id": charge.pk,
            "created_at": rfc3339(charge.created_at),
            "transaction_id": charge.transaction.pk,
            "reversed_at": rfc3339(charge.reversal.created_at),
            "reversed_by": self.staff.pk,
            "reversal_transaction_id": charge.reversal.transaction.pk,
        }
        self.assertEqual(
            [body.decode() for body in self.delivered()],
            [
                PHONE_CHARGE_CREATED % {**self.event_values("phone_charge.created"), **values},
                PHONE_CHARGE_REVERSED % {**self.event_values("phone_charge.reversed"), **values},
            ],
        )
