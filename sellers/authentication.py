from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication


class SellerTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, reading the token, its user and the user's
    seller in one query: nearly every request needs all three."""

    def authenticate_credentials(self, key):
        model = self.get_model()
        try:
            token = model.objects.select_related("user__seller").get(key=key)
        except model.DoesNotExist:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return token.user, token
