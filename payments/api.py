from itertools import chain
from urllib.parse import urlencode

from django.http import StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView, ListAPIView, get_object_or_404
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from payledger_project.db_routing import replica_or_primary
from payledger_project.money import money_format
from payledger_project.permissions import IsSeller
from payledger_project.schema import (
    IDEMPOTENCY_KEY,
    IDEMPOTENT_REPLAYED,
    RETRY_AFTER,
    error_responses,
)
from payledger_project.second_factor.permissions import StaffSecondFactor
from payledger_project.spreadsheets import SpreadsheetSafeWriter
from payledger_project.throttles import ChargeRateThrottle
from payments import filters
from payments.exceptions import (
    AlreadyDecided,
    AlreadyReversed,
    DuplicateReference,
    InsufficientBalance,
    InsufficientPhoneBalance,
    OwnSellerForbidden,
)
from payments.filters import (
    CreditRequestFilter,
    EventFilter,
    PhoneChargeFilter,
    TransactionFilter,
)
from payments.idempotency import idempotent
from payments.pagination import EventPagination, JournalPagination
from payments.permissions import CanDecideCreditRequests, CanReversePhoneCharges
from payments.selectors import (
    TRANSACTION_EXPORT_COLUMNS,
    credit_request_list,
    event_list,
    export_sellers,
    phone_charge_list,
    seller_balance_before,
    seller_statement,
    statement_seller_id,
    transaction_export_opening_rows,
    transaction_export_rows,
    transaction_list,
)
from payments.serializers import (
    BalanceAtQuerySerializer,
    CreditRequestInputSerializer,
    CreditRequestOutputSerializer,
    CreditRequestRejectInputSerializer,
    EventOutputSerializer,
    PhoneChargeDetailSerializer,
    PhoneChargeInputSerializer,
    PhoneChargeOutputSerializer,
    PhoneChargeReverseInputSerializer,
    SellerBalanceOutputSerializer,
    StatementOutputSerializer,
    StatementQuerySerializer,
    TransactionOutputSerializer,
    phone_charge_input_validate,
    phone_charge_output,
)
from payments.services import (
    credit_request_approve,
    credit_request_create,
    credit_request_reject,
    phone_charge_create,
    phone_charge_reverse,
)
from sellers.selectors import seller_list

MAY_LAG = (
    "Served by the read replica when one is configured, so it may lag the primary by the"
    " replica's delay (docs/scaling.md). To read your own write, use the answer of the"
    " write itself (a charge answers with its `transaction_id` and the new `balance`) or"
    " `GET /api/sellers/me/`, which always reads the primary."
)

DECISION_RESPONSES = {
    200: CreditRequestOutputSerializer,
    **error_responses(
        401, 403, 404, 409, 503, conflicts=[AlreadyDecided], forbidden=[OwnSellerForbidden]
    ),
}


@extend_schema_view(
    list=extend_schema(
        description=MAY_LAG,
        responses={200: CreditRequestOutputSerializer, **error_responses(400, 401, 404)},
    ),
    retrieve=extend_schema(
        responses={200: CreditRequestOutputSerializer, **error_responses(401, 404)}
    ),
    create=extend_schema(
        summary="Ask for credit",
        request=CreditRequestInputSerializer,
        parameters=[IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED, RETRY_AFTER],
        responses={
            201: CreditRequestOutputSerializer,
            **error_responses(400, 401, 403, 415, 422, 503),
        },
        examples=[OpenApiExample("ask", value={"amount": 50_000}, request_only=True)],
    ),
    approve=extend_schema(
        summary="Approve: credit the seller once", request=None, responses=DECISION_RESPONSES
    ),
    reject=extend_schema(
        summary="Reject without moving money, optionally saying why",
        request=CreditRequestRejectInputSerializer,
        responses={
            **DECISION_RESPONSES,
            **error_responses(
                400,
                401,
                403,
                404,
                409,
                415,
                503,
                conflicts=[AlreadyDecided],
                forbidden=[OwnSellerForbidden],
            ),
        },
        examples=[
            OpenApiExample("reject", value={"reason": "Unpaid invoice #12"}, request_only=True)
        ],
    ),
)
class CreditRequestViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Sellers ask for credit; staff approve or reject each request once."""

    serializer_class = CreditRequestOutputSerializer
    filterset_class = CreditRequestFilter

    def get_permissions(self):
        if self.action == "create":
            return [IsAuthenticated(), IsSeller()]
        if self.action in {"approve", "reject"}:
            return [IsAuthenticated(), CanDecideCreditRequests(), StaffSecondFactor()]
        return [IsAuthenticated()]

    def get_queryset(self):
        credit_requests = credit_request_list(user=self.request.user)
        if self.action == "list":  # may lag; a decision reads and locks the primary
            return credit_requests.using(replica_or_primary())
        return credit_requests

    @idempotent
    def create(self, request: Request) -> Response:
        serializer = CreditRequestInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        credit_request = credit_request_create(
            seller=request.user.seller, amount=serializer.validated_data["amount"]
        )
        return Response(
            CreditRequestOutputSerializer(credit_request).data, status=status.HTTP_201_CREATED
        )

    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        credit_request = credit_request_approve(
            credit_request_id=self.get_object().pk, decided_by=request.user
        )
        return Response(CreditRequestOutputSerializer(credit_request).data)

    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str) -> Response:
        serializer = CreditRequestRejectInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        credit_request = credit_request_reject(
            credit_request_id=self.get_object().pk,
            decided_by=request.user,
            reason=serializer.validated_data.get("reason"),
        )
        return Response(CreditRequestOutputSerializer(credit_request).data)


class PhoneChargeCreateApi(APIView):
    """Sell a top-up: debit the caller, credit the phone number."""

    permission_classes = [IsAuthenticated, IsSeller]
    throttle_classes = [ChargeRateThrottle]

    @extend_schema(
        summary="Sell a phone top-up",
        request=PhoneChargeInputSerializer,
        parameters=[IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED, RETRY_AFTER],
        responses={
            201: PhoneChargeOutputSerializer,
            **error_responses(
                400,
                401,
                403,
                409,
                415,
                422,
                429,
                503,
                conflicts=[InsufficientBalance, DuplicateReference],
            ),
        },
        description=(
            "409 `insufficient_balance`: the seller cannot cover it. 409 `duplicate_reference`:"
            " the seller already has a charge with this `reference`; `charge_id` names it."
        ),
        examples=[
            OpenApiExample(
                "top up",
                value={"phone_number": "+14155550123", "amount": 1500, "reference": "order-1042"},
                request_only=True,
            ),
            OpenApiExample(
                "charged",
                value={
                    "id": 42,
                    "seller": 7,
                    "phone_number": "+14155550123",
                    "amount": 1500,
                    "created_at": "2026-11-27T16:20:49.123456Z",
                    "reference": "order-1042",
                    "transaction_id": 97,
                    "balance": 48500,
                },
                response_only=True,
                status_codes=[201],
            ),
        ],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        charge = phone_charge_create(
            seller_id=request.user.seller.pk, **phone_charge_input_validate(request.data)
        )
        return Response(
            phone_charge_output.to_representation(charge), status=status.HTTP_201_CREATED
        )


@extend_schema_view(
    list=extend_schema(
        summary="Charges, newest first, each saying whether it was reversed",
        responses={200: PhoneChargeDetailSerializer, **error_responses(400, 401, 404)},
    ),
    retrieve=extend_schema(
        summary="One charge, saying whether and when it was reversed",
        responses={200: PhoneChargeDetailSerializer, **error_responses(401, 404)},
    ),
    reverse=extend_schema(
        summary="Reverse a charge: give its amount back from the phone to the seller",
        description=(
            "Staff holding `payments.reverse_phonecharge` only, and never for their own seller"
            " (403 `own_seller_forbidden`). Writes a journal row of kind"
            " `reversal`; the charge itself is never edited. 409 `already_reversed`: a charge"
            " is reversed at most once. 409 `insufficient_phone_balance`: the phone no longer"
            " holds the amount; nothing changed."
        ),
        request=PhoneChargeReverseInputSerializer,
        parameters=[IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED, RETRY_AFTER],
        responses={
            201: PhoneChargeDetailSerializer,
            **error_responses(
                400, 401, 403, 404, 409, 415, 422, 503,
                conflicts=[AlreadyReversed, InsufficientPhoneBalance],
                forbidden=[OwnSellerForbidden],
            ),
        },
        examples=[
            OpenApiExample("reverse", value={"reason": "Top-up failed at the operator"},
                           request_only=True),
        ],
    ),
)  # fmt: skip
class PhoneChargeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A seller's charges (staff who may view or reverse charges: everyone's)."""

    serializer_class = PhoneChargeDetailSerializer
    filterset_class = PhoneChargeFilter

    def get_permissions(self):
        if self.action == "reverse":
            return [IsAuthenticated(), CanReversePhoneCharges(), StaffSecondFactor()]
        return [IsAuthenticated()]

    def get_queryset(self):
        return phone_charge_list(user=self.request.user)

    @action(detail=True, methods=["post"])
    @idempotent
    def reverse(self, request: Request, pk: str) -> Response:
        serializer = PhoneChargeReverseInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        reversal = phone_charge_reverse(
            charge_id=self.get_object().pk,
            reversed_by=request.user,
            reason=serializer.validated_data.get("reason"),
        )
        charge = self.get_queryset().get(pk=reversal.charge_id)
        return Response(PhoneChargeDetailSerializer(charge).data, status=status.HTTP_201_CREATED)


class EchoBuffer:
    """A file-like sink that hands back what csv.writer writes, for streaming."""

    def write(self, value: str) -> str:
        return value


# For people, beside the integers for programs: the amounts in the currency.
EXPORT_DISPLAY_COLUMNS = ["amount_display", "balance_after_display"]
# Dates as the API writes them (RFC 3339, UTC as "Z").
API_DATETIME = serializers.DateTimeField()


def export_row(row: tuple) -> list:
    """A journal or opening row as the CSV writes it."""
    values = dict(zip(TRANSACTION_EXPORT_COLUMNS, row, strict=True))
    values["created_at"] = API_DATETIME.to_representation(values["created_at"])
    return [*values.values(), money_format(values["amount"]), money_format(values["balance_after"])]


class TransactionExportApi(GenericAPIView):
    """The caller's whole journal as CSV, streamed row by row."""

    filterset_class = TransactionFilter

    def get_queryset(self):
        # May lag behind the primary by the replica's delay (see docs/scaling.md).
        return transaction_list(user=self.request.user).using(replica_or_primary())

    def perform_content_negotiation(self, request: Request, force: bool = False):
        # The body is CSV written by get(); errors stay JSON whatever Accept says.
        return JSONRenderer(), JSONRenderer.media_type

    @extend_schema(
        summary="Export the journal as CSV",
        description=(
            "Oldest first, with the journal's filters. With `created_after`, the export"
            " starts with one row of kind `opening_balance` per seller: its balance at that"
            " instant (`balance_after`), so the rows that follow run on from it. A text"
            " cell that a spreadsheet would evaluate as a formula (it starts with `=`, `+`,"
            " `-`, `@`, a tab or a carriage return, and is not a signed whole number such as"
            " a phone number) starts with a `'`. Dates are RFC 3339, as in the JSON"
            " responses. `amount` and `balance_after` are integers of the currency's smallest"
            " unit; `amount_display` and `balance_after_display` show them in the service's"
            " currency (e.g. `75.00 USD`), for people. A reversal's `reversed_charge` is the"
            " `phone_charge` of the charge row it gives back. " + MAY_LAG
        ),
        operation_id="transactions_export",
        responses={(200, "text/csv"): OpenApiTypes.STR, **error_responses(400, 401)},
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        rows = transaction_export_rows(self.filter_queryset(self.get_queryset()))
        start = request.query_params.get("created_after")  # valid: the filter took it
        if start is not None:
            sellers = export_sellers(
                user=request.user, seller_id=request.query_params.get("seller")
            ).using(replica_or_primary())
            instant = filters.RFC3339DateTimeField().clean(start)
            rows = chain(transaction_export_opening_rows(sellers=sellers, instant=instant), rows)
        writer = SpreadsheetSafeWriter(EchoBuffer())
        lines = chain(
            [writer.writerow([*TRANSACTION_EXPORT_COLUMNS, *EXPORT_DISPLAY_COLUMNS])],
            (writer.writerow(export_row(row)) for row in rows),
        )
        response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="transactions.csv"'
        return response


@extend_schema_view(
    get=extend_schema(
        summary="The caller's journal, newest first",
        description=MAY_LAG,
        responses={200: TransactionOutputSerializer, **error_responses(400, 401, 404)},
    )
)
class TransactionListApi(ListAPIView):
    """The caller's journal, newest first (staff: everyone's, filterable by seller)."""

    serializer_class = TransactionOutputSerializer
    filterset_class = TransactionFilter
    pagination_class = JournalPagination

    def get_queryset(self):
        # May lag behind the primary by the replica's delay (see docs/scaling.md).
        return transaction_list(user=self.request.user).using(replica_or_primary())


class StatementApi(APIView):
    """A seller's statement for a range: opening and closing balance and totals."""

    @extend_schema(
        summary="Statement: opening and closing balance and totals per kind over a range",
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATETIME, required=True,
                             description="Start (inclusive), RFC 3339 with an offset."),
            OpenApiParameter("to", OpenApiTypes.DATETIME, required=True,
                             description="End (exclusive), RFC 3339 with an offset."),
            OpenApiParameter("seller", {"type": "integer", "format": "int64", "minimum": 1},
                             description="Staff who may view the journal: whose statement."),
        ],
        responses={200: StatementOutputSerializer, **error_responses(400, 401, 404)},
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        query = StatementQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        start, end = query.validated_data["from"], query.validated_data["to"]
        seller_id = statement_seller_id(user=request.user, asked=query.validated_data.get("seller"))
        if seller_id is None:
            raise NotFound()
        statement = seller_statement(seller_id=seller_id, start=start, end=end)
        journal = {"created_after": start.isoformat(), "created_before": end.isoformat()}
        if query.validated_data.get("seller"):
            journal["seller"] = seller_id
        journal_url = request.build_absolute_uri(
            f"{reverse('transaction-list')}?{urlencode(journal)}"
        )
        return Response(
            StatementOutputSerializer(statement, context={"journal_url": journal_url}).data
        )


# Served at /api/sellers/me/ (the seller's address) by payments, which owns balances
# and the journal.
class SellerBalanceApi(APIView):
    """The caller's own seller account with its balance: now, or with `?at=` at an
    instant (from the journal's running balance). Always read from the primary."""

    @extend_schema(
        summary="The caller's own seller account (with ?at=, its balance at that instant)",
        parameters=[
            OpenApiParameter(
                "at",
                OpenApiTypes.DATETIME,
                description=(
                    "RFC 3339 with an offset: answer the balance after every movement before"
                    " this instant, from the journal's running balance."
                ),
            )
        ],
        responses={200: SellerBalanceOutputSerializer, **error_responses(400, 401, 404)},
    )
    def get(self, request: Request) -> Response:
        seller = get_object_or_404(seller_list(user=request.user), user=request.user)
        answer = SellerBalanceOutputSerializer(seller).data
        if "at" in request.query_params:
            at = BalanceAtQuerySerializer(data=request.query_params)
            at.is_valid(raise_exception=True)
            instant = at.validated_data["at"]
            answer["balance"] = seller_balance_before(seller_id=seller.pk, instant=instant)
            answer["at"] = at.data["at"]
        return Response(answer)


@extend_schema_view(
    get=extend_schema(
        summary="The caller's events, oldest first: catch up from the last id seen",
        responses={200: EventOutputSerializer, **error_responses(400, 401, 404)},
    )
)
class EventListApi(ListAPIView):
    """The caller's events after ``?after=<id>``, oldest first (staff with the
    view permission: everyone's, filterable by seller)."""

    serializer_class = EventOutputSerializer
    filterset_class = EventFilter
    pagination_class = EventPagination

    def get_queryset(self):
        return event_list(user=self.request.user)
