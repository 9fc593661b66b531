from django.core.management.base import BaseCommand, CommandError

from webhooks.services import webhook_secrets_rotate


class Command(BaseCommand):
    help = (
        "Encrypt every webhook signing secret again with the newest key (the first of"
        " PAYLEDGER_WEBHOOK_SECRET_KEYS); then the older keys can be removed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500, help="endpoints per transaction")

    def handle(self, *args, batch_size: int, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be 1 or more.")
        rotated = webhook_secrets_rotate(batch_size=batch_size)
        self.stdout.write(f"{rotated} webhook secrets encrypted with the newest key")
