from rest_framework.pagination import CursorPagination


class JournalPagination(CursorPagination):
    """Stable pages over a growing journal: new rows never shift a page."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500
