"""Tax-audit access: the Z3 data carrier of an organization's fiscal year in the tax
administration's description standard (audit-export, the `audit_data_carrier` asset) and the
proof that what we archived is unchanged (audit-verify, the `archive_unchanged` check)."""
