import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from sellers.models import ApiKey, Seller

User = get_user_model()


def seller_register(*, username: str, password: str, name: str) -> Seller:
    """Create a user and its seller account, starting with a zero balance."""
    user = User(username=username)
    user.full_clean(exclude=["password"])
    Seller(name=name).full_clean(exclude=["user"])
    try:
        validate_password(password, user=user)
    except ValidationError as error:
        raise ValidationError({"password": error.messages}) from error
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
            return Seller.objects.create(user=user, name=name)
    except IntegrityError as error:
        # The unique index decides between two registrations racing for one name.
        if User.objects.filter(username=username).exists():
            raise ValidationError({"username": "This username is already taken."}) from error
        raise


# 160 random bits, written as 40 hex digits: the shape DRF's tokens had.
API_KEY_BYTES = 20
API_KEY_PREFIX_LENGTH = ApiKey._meta.get_field("prefix").max_length


def api_key_digest(key: str) -> str:
    """What the database keeps of a key, and what a request's key is looked up by."""
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_create(*, user: AbstractBaseUser, second_factor: bool = False) -> tuple[ApiKey, str]:
    """Mint a key for ``user``: the caller gets the key, shown this once; the
    database keeps its digest; ``second_factor``: the login gave a valid code. The
    user's expired keys go, and so does its oldest key when it already holds
    PAYLEDGER_API_KEYS_PER_USER."""
    now = timezone.now()
    ttl = settings.PAYLEDGER_API_KEY_TTL_DAYS
    with transaction.atomic():
        ApiKey.objects.filter(user=user, expires_at__lte=now).delete()
        newest_first = ApiKey.objects.filter(user=user).order_by("-created_at", "-pk")
        kept = list(newest_first.values_list("pk", "prefix"))
        overflow = [pk for pk, _ in kept[settings.PAYLEDGER_API_KEYS_PER_USER - 1 :]]
        if overflow:
            ApiKey.objects.filter(pk__in=overflow).delete()
        prefixes = {prefix for _, prefix in kept}
        key = secrets.token_hex(API_KEY_BYTES)
        while key[:API_KEY_PREFIX_LENGTH] in prefixes:  # the prefix names one key of the user's
            key = secrets.token_hex(API_KEY_BYTES)
        api_key = ApiKey.objects.create(
            user=user,
            digest=api_key_digest(key),
            prefix=key[:API_KEY_PREFIX_LENGTH],
            created_at=now,
            expires_at=now + timedelta(days=ttl) if ttl else None,
            second_factor=second_factor,
        )
    return api_key, key


def api_key_revoke(*, api_key: ApiKey) -> None:
    """The key stops working at once: the next request with it is refused."""
    api_key.delete()
