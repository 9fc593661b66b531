"""The whole service over real HTTP, with many clients at once."""

from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

import requests
from django.core.management import call_command
from django.test import LiveServerTestCase, tag

from payments.models import PhoneAccount
from sellers.models import Seller
from testing.factories import PASSWORD, staff_make

CLIENT_THREADS = 16
CHARGES = 1_000
PHONES = ["+14155550123", "+14155550124", "+447912345678", "+447400123456", "+12025550147"]


@tag("long")
class LiveChargeStormTests(LiveServerTestCase):
    def url(self, path: str) -> str:
        return f"{self.live_server_url}{path}"

    def token(self, username: str) -> dict[str, str]:
        response = requests.post(
            self.url("/api-token-auth/"), json={"username": username, "password": PASSWORD}
        )
        response.raise_for_status()
        return {"Authorization": f"Token {response.json()['token']}"}

    def register(self, username: str) -> tuple[int, dict[str, str]]:
        response = requests.post(
            self.url("/api/sellers/"),
            json={"username": username, "password": PASSWORD, "name": username},
        )
        self.assertEqual(response.status_code, 201, response.text)
        return response.json()["id"], self.token(username)

    def fund(self, seller_auth: dict, staff_auth: dict, *, requests_count: int, amount: int):
        for _ in range(requests_count):
            created = requests.post(
                self.url("/api/payments/credit-requests/"),
                json={"amount": amount},
                headers=seller_auth,
            )
            self.assertEqual(created.status_code, 201, created.text)
            approved = requests.post(
                self.url(f"/api/payments/credit-requests/{created.json()['id']}/approve/"),
                headers=staff_auth,
            )
            self.assertEqual(approved.status_code, 200, approved.text)

    def test_a_thousand_concurrent_charges_over_http_keep_the_books_balanced(self):
        staff = staff_make()
        staff_auth = self.token(staff.username)
        # Seller "rich" can afford every charge sent to it; seller "tight" can
        # afford exactly 333 of its 500, whatever order they arrive in.
        rich_id, rich_auth = self.register("rich")
        tight_id, tight_auth = self.register("tight")
        self.fund(rich_auth, staff_auth, requests_count=10, amount=10_000)
        self.fund(tight_auth, staff_auth, requests_count=10, amount=1_000)
        plan = [
            (rich_auth, 100, PHONES[i % len(PHONES)]) if i % 2 else (tight_auth, 30, PHONES[i % 3])
            for i in range(CHARGES)
        ]

        def charge(job):
            auth, amount, phone = job
            with requests.Session() as session:
                response = session.post(
                    self.url("/api/payments/phone-charge/"),
                    json={"phone_number": phone, "amount": amount},
                    headers=auth,
                )
            return response.status_code, response.json(), amount, phone

        with ThreadPoolExecutor(max_workers=CLIENT_THREADS) as pool:
            results = list(pool.map(charge, plan))

        statuses = Counter(
            (status, body.get("code")) if status != 201 else (201, body["seller"])
            for status, body, _, _ in results
        )
        expected_phone_totals = defaultdict(int)
        for status, _, amount, phone in results:
            if status == 201:
                expected_phone_totals[phone] += amount

        with self.subTest("every answer is a charge or a clean refusal"):
            self.assertEqual(
                statuses,
                Counter(
                    {(201, rich_id): 500, (201, tight_id): 333, (409, "insufficient_balance"): 167}
                ),
            )
        with self.subTest("seller balances"):
            self.assertEqual(Seller.objects.get(pk=rich_id).balance, 100_000 - 500 * 100)
            self.assertEqual(Seller.objects.get(pk=tight_id).balance, 10_000 - 333 * 30)
        with self.subTest("phone balances"):
            self.assertEqual(
                dict(PhoneAccount.objects.values_list("phone_number", "balance")),
                dict(expected_phone_totals),
            )
        with self.subTest("verify_ledger passes"):
            call_command("verify_ledger")
