from payledger_project.exceptions import Conflict


class DuplicateUrl(Conflict):
    code = "duplicate_url"
    message = "This seller already has an endpoint for this URL; endpoint_id names it."


class EndpointLimit(Conflict):
    code = "endpoint_limit"
    message = "This seller has as many endpoints as it may (limit); delete one first."


class EndpointFailing(Conflict):
    code = "endpoint_failing"
    message = (
        "Deliveries to this endpoint stopped after a day of failures; delete it and"
        " register it again."
    )
