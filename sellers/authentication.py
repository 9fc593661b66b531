from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

from payledger_project.postgresql.prepared import PreparedStatement
from sellers.models import Seller

User = get_user_model()
# (model, table alias) in the order their columns come back.
JOINED = ((Token, "t"), (User, "u"), (Seller, "s"))
FIELDS = {model: [field.attname for field in model._meta.concrete_fields] for model, _ in JOINED}
TOKEN_LOOKUP = PreparedStatement(
    "payledger_token_lookup",
    "SELECT "
    + ", ".join(
        f'{alias}."{field.column}"'
        for model, alias in JOINED
        for field in model._meta.concrete_fields
    )
    + f" FROM {Token._meta.db_table} t"
    f" JOIN {User._meta.db_table} u ON u.id = t.user_id"
    f" LEFT JOIN {Seller._meta.db_table} s ON s.user_id = u.id"
    " WHERE t.key = %(key)s",
)


class SellerTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, reading the token, its user and the user's
    seller (if any) in one query written once rather than compiled per request:
    nearly every request needs all three, and building this join through the
    ORM cost more than running it."""

    def authenticate_credentials(self, key):
        with connection.cursor() as cursor:
            TOKEN_LOOKUP.execute(cursor, {"key": key})
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        instances, start = {}, 0
        for model, _ in JOINED:
            values = row[start : start + len(FIELDS[model])]
            start += len(FIELDS[model])
            if values[0] is not None:  # no seller: the LEFT JOIN gave NULLs
                instances[model] = model.from_db(connection.alias, FIELDS[model], values)
        token, user, seller = instances[Token], instances[User], instances.get(Seller)
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        # Related lookups answer from these caches; user.seller raises
        # DoesNotExist for a user without one, as it would after a query.
        Token._meta.get_field("user").set_cached_value(token, user)
        User._meta.get_field("seller").set_cached_value(user, seller)
        if seller is not None:
            Seller._meta.get_field("user").set_cached_value(seller, user)
        return user, token
