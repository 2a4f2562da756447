from invoice_pipelines.quickbooks.domain.names import qbo_display_name, qbo_item_name


def test_colons_control_characters_and_length():
    assert qbo_display_name("ACME: Berlin") == "ACME - Berlin"
    assert qbo_display_name(" a\t\tb\r\nc\u2028d ") == "a b c d"
    assert qbo_display_name("Plain GmbH & Co. KG") == "Plain GmbH & Co. KG"
    assert qbo_item_name("x" * 99 + " y") == "x" * 99
    assert len(qbo_display_name("n" * 600)) == 500
    assert qbo_display_name(":") == "" and qbo_display_name(" \n ") == ""
    assert qbo_display_name("-Strich-") == "-Strich-"
