from rest_framework.exceptions import NotFound
from rest_framework.pagination import PageNumberPagination


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
