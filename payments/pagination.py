from payledger_project.pagination import StrictCursorPagination


class JournalPagination(StrictCursorPagination):
    """Stable pages over a growing journal: new rows never shift a page."""

    # Matches the (seller, -created_at, -id) index, which also serves a
    # created_at range: a page reads its rows and stops, however long the journal.
    ordering = ("-created_at", "-id")


class EventPagination(StrictCursorPagination):
    """Events oldest first, in pages whose cursor survives new events."""

    ordering = ("id",)
