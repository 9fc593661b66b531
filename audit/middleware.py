"""Each write request's context for the audit trail: who (the session's or the
API key's user), the path, and the client's address as the rest of PayLedger
reads it (the socket peer, or with PROXY_COUNT the address the outermost proxy
wrote: DRF's get_ident, which the login limit counts by too), never a header a
client can set."""

from django.urls import reverse
from pghistory.middleware import HistoryMiddleware
from rest_framework.throttling import BaseThrottle


def client_address(request) -> str:
    return BaseThrottle().get_ident(request)


class AuditContextMiddleware(HistoryMiddleware):
    def __init__(self, get_response):
        super().__init__(get_response)
        # The charge writes nothing the trail tracks (a seller's balance is
        # not tracked); the context would prefix each of its statements.
        self.untracked_paths = {reverse("phone-charge")}

    def get_context(self, request) -> dict:
        return {**super().get_context(request), "remote_addr": client_address(request)}

    def __call__(self, request):
        if request.path in self.untracked_paths:
            return self.get_response(request)
        return super().__call__(request)
