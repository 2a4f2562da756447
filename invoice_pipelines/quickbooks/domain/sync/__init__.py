"""The QuickBooks syncs: customers and items both ways, invoices pushed, payments pulled."""
