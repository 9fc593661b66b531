from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination


class JournalPagination(CursorPagination):
    """Stable pages over a growing journal: new rows never shift a page.

    ``limit`` must be a whole number from 1 to ``max_page_size``; anything
    else is a 400 rather than silently the default page size.
    """

    # Matches the (seller, -created_at, -id) index, which also serves a
    # created_at range: a page reads its rows and stops, however long the journal.
    ordering = ("-created_at", "-id")
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

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters


class EventPagination(JournalPagination):
    """Events oldest first, in pages whose cursor survives new events."""

    ordering = ("id",)
