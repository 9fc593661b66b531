from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from payledger_project.postgresql.prepared import PreparedStatement
from sellers.models import ApiKey, Seller
from sellers.services import api_key_digest

User = get_user_model()
# (model, table alias) in the order their columns come back.
JOINED = ((ApiKey, "k"), (User, "u"), (Seller, "s"))
FIELDS = {model: [field.attname for field in model._meta.concrete_fields] for model, _ in JOINED}
TOKEN_LOOKUP = PreparedStatement(
    "payledger_token_lookup",
    "SELECT "
    + ", ".join(
        f'{alias}."{field.column}"'
        for model, alias in JOINED
        for field in model._meta.concrete_fields
    )
    + f" FROM {ApiKey._meta.db_table} k"
    f" JOIN {User._meta.db_table} u ON u.id = k.user_id"
    f" LEFT JOIN {Seller._meta.db_table} s ON s.user_id = u.id"
    " WHERE k.digest = %(digest)s",
)


class SellerTokenAuthentication(TokenAuthentication):
    """DRF's token authentication (``Authorization: Token <key>``) against API keys
    kept as digests, reading the key, its user and the user's seller (if any) in
    one query on the digest's unique index, written once rather than compiled per
    request: nearly every request needs all three, and building this join through
    the ORM cost more than running it."""

    def authenticate_credentials(self, key):
        with connection.cursor() as cursor:
            TOKEN_LOOKUP.execute(cursor, {"digest": api_key_digest(key)})
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        instances, start = {}, 0
        for model, _ in JOINED:
            values = row[start : start + len(FIELDS[model])]
            start += len(FIELDS[model])
            if values[0] is not None:  # no seller: the LEFT JOIN gave NULLs
                instances[model] = model.from_db(connection.alias, FIELDS[model], values)
        api_key, user, seller = instances[ApiKey], instances[User], instances.get(Seller)
        if api_key.expires_at is not None and api_key.expires_at <= timezone.now():
            raise exceptions.AuthenticationFailed("Token has expired.")
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        # Related lookups answer from these caches; user.seller raises
        # DoesNotExist for a user without one, as it would after a query.
        ApiKey._meta.get_field("user").set_cached_value(api_key, user)
        User._meta.get_field("seller").set_cached_value(user, seller)
        if seller is not None:
            Seller._meta.get_field("user").set_cached_value(seller, user)
        return user, api_key
