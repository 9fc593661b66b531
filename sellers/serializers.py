from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer

from payledger_project.fields import StrictCharField
from payledger_project.second_factor.services import second_factor_match
from sellers.models import ApiKey, Seller


class SellerRegisterInputSerializer(serializers.Serializer):
    username = StrictCharField(max_length=150)
    password = StrictCharField(max_length=128, write_only=True, trim_whitespace=False)
    name = StrictCharField(max_length=150)


class SellerOutputSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Seller
        fields = ["id", "username", "name", "balance", "created_at"]
        read_only_fields = fields


class TokenOutputSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="The new API key, shown this once.")


class ApiKeyOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = ["prefix", "created_at", "expires_at"]
        read_only_fields = fields
        extra_kwargs = {
            "prefix": {"help_text": "The key's first characters, which name it."},
            "expires_at": {"help_text": "When the key stops working; null: until revoked."},
        }


class TokenObtainInputSerializer(AuthTokenSerializer):
    username = StrictCharField(label="Username", write_only=True)
    password = StrictCharField(
        label="Password", style={"input_type": "password"}, trim_whitespace=False, write_only=True
    )
    otp_code = StrictCharField(
        required=False,
        write_only=True,
        max_length=32,
        help_text=(
            "Staff: a code from your authenticator (or a recovery code). A key minted"
            " with one may approve, reject and reverse; one minted without may only read."
        ),
    )

    def validate(self, attrs):
        attrs = super().validate(attrs)
        code = attrs.get("otp_code")
        if code is not None and second_factor_match(attrs["user"], code) is None:
            raise serializers.ValidationError(
                {"otp_code": "That code is not valid for this user."}, code="invalid"
            )
        return attrs
