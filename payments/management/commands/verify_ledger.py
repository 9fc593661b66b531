from django.core.management.base import BaseCommand, CommandError

from payments.selectors import ledger_problems


class Command(BaseCommand):
    help = "Check that the books balance; exit non-zero naming every offending row."

    def handle(self, *args, **options):
        problems = ledger_problems()
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"Ledger check failed: {len(problems)} problem(s).")
        self.stdout.write(self.style.SUCCESS("Ledger OK: all four invariants hold."))
