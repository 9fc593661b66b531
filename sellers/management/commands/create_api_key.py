from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from sellers.services import api_key_create

User = get_user_model()


class Command(BaseCommand):
    help = (
        "Print a new API key for an existing user, e.g. a staff member created with "
        "createsuperuser, for scripts and curl: shown this once, the database keeps its "
        "digest. Logging in (POST /api-token-auth/) mints the same kind of key."
    )

    def add_arguments(self, parser):
        parser.add_argument("username", help="whose key it is")

    def handle(self, *args, username: str, **options):
        try:
            user = User._default_manager.get_by_natural_key(username)
        except User.DoesNotExist:
            raise CommandError(f"No user is named {username!r}.") from None
        if not user.is_active:
            raise CommandError(f"{username!r} is inactive: a key for it would be refused.")
        _, key = api_key_create(user=user)
        self.stdout.write(key)
