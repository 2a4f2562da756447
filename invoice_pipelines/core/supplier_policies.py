"""How an organization's supplier register learns of a supplier it does not know yet: the policy
names (`organizations.settings["supplier_policy"]`), in a module of their own so that the
`suppliers policy` parser (argparse alone) names its choices without loading the comparison
(core/suppliers.py)."""

POLICY_SETTING = "supplier_policy"
REVIEW = "review"  # every new supplier's first invoice waits for a person
# a new supplier's first accepted invoice registers it, unconfirmed: its invoices are accepted and
# exported, but no QuickBooks vendor or bill is made for it until a person confirms it
FIRST_INVOICE = "first_invoice"
# the same, registered as confirmed: its bills reach QuickBooks with no person involved (the
# behaviour before issue 72, chosen by name, docs/intake.md says what it risks)
FIRST_INVOICE_BOOKS = "first_invoice_books"
POLICIES = (REVIEW, FIRST_INVOICE, FIRST_INVOICE_BOOKS)
REGISTERING_POLICIES = (FIRST_INVOICE, FIRST_INVOICE_BOOKS)
DEFAULT_POLICY = FIRST_INVOICE
