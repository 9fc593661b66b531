"""The request path's queries, as PostgreSQL plans them on a book large enough for a
bad plan to show: each walks a (seller, order) index and reads little more than it
returns, for the busiest seller and for a quiet one alike (issue 29).

The planner's choice is under test, not a timing: the book (testing/book.py) is
analysed, and each query runs under EXPLAIN ANALYZE.
"""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db.models import Count
from django.test import TestCase
from django.utils import timezone

from payments.models import CreditRequest, PhoneCharge, Transaction
from payments.selectors import (
    credit_requests_with_seller_activity,
    event_list,
    phone_charge_list,
    transaction_list,
)
from sellers.models import Seller
from testing.book import HOT_SHARE, USERNAME_PREFIX, book_grow, book_setup
from testing.plans import plan_of
from webhooks.fields import secret_encrypt

User = get_user_model()
PAGE = 50
# For a quiet seller either serves (a few rows, sorted); the rows read tell a bad plan.
JOURNAL_INDEXES = ("transaction_seller_newest", "transaction_seller_id")
# Tables that grow with the books: none may be read whole on the request path.
LARGE_TABLES = {
    "payments_transaction",
    "payments_phonecharge",
    "payments_event",
    "payments_creditrequest",
}


class RequestPathPlanTests(TestCase):
    SELLERS = 2_000
    ROWS = 40_000

    @classmethod
    def setUpTestData(cls):
        cls.end = timezone.now()
        book_setup(
            sellers=cls.SELLERS,
            start=cls.end - timedelta(days=731),
            webhook_secret=secret_encrypt("whsec_book"),
        )
        book_grow(to_rows=cls.ROWS, final_rows=cls.ROWS, end=cls.end)
        quiet_seller = (
            Seller.objects.annotate(rows=Count("transactions"))
            .filter(rows__gt=0)
            .order_by("rows", "pk")
            .first()
        )
        # Each user with its seller, as an API key loads them (sellers/authentication.py).
        users = User.objects.select_related("seller")
        cls.hot = users.get(username=f"{USERNAME_PREFIX}1")
        cls.quiet = users.get(pk=quiet_seller.user_id)

    def assertWalksIndex(self, queryset, *indexes: str, reads_at_most: int = 2 * PAGE):
        """``queryset`` scans one of ``indexes``, reads no large table whole, throws no
        row away and reads at most ``reads_at_most`` rows for all its scans."""
        plan = plan_of(queryset)
        self.assertTrue(plan.indexes & set(indexes), plan.text)
        self.assertFalse(plan.sequential_scans & LARGE_TABLES, plan.text)
        self.assertEqual(plan.rows_removed, 0, plan.text)
        self.assertLessEqual(plan.rows_read, reads_at_most, plan.text)

    def assertReadsLittle(self, queryset, wanted: int):
        """The busiest seller's rows, oldest first: PostgreSQL may walk the primary key
        and skip the others' rows, since the seller holds a tenth of them: about
        1 / HOT_SHARE rows read per row kept, whatever the size of the book."""
        plan = plan_of(queryset)
        self.assertFalse(plan.sequential_scans & LARGE_TABLES, plan.text)
        self.assertLessEqual(plan.rows_read, 2 * wanted / HOT_SHARE, plan.text)

    def test_the_hot_seller_has_a_tenth_of_the_book(self):
        rows = Transaction.objects.filter(seller__user=self.hot).count()
        self.assertGreater(rows, self.ROWS // 20)

    def test_charges_first_page_walks_the_seller_id_index(self):
        for user in (self.hot, self.quiet):
            with self.subTest(user=user.username):
                # Each charge brings its journal row and, when reversed, the reversal
                # and its journal row: up to four rows read per charge shown.
                self.assertWalksIndex(
                    phone_charge_list(user=user)[:PAGE],
                    "phonecharge_seller_id",
                    reads_at_most=4 * PAGE,
                )

    def test_journal_first_page_walks_a_seller_index(self):
        for user in (self.hot, self.quiet):
            with self.subTest(user=user.username):
                self.assertWalksIndex(transaction_list(user=user)[:PAGE], *JOURNAL_INDEXES)

    def test_a_deep_journal_page_walks_a_seller_index(self):
        a_year_back = self.end - timedelta(days=365)
        for user in (self.hot, self.quiet):
            with self.subTest(user=user.username):
                self.assertWalksIndex(
                    transaction_list(user=user).filter(created_at__lt=a_year_back)[:PAGE],
                    *JOURNAL_INDEXES,
                )

    def test_the_event_feed_from_an_old_cursor_walks_the_seller_id_index(self):
        self.assertWalksIndex(
            event_list(user=self.quiet).filter(id__gt=1)[:PAGE], "event_seller_id"
        )

    def test_the_busiest_sellers_event_feed_reads_little_more_than_its_page(self):
        self.assertReadsLittle(event_list(user=self.hot).filter(id__gt=1)[:PAGE], PAGE)

    def test_a_sellers_export_chunk_walks_a_seller_index(self):
        chunk = 2_000
        self.assertWalksIndex(
            Transaction.objects.filter(seller_id=self.quiet.seller.pk).order_by("id")[:chunk],
            *JOURNAL_INDEXES,
        )

    def test_the_busiest_sellers_export_chunk_reads_little_more_than_the_chunk(self):
        chunk = 2_000
        self.assertReadsLittle(
            Transaction.objects.filter(seller_id=self.hot.seller.pk).order_by("id")[:chunk], chunk
        )

    def test_the_pending_list_counts_recent_charges_on_the_seller_created_index(self):
        pending = CreditRequest.objects.filter(status=CreditRequest.Status.PENDING)
        page = 100
        # Each request's seller's charges of the last 30 days are read, and no others.
        recent = PhoneCharge.objects.filter(
            seller__credit_requests__status=CreditRequest.Status.PENDING,
            created_at__gte=timezone.now() - timedelta(days=30),
        ).count()
        self.assertWalksIndex(
            credit_requests_with_seller_activity(pending)[:page],
            "phonecharge_seller_created",
            reads_at_most=page + recent,
        )
