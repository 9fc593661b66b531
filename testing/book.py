"""A large, consistent book written straight into PostgreSQL, for plan tests and
``make bench-scale``.

Set-based SQL (``INSERT ... SELECT`` over ``generate_series``), not the API: ten
million journal rows take minutes, not days. The book is what the services would
have written, and ``verify_ledger`` finds it whole:

- ``sellers`` sellers (users ``book-seller-<n>``) with skewed activity: the first,
  the *hot* seller, writes ``HOT_SHARE`` of all rows; the rest follow a power law,
  so the last sellers write a handful each;
- each seller's journal runs in id order and date order at once, with an unbroken
  ``balance_after`` chain: its 1st, 51st, 101st... row is an approved credit that
  covers the 49 charges after it (so no balance is ever negative), its 37th, 137th...
  row reverses the charge just before it, the rest are charges to ``PHONES`` numbers;
- one event per movement (and per credit request made), idempotency keys, webhook
  endpoints for the first ``ENDPOINTS`` sellers with a delivery attempt for every
  fifth of their events, and a pending or rejected credit request for one seller in
  a hundred.

The rows are spread evenly over ``span`` ending at ``end``, by their place in the
final book (``final_rows``): ``book_grow`` can grow the same book in steps, each
step adding the next, newer rows, as a book grows in time.
"""

from datetime import datetime, timedelta

from django.db import connection, transaction

HOT_SHARE = 0.1
CREDIT_EVERY = 50  # journal rows per seller between two credits
CREDIT_AMOUNT = 250_000  # covers CREDIT_EVERY - 1 charges of at most MAX_CHARGE
MAX_CHARGE = 5_000
REVERSAL_EVERY = 100  # the (REVERSAL_AT)th row of each hundred reverses the charge before it
REVERSAL_AT = 37
PHONES = 100_000
ENDPOINTS = 1_000
USERNAME_PREFIX = "book-seller-"
STAFF_USERNAME = "book-staff"

# Each is one statement, run in order in one transaction; %(name)s are the step's values.
_SETUP = [
    """
    INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email,
                           is_staff, is_active, date_joined)
    SELECT '!', false, %(staff)s, '', '', '', true, true, %(start)s
    """,
    """
    INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email,
                           is_staff, is_active, date_joined)
    SELECT '!', false, %(prefix)s || n, '', '', '', false, true, %(start)s
    FROM generate_series(1, %(sellers)s) n
    """,
    """
    INSERT INTO sellers_seller (name, balance, created_at, user_id)
    SELECT 'Book seller ' || n, 0, %(start)s, u.id
    FROM generate_series(1, %(sellers)s) n JOIN auth_user u ON u.username = %(prefix)s || n
    ORDER BY n
    """,
    """
    INSERT INTO payments_phoneaccount (phone_number, balance, created_at)
    SELECT '+447700' || lpad(p::text, 6, '0'), 0, %(start)s
    FROM generate_series(0, %(phones)s - 1) p
    """,
    """
    INSERT INTO webhooks_webhookendpoint
        (seller_id, url, event_types, secret, status, created_at, last_event_id,
         next_attempt_at, failed_attempts)
    SELECT id, 'https://hooks.example.com/payledger', '["phone_charge.created"]'::jsonb,
           %(secret)s, 'active', %(start)s, 0, %(start)s, 0
    FROM sellers_seller ORDER BY id LIMIT %(endpoints)s
    """,
]

_GROW = [
    # The sellers by rank (1 = hot) and where each one's journal stands.
    """
    CREATE TEMP TABLE book_seller ON COMMIT DROP AS
    SELECT s.id AS seller_id, substr(u.username, length(%(prefix)s) + 1)::int AS rank,
           s.balance, s.user_id,
           (SELECT count(*) FROM payments_transaction t WHERE t.seller_id = s.id) AS rows_before,
           (SELECT max(t.id) FROM payments_transaction t WHERE t.seller_id = s.id) AS last_id
    FROM sellers_seller s JOIN auth_user u ON u.id = s.user_id
    WHERE u.username LIKE %(prefix)s || '%%'
    """,
    "CREATE UNIQUE INDEX ON book_seller (rank)",
    "ANALYZE book_seller",
    # The new rows: whose, when, and each one's place in its seller's journal.
    """
    CREATE TEMP TABLE book_row ON COMMIT DROP AS
    SELECT r.g, %(first_id)s + r.g - 1 AS id, b.seller_id, b.user_id,
           %(end)s - (%(final_rows)s - %(rows_before)s - r.g) * %(spacing)s AS created_at,
           b.rows_before + row_number() OVER w AS n,
           coalesce(lag(%(first_id)s + r.g - 1) OVER w, b.last_id) AS previous_id,
           b.balance
    FROM (
        SELECT g, CASE WHEN random() < %(hot_share)s THEN 1
                       ELSE 2 + floor((%(sellers)s - 1) * power(random(), 3))::int END AS rank
        FROM generate_series(1, %(rows)s) g
    ) r JOIN book_seller b USING (rank)
    WINDOW w AS (PARTITION BY b.seller_id ORDER BY r.g)
    """,
    # What each row is and moves; a reversal gives back the charge before it.
    """
    CREATE TEMP TABLE book_entry ON COMMIT DROP AS
    SELECT g, id, seller_id, user_id, created_at, previous_id, kind, amount,
           balance + sum(CASE kind WHEN 'charge' THEN -amount ELSE amount END)
               OVER (PARTITION BY seller_id ORDER BY g) AS balance_after,
           '+447700' || lpad((CASE kind WHEN 'reversal' THEN previous_id ELSE id END
                              * 7919 %% %(phones)s)::text, 6, '0') AS phone_number
    FROM (
        SELECT *,
               CASE WHEN n %% %(credit_every)s = 1 THEN 'credit'
                    WHEN n %% %(reversal_every)s = %(reversal_at)s THEN 'reversal'
                    ELSE 'charge' END AS kind,
               CASE WHEN n %% %(credit_every)s = 1 THEN %(credit_amount)s
                    WHEN n %% %(reversal_every)s = %(reversal_at)s
                        THEN 100 + (seller_id * 31 + (n - 1) * 7919) %% (%(max_charge)s - 99)
                    ELSE 100 + (seller_id * 31 + n * 7919) %% (%(max_charge)s - 99) END AS amount
        FROM book_row
    ) row
    """,
    """
    INSERT INTO payments_creditrequest (id, seller_id, amount, status, created_at, decided_at,
                                        decided_by_id)
    SELECT id, seller_id, amount, 'approved', created_at - interval '1 hour', created_at,
           %(staff_id)s
    FROM book_entry WHERE kind = 'credit'
    """,
    """
    INSERT INTO payments_phonecharge (id, seller_id, phone_number, amount, created_at, reference)
    SELECT id, seller_id, phone_number, amount, created_at,
           CASE WHEN id %% 3 = 0 THEN 'order-' || id END
    FROM book_entry WHERE kind = 'charge'
    """,
    """
    INSERT INTO payments_phonechargereversal (id, charge_id, reason, reversed_by_id, created_at)
    SELECT id, previous_id, 'Top-up failed at the operator', %(staff_id)s, created_at
    FROM book_entry WHERE kind = 'reversal'
    """,
    """
    INSERT INTO payments_transaction (id, seller_id, kind, amount, balance_after, created_at,
                                      credit_request_id, phone_charge_id, reversal_id)
    SELECT id, seller_id, kind, amount, balance_after, created_at,
           CASE kind WHEN 'credit' THEN id END, CASE kind WHEN 'charge' THEN id END,
           CASE kind WHEN 'reversal' THEN id END
    FROM book_entry ORDER BY id
    """,
    """
    INSERT INTO payments_event (type, seller_id, created_at, payload)
    SELECT type, seller_id, at, payload FROM (
        SELECT id, 0 AS step, 'credit_request.created' AS type, seller_id,
               created_at - interval '1 hour' AS at,
               jsonb_build_object('id', id, 'seller', seller_id, 'amount', amount,
                                  'status', 'pending', 'balance', balance_after - amount) AS payload
        FROM book_entry WHERE kind = 'credit'
        UNION ALL
        SELECT id, 1, CASE kind WHEN 'credit' THEN 'credit_request.approved'
                                WHEN 'charge' THEN 'phone_charge.created'
                                ELSE 'phone_charge.reversed' END,
               seller_id, created_at,
               jsonb_build_object('id', CASE kind WHEN 'reversal' THEN previous_id ELSE id END,
                                  'seller', seller_id,
                                  'phone_number', phone_number, 'amount', amount,
                                  'created_at', created_at, 'transaction_id', id,
                                  'balance', balance_after)
        FROM book_entry
    ) event ORDER BY id, step
    """,
    """
    INSERT INTO payments_idempotencykey (user_id, key, request_fingerprint, response_status,
                                         response_body, created_at)
    SELECT user_id, 'book-' || id, md5(id::text), 201,
           jsonb_build_object('id', id, 'amount', amount, 'balance', balance_after), created_at
    FROM book_entry WHERE kind = 'charge' AND id %% 20 = 0
    """,
    """
    INSERT INTO webhooks_webhookdelivery (endpoint_id, event_id, attempt, delivered, status_code,
                                          duration_ms, created_at)
    SELECT w.id, e.id, 1, true, 200, 40 + e.id %% 200, e.created_at + interval '1 second'
    FROM payments_event e JOIN webhooks_webhookendpoint w USING (seller_id)
    WHERE e.id > %(events_before)s AND e.id %% 5 = 0
    ORDER BY e.id
    """,
    """
    UPDATE webhooks_webhookendpoint w SET last_event_id = e.last_id
    FROM (SELECT seller_id, max(id) AS last_id FROM payments_event GROUP BY seller_id) e
    WHERE e.seller_id = w.seller_id
    """,
    """
    UPDATE sellers_seller s SET balance = last.balance_after
    FROM (SELECT DISTINCT ON (seller_id) seller_id, balance_after
          FROM book_entry ORDER BY seller_id, g DESC) last
    WHERE last.seller_id = s.id
    """,
    """
    UPDATE payments_phoneaccount p SET balance = p.balance + moved.amount
    FROM (SELECT phone_number,
                 sum(CASE kind WHEN 'charge' THEN amount ELSE -amount END) AS amount
          FROM book_entry WHERE kind <> 'credit' GROUP BY phone_number) moved
    WHERE moved.phone_number = p.phone_number
    """,
]

# After the ids caught up: these take theirs from the sequence. One seller in a hundred
# has a request waiting (every other one of them a rejected one too).
_DECISIONS_PENDING = """
    INSERT INTO payments_creditrequest (seller_id, amount, status, created_at, decided_at,
                                        decided_by_id, rejection_reason)
    SELECT seller_id, 10000 + rank, status, %(end)s - interval '1 day' * (rank %% 30),
           CASE status WHEN 'rejected' THEN %(end)s END,
           CASE status WHEN 'rejected' THEN %(staff_id)s END,
           CASE status WHEN 'rejected' THEN 'Unpaid invoice' END
    FROM book_seller, (VALUES ('pending'), ('rejected')) decision (status)
    WHERE rank %% 100 = 0 AND (status = 'pending' OR rank %% 200 = 0)
      AND NOT EXISTS (SELECT 1 FROM payments_creditrequest c
                      WHERE c.seller_id = book_seller.seller_id AND c.status <> 'approved')
"""

_SEQUENCES = [
    ("auth_user", "id"),
    ("sellers_seller", "id"),
    ("payments_phoneaccount", "id"),
    ("payments_creditrequest", "id"),
    ("payments_phonecharge", "id"),
    ("payments_phonechargereversal", "id"),
    ("payments_transaction", "id"),
    ("payments_event", "id"),
    ("payments_idempotencykey", "id"),
    ("webhooks_webhookendpoint", "id"),
    ("webhooks_webhookdelivery", "id"),
]


def book_setup(*, sellers: int, start: datetime, webhook_secret: str) -> None:
    """The book's sellers, its staff member, its phones and webhook endpoints, with no
    movement yet. ``webhook_secret`` is stored as is: pass it encrypted."""
    values = {
        "staff": STAFF_USERNAME,
        "prefix": USERNAME_PREFIX,
        "sellers": sellers,
        "start": start,
        "phones": PHONES,
        "secret": webhook_secret,
        "endpoints": ENDPOINTS,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in _SETUP:
            cursor.execute(statement, values)
        _sequences_catch_up(cursor)


def book_grow(
    *, to_rows: int, final_rows: int, end: datetime, span: timedelta = timedelta(days=730)
) -> int:
    """Add journal rows (with their charges, credits, reversals, events...) until the
    book has ``to_rows``; the ``final_rows`` of the whole book spread evenly over
    ``span`` up to ``end``. Returns the number of rows added."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), coalesce(max(id), 0) FROM payments_transaction")
        rows_before, last_id = cursor.fetchone()
        cursor.execute("SELECT coalesce(max(id), 0) FROM payments_event")
        (events_before,) = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FROM auth_user WHERE username LIKE %s", [USERNAME_PREFIX + "%"]
        )
        (sellers,) = cursor.fetchone()
        cursor.execute("SELECT id FROM auth_user WHERE username = %s", [STAFF_USERNAME])
        (staff_id,) = cursor.fetchone()
    rows = to_rows - rows_before
    if rows <= 0:
        return 0
    # Credit requests, charges and reversals take their journal row's id: a free range
    # past every table's ids.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT greatest(%s, (SELECT coalesce(max(id), 0) FROM payments_creditrequest),"
            " (SELECT coalesce(max(id), 0) FROM payments_phonecharge),"
            " (SELECT coalesce(max(id), 0) FROM payments_phonechargereversal))",
            [last_id],
        )
        (first_id,) = cursor.fetchone()
    values = {
        "prefix": USERNAME_PREFIX,
        "sellers": sellers,
        "rows": rows,
        "rows_before": rows_before,
        "first_id": first_id + 1,
        "final_rows": final_rows,
        "end": end,
        "spacing": span / final_rows,
        "hot_share": HOT_SHARE,
        "credit_every": CREDIT_EVERY,
        "credit_amount": CREDIT_AMOUNT,
        "max_charge": MAX_CHARGE,
        "reversal_every": REVERSAL_EVERY,
        "reversal_at": REVERSAL_AT,
        "phones": PHONES,
        "staff_id": staff_id,
        "events_before": events_before,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 0")  # production's is seconds
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute("SET LOCAL synchronous_commit = off")
        # Every row refers to rows this step or an earlier one wrote: checking each
        # foreign key row by row (a trigger per row) would double the step's time.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("SELECT setseed(%s)", [rows_before / (rows_before + rows)])  # same book
        for statement in _GROW:
            cursor.execute(statement, values)
        _sequences_catch_up(cursor)
        cursor.execute(_DECISIONS_PENDING, values)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 0")
        cursor.execute("ANALYZE")
    return rows


def _sequences_catch_up(cursor) -> None:
    """Rows written with explicit ids: each table's next id comes after them."""
    for table, column in _SEQUENCES:
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
            f" greatest((SELECT max({column}) FROM {table}), 1))"
        )
