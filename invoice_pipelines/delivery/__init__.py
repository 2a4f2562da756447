"""Delivery of sales invoices: e-mail (SMS and WhatsApp later), at most once per invoice and channel."""
