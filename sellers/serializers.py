from rest_framework import serializers

from sellers.models import Seller


class SellerRegisterInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)
    name = serializers.CharField(max_length=150)


class SellerOutputSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Seller
        fields = ["id", "username", "name", "balance", "created_at"]
        read_only_fields = fields


class TokenOutputSerializer(serializers.Serializer):
    token = serializers.CharField()
