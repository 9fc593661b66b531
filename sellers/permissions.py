"""The sellers app's permission, held by staff who may read every seller (the
rule that applies it is ``payledger_project.permissions.staff_may``)."""

VIEW_SELLERS = "sellers.view_seller"
