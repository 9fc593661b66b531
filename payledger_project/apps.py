from django.contrib.admin.apps import AdminConfig


class PayLedgerAdminConfig(AdminConfig):
    """Django's admin, on PayLedger's site (payledger_project/admin_site.py)."""

    default_site = "payledger_project.admin_site.PayLedgerAdminSite"
