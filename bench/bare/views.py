from django.db import connection, transaction
from django.http import HttpResponse
from django.urls import path
from django.utils import timezone
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

# The statements PayLedger's charge runs while it holds the seller's row lock.
DEBIT = (
    "UPDATE sellers_seller SET balance = balance - %s"
    " WHERE user_id = %s AND balance >= %s RETURNING id, balance"
)
CREDIT_PHONE = (
    "INSERT INTO payments_phoneaccount (phone_number, balance, created_at) VALUES (%s, %s, %s)"
    " ON CONFLICT (phone_number)"
    " DO UPDATE SET balance = payments_phoneaccount.balance + excluded.balance"
)
INSERT_CHARGE = (
    "INSERT INTO payments_phonecharge (seller_id, phone_number, amount, created_at)"
    " VALUES (%s, %s, %s, %s) RETURNING id"
)
INSERT_JOURNAL_ROW = (
    "INSERT INTO payments_transaction"
    " (seller_id, kind, amount, balance_after, created_at, phone_charge_id)"
    " VALUES (%s, 'charge', %s, %s, %s, %s) RETURNING id"
)
# The charge's event, its payload the charge as the API answers it.
INSERT_EVENT = (
    "INSERT INTO payments_event (type, seller_id, created_at, payload)"
    " VALUES ('phone_charge.created', %s, %s, json_build_object("
    "'id', %s::bigint, 'seller', %s::bigint, 'phone_number', %s::text, 'amount', %s::bigint,"
    " 'created_at', %s::text, 'reference', NULL, 'transaction_id', %s::bigint,"
    " 'balance', %s::bigint)::jsonb)"
)


class ChargeInput(serializers.Serializer):
    phone_number = serializers.CharField(max_length=16)
    amount = serializers.IntegerField(min_value=1)


class BareChargeView(APIView):
    def post(self, request):
        data = ChargeInput(data=request.data)
        data.is_valid(raise_exception=True)
        phone, amount = data.validated_data["phone_number"], data.validated_data["amount"]
        now = timezone.now()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(DEBIT, [amount, request.user.pk, amount])
            debited = cursor.fetchone()
            if debited is None:
                return Response({"code": "insufficient_balance"}, status=409)
            seller_id, balance = debited
            cursor.execute(CREDIT_PHONE, [phone, amount, now])
            cursor.execute(INSERT_CHARGE, [seller_id, phone, amount, now])
            charge_id = cursor.fetchone()[0]
            cursor.execute(INSERT_JOURNAL_ROW, [seller_id, amount, balance, now, charge_id])
            transaction_id = cursor.fetchone()[0]
            cursor.execute(
                INSERT_EVENT,
                [seller_id, now, charge_id, seller_id, phone, amount, now.isoformat(),
                 transaction_id, balance],
            )  # fmt: skip
        return Response(
            {"id": charge_id, "transaction_id": transaction_id, "balance": balance}, status=201
        )


def healthz(request) -> HttpResponse:
    """Answers once the server is up, as PayLedger's /healthz does (the benchmark waits for it)."""
    return HttpResponse("ok")


urlpatterns = [
    path("api/payments/phone-charge/", BareChargeView.as_view()),
    path("healthz", healthz),
]
