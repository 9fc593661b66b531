from collections import Counter
from datetime import timedelta
from io import StringIO
from unittest import mock

from django.core.management import call_command
from django.db import IntegrityError
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from payments.models import CreditRequest, IdempotencyKey, PhoneCharge, Transaction
from payments.selectors import ledger_problems
from sellers.models import Seller
from testing.concurrency import StormTestCase, run_at_once
from testing.factories import client_for, credit_approved_make, seller_make
from testing.keyed_requests import charge, crash_while_recording_the_answer


class IdempotentChargeTests(TestCase):
    def setUp(self):
        self.seller = seller_make(balance=1_000)
        self.client = client_for(self.seller.user)

    def test_retry_with_the_same_key_replays_the_first_answer(self):
        first = charge(self.client, key="order-1")
        retry = charge(self.client, key="order-1")
        self.assertEqual(retry.status_code, 201)
        self.assertEqual(retry.json(), first.json())
        self.assertEqual(retry["Idempotent-Replayed"], "true")

    def test_retry_with_the_same_key_charges_once(self):
        charge(self.client, key="order-1")
        charge(self.client, key="order-1")
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 900)
        self.assertEqual(PhoneCharge.objects.count(), 1)
        self.assertEqual(Transaction.objects.filter(kind="charge").count(), 1)

    def test_first_answer_is_not_marked_as_a_replay(self):
        first = charge(self.client, key="order-1")
        self.assertNotIn("Idempotent-Replayed", first)

    def test_same_key_with_a_different_body_is_refused_and_moves_nothing(self):
        charge(self.client, key="order-1", amount=100)
        reused = charge(self.client, key="order-1", amount=200)
        self.assertEqual(reused.status_code, 422)
        self.assertEqual(reused.json()["code"], "idempotency_key_reused")
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 900)
        self.assertEqual(PhoneCharge.objects.count(), 1)

    def test_different_keys_charge_twice(self):
        charge(self.client, key="order-1")
        charge(self.client, key="order-2")
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 800)

    def test_refused_charge_is_replayed_even_after_the_balance_would_allow_it(self):
        refused = charge(self.client, key="big", amount=5_000)
        self.assertEqual(refused.status_code, 409)
        credit_approved_make(seller=self.seller, amount=10_000)
        retry = charge(self.client, key="big", amount=5_000)
        self.assertEqual(retry.status_code, 409)
        self.assertEqual(retry.json(), refused.json())
        self.assertEqual(PhoneCharge.objects.count(), 0)

    def test_invalid_input_is_not_stored_so_a_corrected_retry_runs(self):
        invalid = charge(self.client, key="order-1", phone="12")
        self.assertEqual(invalid.status_code, 400)
        self.assertFalse(IdempotencyKey.objects.exists())

    def test_the_same_key_is_independent_for_two_sellers(self):
        other = seller_make(balance=1_000)
        charge(self.client, key="shared")
        answer = charge(client_for(other.user), key="shared")
        self.assertEqual(answer.status_code, 201)
        self.assertNotIn("Idempotent-Replayed", answer)
        other.refresh_from_db()
        self.assertEqual(other.balance, 900)

    def test_an_expired_key_runs_again(self):
        charge(self.client, key="order-1")
        IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
        again = charge(self.client, key="order-1")
        self.assertEqual(again.status_code, 201)
        self.assertNotIn("Idempotent-Replayed", again)
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 800)

    def test_an_overlong_key_is_refused_and_moves_nothing(self):
        answer = charge(self.client, key="k" * 256)
        self.assertEqual(answer.status_code, 400)
        self.assertIn("Idempotency-Key", answer.json()["fields"])
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 1_000)

    def test_a_crash_before_the_key_is_recorded_undoes_the_charge(self):
        with crash_while_recording_the_answer(self):
            charge(self.client, key="order-1")
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 1_000)
        self.assertFalse(PhoneCharge.objects.exists())
        self.assertFalse(IdempotencyKey.objects.exists())

    def test_a_key_that_vanishes_after_a_failed_insert_is_inserted_again(self):
        # Between our failed insert and our look-up, a purge deleted the row
        # that held the key: the request must claim the key anew, not 404.
        record_save = IdempotencyKey.save
        inserts = []

        def first_insert_collides_with_a_row_then_purged(key, *args, **kwargs):
            inserts.append(key.key)
            if len(inserts) == 1:
                raise IntegrityError("duplicate key value violates unique constraint")
            return record_save(key, *args, **kwargs)

        with mock.patch.object(
            IdempotencyKey, "save", first_insert_collides_with_a_row_then_purged
        ):
            answer = charge(self.client, key="order-1")
        self.assertEqual(answer.status_code, 201, answer.content)
        self.seller.refresh_from_db()
        self.assertEqual(self.seller.balance, 900)
        self.assertEqual(IdempotencyKey.objects.get().response_status, 201)

    def test_a_key_with_control_characters_is_refused(self):
        answer = charge(self.client, key="bad\tkey")
        self.assertEqual(answer.status_code, 400)
        self.assertFalse(PhoneCharge.objects.exists())


class IdempotentCreditRequestTests(TestCase):
    def test_retry_creates_one_credit_request(self):
        seller = seller_make()
        client = client_for(seller.user)
        url = reverse("credit-request-list")
        first = client.post(url, {"amount": 500}, format="json", HTTP_IDEMPOTENCY_KEY="ask-1")
        retry = client.post(url, {"amount": 500}, format="json", HTTP_IDEMPOTENCY_KEY="ask-1")
        self.assertEqual(retry.json()["id"], first.json()["id"])
        self.assertEqual(CreditRequest.objects.count(), 1)


class PurgeIdempotencyKeysTests(TestCase):
    def test_purge_removes_only_expired_keys(self):
        seller = seller_make(balance=1_000)
        client = client_for(seller.user)
        charge(client, key="old")
        charge(client, key="fresh")
        IdempotencyKey.objects.filter(key="old").update(
            created_at=timezone.now() - timedelta(hours=25)
        )
        call_command("purge_idempotency_keys", stdout=StringIO())
        self.assertEqual(list(IdempotencyKey.objects.values_list("key", flat=True)), ["fresh"])


class ConcurrentIdempotentChargeTests(StormTestCase):
    """20 retries of one charge, with one Idempotency-Key, arrive at once."""

    THREADS = 20

    @classmethod
    def storm(cls):
        seller = seller_make(balance=1_000)

        def work(_: int) -> tuple[int, int | None]:
            response = charge(client_for(seller.user), key="same-key")
            return response.status_code, response.json().get("id")

        cls.outcomes = run_at_once(cls.THREADS, work)
        cls.balance = Seller.objects.get(pk=seller.pk).balance
        cls.charge_ids = list(PhoneCharge.objects.values_list("pk", flat=True))
        cls.problems = ledger_problems()

    def test_twenty_simultaneous_retries_charge_exactly_once(self):
        self.assertEqual(len(self.charge_ids), 1)

    def test_the_seller_pays_once(self):
        self.assertEqual(self.balance, 900)

    def test_every_retry_gets_the_one_charge(self):
        self.assertEqual(Counter(self.outcomes), Counter({(201, *self.charge_ids): self.THREADS}))

    def test_books_balance_afterwards(self):
        self.assertEqual(self.problems, [])
