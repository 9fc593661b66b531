from django.core.management.base import BaseCommand, CommandError

from payments.selectors import ledger_check
from sellers.models import Seller


class Command(BaseCommand):
    help = "Check that the books balance; exit non-zero naming every offending row."

    def add_arguments(self, parser):
        parser.add_argument(
            "--seller", type=int, help="check only this seller's balance and journal chain"
        )

    def handle(self, *args, seller: int | None = None, **options):
        if seller is not None and not Seller.objects.filter(pk=seller).exists():
            raise CommandError(f"No seller {seller}.")
        check = ledger_check(seller_id=seller)
        for problem in check.problems:
            self.stderr.write(problem)
        summary = f"checked {check.sellers} sellers, {check.transactions} transactions"
        if check.problems:
            raise CommandError(f"{summary}: {len(check.problems)} problem(s).")
        self.stdout.write(self.style.SUCCESS(f"{summary}: ok"))
