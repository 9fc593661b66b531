from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from rest_framework.authtoken.models import Token

from sellers.models import Seller

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


def auth_token_revoke(*, user: AbstractBaseUser) -> None:
    """Log the user out of the API: its token stops working at once."""
    Token.objects.filter(user=user).delete()
