from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from payments.selectors import ledger_check
from sellers.models import Seller


class Command(BaseCommand):
    help = (
        "Check that the books balance; exit non-zero naming every offending row. Reads one"
        " snapshot and takes no lock a charge waits on. With --checkpoint FILE, checks only"
        " the journal rows after the id in FILE (all of them if FILE does not exist yet) and,"
        " if they are sound, writes to FILE the newest id checked that is ten minutes old (the"
        " rows after it may have uncommitted rows below them, so they are read again)."
    )

    def add_arguments(self, parser):
        scope = parser.add_mutually_exclusive_group()
        scope.add_argument(
            "--seller", type=int, help="check only this seller's balance and journal chain"
        )
        scope.add_argument(
            "--after", type=int, metavar="ID", help="check only the journal rows after this id"
        )
        scope.add_argument(
            "--checkpoint",
            type=Path,
            metavar="FILE",
            help="check the rows after the id in FILE, then write the newest settled id there",
        )

    def handle(
        self,
        *args,
        seller: int | None = None,
        after: int | None = None,
        checkpoint: Path | None = None,
        **options,
    ):
        if seller is not None and not Seller.objects.filter(pk=seller).exists():
            raise CommandError(f"No seller {seller}.")
        if checkpoint is not None and checkpoint.exists():
            after = self._checkpoint_read(checkpoint)
        check = ledger_check(seller_id=seller, after_id=after)
        for problem in check.problems:
            self.stderr.write(problem)
        rows = "transactions" if after is None else f"transactions after {after}"
        summary = f"checked {check.sellers} sellers, {check.transactions} {rows}"
        if check.problems:
            raise CommandError(f"{summary}: {len(check.problems)} problem(s).")
        if checkpoint is not None:
            try:
                checkpoint.write_text(f"{check.settled_id}\n")
            except OSError as error:
                raise CommandError(f"{summary}: ok, but {checkpoint}: {error.strerror}.") from error
        self.stdout.write(self.style.SUCCESS(f"{summary}: ok"))

    @staticmethod
    def _checkpoint_read(checkpoint: Path) -> int:
        try:
            text = checkpoint.read_text().strip()
        except OSError as error:
            raise CommandError(f"{checkpoint}: {error.strerror}.") from error
        if not text.isdigit():
            raise CommandError(f"{checkpoint} holds {text[:40]!r}, not a journal id.")
        return int(text)
