from base64 import b64decode
from binascii import Error as Base64Error
from datetime import UTC, datetime

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination, PageNumberPagination


class PagePagination(PageNumberPagination):
    """Page-number pages; ``page`` must be a whole number, not "" or "1.0"."""

    page_size = 50

    def get_page_number(self, request, paginator) -> str:
        raw = request.query_params.get(self.page_query_param, "1")
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
            raise NotFound("Invalid page.")
        return raw

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
        return parameters


class StrictCursorPagination(CursorPagination):
    """Cursor pages that take only what they were given: a bad ``limit`` or a
    ``cursor`` the paginator did not write is a 400 ``validation_error``.

    ``limit`` must be a whole number from 1 to ``max_page_size`` rather than
    silently the default page size. The cursor's position must be a value the
    first ordering field can hold: a client can edit a cursor, and without this
    check junk reaches the query (a 500 on an integer key, or a date the
    database cannot store).
    """

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        valid = raw.isascii() and raw.isdigit() and len(raw) <= 6
        if not valid or not 1 <= int(raw) <= self.max_page_size:
            raise ValidationError(
                {
                    self.page_size_query_param: [
                        f"Must be a whole number from 1 to {self.max_page_size}."
                    ]
                }
            )
        return int(raw)

    def paginate_queryset(self, queryset, request, view=None):
        self.model = queryset.model  # decode_cursor checks the position against its field
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return None
        try:
            # DRF's decoder skips characters outside base64: "%%%" or "" would
            # read as the first page.
            if not b64decode(encoded.encode("ascii"), validate=True):
                raise self._invalid_cursor()
            cursor = super().decode_cursor(request)
        except (UnicodeEncodeError, Base64Error, NotFound):
            raise self._invalid_cursor() from None
        if cursor.position is None:
            return cursor
        return cursor._replace(position=self._position(cursor.position))

    def _position(self, raw: str) -> str:
        """The position as the paginator writes it (``str`` of the field's value
        in UTC), or a 400 for anything the field cannot hold."""
        field = self.model._meta.get_field(self.ordering[0].lstrip("-"))
        try:
            value = field.to_python(raw)
            field.run_validators(value)  # integer fields: the database's range
            if isinstance(value, datetime):
                if value.tzinfo is None:
                    raise ValueError("a position in time needs its offset")
                value = value.astimezone(UTC)  # offsets past the database's cap
            elif isinstance(value, int) and value < 0:
                raise ValueError("row ids are never negative")
        except (DjangoValidationError, ValueError, OverflowError):
            raise self._invalid_cursor() from None
        return str(value)

    def _invalid_cursor(self) -> ValidationError:
        return ValidationError({self.cursor_query_param: [self.invalid_cursor_message]})

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters
