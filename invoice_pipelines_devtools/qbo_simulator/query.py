"""QBO's query language, the subset QBO itself has: one entity, AND-only WHERE with = < > <= >= IN
LIKE, ORDER BY / ORDERBY, STARTPOSITION (1-based), MAXRESULTS (default 100, at most 1000), and
SELECT * | COUNT(*) | field list. Keywords and entity names are matched in any case (clients send
`select * from customer`, `startPosition`, `select count(*) from creditMemo`); an entity QBO has but
the simulator does not keep (Estimate, Purchase, ...) answers as in a company that has none. A
field inside a list matches when one of its values does (`AttachableRef.EntityRef.value`).
Inactive name-list records are left out unless the query filters on Active, as in QBO."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timezone
from decimal import Decimal
from typing import Any

from invoice_pipelines_devtools.qbo_simulator import wire
from invoice_pipelines_devtools.qbo_simulator.company import ENTITIES, NAME_LISTS, Company

MAX_RESULTS = 1000
DEFAULT_RESULTS = 100

# What QBO answers queries on (its API reference's entity list, as python-quickbooks, node-quickbooks
# and Intuit's SDKs name them); the simulator keeps records of company.ENTITIES only
QBO_ENTITIES = (
    "Account",
    "Attachable",
    "Bill",
    "BillPayment",
    "Budget",
    "Class",
    "CompanyCurrency",
    "CompanyInfo",
    "CreditCardPayment",
    "CreditMemo",
    "Customer",
    "CustomerType",
    "Department",
    "Deposit",
    "Employee",
    "Estimate",
    "ExchangeRate",
    "Invoice",
    "Item",
    "JournalCode",
    "JournalEntry",
    "Payment",
    "PaymentMethod",
    "Preferences",
    "Purchase",
    "PurchaseOrder",
    "RecurringTransaction",
    "RefundReceipt",
    "ReimburseCharge",
    "SalesReceipt",
    "TaxAgency",
    "TaxCode",
    "TaxPayment",
    "TaxRate",
    "Term",
    "TimeActivity",
    "Transfer",
    "Vendor",
    "VendorCredit",
)
# change data capture covers these, not TimeActivity, TaxAgency, TaxCode or TaxRate (Intuit's CDC
# page, as singer-io/tap-quickbooks lists them)
CDC_ENTITIES = (
    "Account",
    "Bill",
    "BillPayment",
    "Budget",
    "Class",
    "CreditMemo",
    "Customer",
    "Department",
    "Deposit",
    "Employee",
    "Estimate",
    "Invoice",
    "Item",
    "JournalEntry",
    "Payment",
    "PaymentMethod",
    "Purchase",
    "PurchaseOrder",
    "RefundReceipt",
    "SalesReceipt",
    "Term",
    "Transfer",
    "Vendor",
    "VendorCredit",
)
_CANONICAL = {name.lower(): name for name in (*QBO_ENTITIES, *ENTITIES)}

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>'(?:[^'\\]|\\.)*')
    | (?P<num>-?\d+(?:\.\d+)?)(?![A-Za-z_])
    | (?P<op><=|>=|!=|<>|=|<|>)
    | (?P<punct>[(),*])
    | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.X,
)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


@dataclass
class Token:
    kind: str
    text: str
    column: int


@dataclass
class Condition:
    field: str
    op: str
    values: list[Any]


@dataclass
class Query:
    entity: str
    count: bool = False
    fields: list[str] | None = None  # None: every field
    where: list[Condition] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)
    start: int = 1
    max_results: int = DEFAULT_RESULTS


def _tokens(text: str) -> list[Token]:
    out, pos = [], 0
    text = text.rstrip().rstrip(";")
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            stripped = len(text) - len(text[pos:].lstrip())
            raise wire.query_parse_error(
                f'Encountered " "{text[stripped]}" "" at line 1, column {stripped + 1}.'
            )
        kind = match.lastgroup or ""
        start = match.start(kind)
        out.append(Token(kind, match.group(kind), start + 1))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise wire.query_parse_error('Encountered "<EOF>" at line 1.')
        self.pos += 1
        return token

    def fail(self, token: Token | None):
        if token is None:
            raise wire.query_parse_error('Encountered "<EOF>" at line 1.')
        raise wire.query_parse_error(
            f'Encountered " "{token.text}" "" at line 1, column {token.column}.'
        )

    def keyword(self, *words: str) -> str | None:
        token = self.peek()
        if token is not None and token.kind == "word" and token.text.lower() in words:
            self.pos += 1
            return token.text.lower()
        return None

    def expect_keyword(self, *words: str) -> str:
        word = self.keyword(*words)
        if word is None:
            self.fail(self.peek())
        return word

    def punct(self, char: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "punct" and token.text == char:
            self.pos += 1
            return True
        return False

    def value(self) -> Any:
        token = self.take()
        if token.kind == "str":
            return token.text[1:-1].replace("\\'", "'").replace("\\\\", "\\")
        if token.kind == "num":
            return Decimal(token.text)
        if token.kind == "word" and token.text.lower() in ("true", "false"):
            return token.text.lower() == "true"
        self.fail(token)

    def integer(self) -> int:
        token = self.take()
        if token.kind != "num" or "." in token.text:
            self.fail(token)
        return int(token.text)

    def parse(self) -> Query:
        self.expect_keyword("select")
        count, fields = False, None
        if self.keyword("count"):
            if not (self.punct("(") and self.punct("*") and self.punct(")")):
                self.fail(self.peek())
            count = True
        else:
            names: list[str] = []
            while True:
                if self.punct("*"):
                    names.append("*")
                else:
                    token = self.take()
                    if token.kind != "word" or token.text.lower() == "from":
                        self.fail(token)
                    names.append(token.text)
                if not self.punct(","):
                    break
            fields = None if "*" in names else names
        self.expect_keyword("from")
        entity_token = self.take()
        if entity_token.kind != "word":
            self.fail(entity_token)
        entity = entity_name(entity_token.text)
        if entity is None:
            raise wire.query_validation_error(f"Metadata not found for Entity: {entity_token.text}")
        query = Query(entity=entity, count=count, fields=fields)
        if self.keyword("where"):
            while True:
                query.where.append(self.condition())
                if not self.keyword("and"):
                    break
        word = self.keyword("order", "orderby")
        if word == "order":
            self.expect_keyword("by")
        if word:
            self._order(query)
        while self.peek() is not None:
            word = self.keyword("startposition", "maxresults")
            if word is None:
                self.fail(self.peek())
            number = self.integer()
            if word == "startposition":
                query.start = max(1, number)
            else:
                if number > MAX_RESULTS:
                    raise wire.query_validation_error(
                        f"value {number} is too large. Max allowed value is {MAX_RESULTS}"
                    )
                query.max_results = max(0, number)
        return query

    def _order(self, query: Query) -> None:
        while True:
            token = self.take()
            if token.kind != "word":
                self.fail(token)
            descending = self.keyword("asc", "desc") == "desc"
            query.order.append((token.text, descending))
            if not self.punct(","):
                break

    def condition(self) -> Condition:
        token = self.take()
        if token.kind != "word":
            self.fail(token)
        name = token.text
        if self.keyword("in"):
            if not self.punct("("):
                self.fail(self.peek())
            values = [self.value()]
            while self.punct(","):
                values.append(self.value())
            if not self.punct(")"):
                self.fail(self.peek())
            return Condition(name, "in", values)
        if self.keyword("like"):
            value = self.value()
            if not isinstance(value, str):
                raise wire.query_parse_error(f"LIKE needs a quoted string after {name}.")
            return Condition(name, "like", [value])
        op = self.take()
        if op.kind != "op" or op.text in ("!=", "<>"):
            self.fail(op)
        return Condition(name, op.text, [self.value()])


def entity_name(text: str) -> str | None:
    """QBO's spelling of an entity named in any case (`customer`, `creditMemo`), None if unknown."""
    return _CANONICAL.get(text.lower())


def cdc_entity(text: str) -> str:
    """An entity of a CDC request (any case) in QBO's spelling, or QBO's 400 for one CDC does not
    cover."""
    name = entity_name(text.strip())
    if name is None or name not in CDC_ENTITIES:
        raise wire.invalid_value(
            "entities", f"{text.strip()} is not supported by change data capture"
        )
    return name


def parse(text: str) -> Query:
    if not text or not text.strip():
        raise wire.query_parse_error('Encountered "<EOF>" at line 1, column 1.')
    return _Parser(text).parse()


def lookup_all(record: dict, path: str) -> list[Any]:
    """Every value of a dotted field, matched case-insensitively at each step
    (`Metadata.LastUpdatedTime`), through lists too (`AttachableRef.EntityRef.Type` names one per
    reference); a reference (`CustomerRef`) compares by its value."""
    values: list[Any] = [record]
    for part in path.split("."):
        found = []
        for value in values:
            for item in value if isinstance(value, list) else [value]:
                if not isinstance(item, dict):
                    continue
                if part in item:
                    found.append(item[part])
                    continue
                lowered = part.lower()
                found.extend([v for k, v in item.items() if k.lower() == lowered][:1])
        values = found
    out = []
    for value in values:
        for item in value if isinstance(value, list) else [value]:
            out.append(item["value"] if isinstance(item, dict) and "value" in item else item)
    return out


def lookup(record: dict, path: str) -> Any:
    """The first value of a dotted field (see lookup_all), None when it has none."""
    values = lookup_all(record, path)
    return values[0] if values else None


def _comparable(stored: Any, literal: Any, tz: timezone) -> tuple[Any, Any] | None:
    if stored is None:
        return None
    if isinstance(literal, bool):
        if isinstance(stored, bool):
            return stored, literal
        return str(stored).lower() == "true", literal
    if isinstance(literal, Decimal):
        number = wire.to_decimal(stored)
        return None if number is None else (number, literal)
    text = str(stored)
    if isinstance(stored, str) and _ISO_DATE.match(text) and _ISO_DATE.match(literal):
        left, right = wire.parse_instant(text, tz), wire.parse_instant(literal, tz)
        if left is not None and right is not None:
            return left, right
    number = wire.to_decimal(stored) if not isinstance(stored, str) else None
    if number is not None:
        other = wire.to_decimal(literal)
        if other is not None:
            return number, other
    return text.casefold(), str(literal).casefold()


def _like(stored: Any, pattern: str) -> bool:
    if stored is None:
        return False
    regex = ".*".join(re.escape(part) for part in pattern.split("%"))
    return re.fullmatch(regex, str(stored), re.I | re.S) is not None


def _matches(record: dict, condition: Condition, tz: timezone) -> bool:
    """Whether the field (any of its values, for a field in a list) meets the condition."""
    return any(_meets(stored, condition, tz) for stored in lookup_all(record, condition.field))


def _meets(stored: Any, condition: Condition, tz: timezone) -> bool:
    if condition.op == "like":
        return _like(stored, condition.values[0])
    if condition.op == "in":
        for value in condition.values:
            pair = _comparable(stored, value, tz)
            if pair is not None and pair[0] == pair[1]:
                return True
        return False
    pair = _comparable(stored, condition.values[0], tz)
    if pair is None:
        return False
    left, right = pair
    try:
        return {
            "=": left == right,
            "<": left < right,
            ">": left > right,
            "<=": left <= right,
            ">=": left >= right,
        }[condition.op]
    except TypeError:
        return False


def _sort_key(record: dict, name: str, tz: timezone):
    value = lookup(record, name)
    if value is None:
        return (1, 0, 0, "")
    if isinstance(value, bool):
        return (0, 0, int(value), "")
    if isinstance(value, int | Decimal):
        return (0, 0, value, "")
    text = str(value)
    if text.isdigit():
        return (0, 0, int(text), "")
    if _ISO_DATE.match(text):
        instant = wire.parse_instant(text, tz)
        if instant is not None:
            return (0, 0, instant, "")
    return (0, 1, 0, text.casefold())


def run(company: Company, text: str, hidden: set[tuple[str, str]] | None = None) -> dict:
    """The `QueryResponse` object of one query."""
    query = parse(text)
    records = [
        company.render(r)
        for r in company.records.get(query.entity, {}).values()
        if not hidden or (query.entity, r.id) not in hidden
    ]
    conditions = list(query.where)
    if query.entity in NAME_LISTS and not any(c.field.lower() == "active" for c in conditions):
        conditions.append(Condition("Active", "=", [True]))
    records = [r for r in records if all(_matches(r, c, company.tz) for c in conditions)]
    if query.count:
        return {"totalCount": len(records)}
    records.sort(key=lambda r: _sort_key(r, "Id", company.tz))
    for name, descending in reversed(query.order):
        records.sort(key=lambda r, n=name: _sort_key(r, n, company.tz), reverse=descending)
    page = records[query.start - 1 : query.start - 1 + query.max_results]
    if not page:
        return {}
    if query.fields is not None:
        keep = ("Id", "SyncToken", "domain", "MetaData")
        wanted = {f.split(".")[0].lower() for f in query.fields}
        page = [
            {
                **{k: r[k] for k in keep if k in r},
                **{k: v for k, v in r.items() if k.lower() in wanted},
                "sparse": True,
            }
            for r in page
        ]
    return {query.entity: page, "startPosition": query.start, "maxResults": len(page)}
