// One conformance scenario group through node-quickbooks (API) and intuit-oauth (tokens), both
// from npm and used as their READMEs show; only their base URLs point at the QBO simulator.
//
//   node driver.js <group>   with the world as JSON on stdin  ->  one JSON report on stdout
//
// The world: {api_base, token_url, revoke_url, authorize_url, userinfo_url, control_url,
// realm_id, client_id, client_secret, access_token, refresh_token, since_ms, document_b64}.
// control_url is the
// simulator's /_sim (the test's hand on QBO's clock and faults), never the clients'. The reports
// name what a user of these libraries sees; the Python tests compare them with what QBO does.
'use strict';

const { Readable } = require('stream');
const QuickBooks = require('node-quickbooks');
const OAuthClient = require('intuit-oauth');

function client(world, accessToken) {
  QuickBooks.V3_ENDPOINT_BASE_URL = world.api_base;
  QuickBooks.TOKEN_URL = world.token_url;
  QuickBooks.REVOKE_URL = world.revoke_url;
  return new QuickBooks(
    world.client_id, world.client_secret, accessToken || world.access_token,
    false, // no token secret: OAuth 2.0
    world.realm_id,
    false, // useSandbox (the simulator's URL has no "sandbox-" to strip)
    false, // debug
    75, // minorversion
    '2.0',
    world.refresh_token,
  );
}

function oauth(world) {
  const auth = new OAuthClient({
    clientId: world.client_id,
    clientSecret: world.client_secret,
    environment: 'sandbox',
    redirectUri: 'http://127.0.0.1:9/callback',
  });
  return auth.setAuthorizeURLs({
    authorizeEndpoint: world.authorize_url,
    tokenEndpoint: world.token_url,
    revokeEndpoint: world.revoke_url,
    userInfoEndpoint: world.userinfo_url,
  });
}

// What the library hands its callback on failure, reduced to what a user reads: the HTTP status
// when there is one, and QBO's code and message from either spelling of the fault.
function failure(err) {
  const response = err && err.response;
  const body = response ? response.data : err;
  const fault = body && (body.Fault || body.fault);
  const errors = fault && (fault.Error || fault.error);
  const first = (errors && errors[0]) || {};
  return {
    status: response ? response.status : null,
    code: first.code !== undefined ? String(first.code) : null,
    message: first.Message || first.message || (err && err.message) || String(err),
  };
}

// node-quickbooks' callback style as a promise of {ok, value} | {ok: false, error}
function call(qbo, method, ...args) {
  return new Promise((resolve) => {
    qbo[method](...args, (err, value) => {
      if (err) resolve({ ok: false, error: failure(err) });
      else resolve({ ok: true, value });
    });
  });
}

async function must(qbo, method, ...args) {
  const answer = await call(qbo, method, ...args);
  if (!answer.ok) {
    throw new Error(`${method} failed: ${JSON.stringify(answer.error)}`);
  }
  return answer.value;
}

function outcome(answer) {
  return answer.ok ? 'ok' : answer.error;
}

async function control(world, name, payload) {
  const response = await fetch(`${world.control_url}/${name}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ realm_id: world.realm_id, ...payload }),
  });
  if (!response.ok) throw new Error(`/_sim/${name}: ${response.status} ${await response.text()}`);
  return response.json();
}

async function refreshWith(auth, refreshToken) {
  try {
    const response = await auth.refreshUsingToken(refreshToken);
    return { ok: true, token: response.getJson() };
  } catch (err) {
    const data = (err.authResponse && err.authResponse.json) || (err.response && err.response.data) || {};
    return { ok: false, error: data.error || err.error || err.message };
  }
}

function names(list) {
  return (list || []).map((c) => c.DisplayName).sort();
}

const groups = {
  async queries(world) {
    const qbo = client(world);
    // node-quickbooks writes: select * from customer where DisplayName = '...' startposition 1
    // maxresults 1000 (lower-case entity and keywords, the value's quote escaped with \)
    const found = await must(qbo, 'findCustomers', { DisplayName: 'Kunde 0007' });
    const quoted = await must(qbo, 'findCustomers', { DisplayName: "O'Brien & Söhne" });
    const count = await must(qbo, 'findCustomers', { count: true });
    const countAll = await must(qbo, 'findCustomers', [{ Active: [true, false] }, { count: true }]);
    const all = await must(qbo, 'findCustomers', { fetchAll: true });
    const ordered = await must(qbo, 'findCustomers', [
      { field: 'DisplayName', value: 'Kunde 00%', operator: 'LIKE' },
      { field: 'desc', value: 'DisplayName' },
      { field: 'limit', value: 3 },
    ]);
    const secondPage = await must(qbo, 'findCustomers', { offset: 1001, limit: 1000 });
    const customers = all.QueryResponse.Customer || [];
    return {
      found: names(found.QueryResponse.Customer),
      quoted: names(quoted.QueryResponse.Customer),
      count: count.QueryResponse.totalCount,
      count_with_inactive: countAll.QueryResponse.totalCount,
      all: customers.length,
      all_distinct: new Set(customers.map((c) => c.Id)).size,
      second_page: (secondPage.QueryResponse.Customer || []).length,
      ordered: (ordered.QueryResponse.Customer || []).map((c) => c.DisplayName),
    };
  },

  async crud(world) {
    const qbo = client(world);
    const body = () => ({ DisplayName: 'Conformance GmbH', CompanyName: 'Conformance', requestId: 'crud-create-1' });
    const created = await must(qbo, 'createCustomer', body());
    const replayed = await must(qbo, 'createCustomer', body());
    const updated = await must(qbo, 'updateCustomer', {
      Id: created.Id, SyncToken: created.SyncToken, sparse: true, Notes: 'synced',
    });
    const stale = await call(qbo, 'updateCustomer', {
      Id: created.Id, SyncToken: created.SyncToken, sparse: true, Notes: 'too late',
    });
    const duplicate = await call(qbo, 'createCustomer', { DisplayName: 'Conformance GmbH' });
    const unknown = await call(qbo, 'getCustomer', '999999');
    const stored = await must(qbo, 'getCustomer', created.Id);
    return {
      created: { SyncToken: created.SyncToken },
      replayed_same_id: replayed.Id === created.Id,
      updated: { SyncToken: updated.SyncToken, Notes: updated.Notes, CompanyName: updated.CompanyName },
      stale: outcome(stale),
      duplicate: outcome(duplicate),
      unknown: outcome(unknown),
      stored: { SyncToken: stored.SyncToken, Notes: stored.Notes },
    };
  },

  async batch(world) {
    const qbo = client(world);
    await must(qbo, 'createCustomer', { DisplayName: 'Batch Existing' });
    const answer = await call(qbo, 'batch', [
      { bId: '1', operation: 'create', Customer: { DisplayName: 'Batch A' } },
      { bId: '2', operation: 'create', Customer: { DisplayName: 'Batch Existing' } },
      { bId: '3', operation: 'create', Customer: { DisplayName: 'Batch B' } },
    ]);
    if (!answer.ok) return { batch: answer.error };
    const sent = { 1: 'Batch A', 2: 'Batch Existing', 3: 'Batch B' };
    const items = {};
    for (const item of answer.value.BatchItemResponse) {
      items[sent[item.bId]] = item.Fault ? failure(item).code : 'created';
    }
    return { items };
  },

  async cdc(world) {
    const qbo = client(world);
    const customer = await must(qbo, 'createCustomer', { DisplayName: 'CDC Kunde' });
    const item = await must(qbo, 'createItem', {
      Name: 'CDC Item', Type: 'Service', UnitPrice: 10, IncomeAccountRef: { value: '1' },
    });
    const invoice = (docNumber) => must(qbo, 'createInvoice', {
      CustomerRef: { value: customer.Id },
      DocNumber: docNumber,
      Line: [{ Amount: 10, DetailType: 'SalesItemLineDetail', SalesItemLineDetail: { ItemRef: { value: item.Id }, Qty: 1, UnitPrice: 10 } }],
    });
    await invoice('CDC-1');
    const doomed = await invoice('CDC-2');
    // by id: the library reads the invoice and posts it whole with ?operation=delete
    const deleted = await must(qbo, 'deleteInvoice', doomed.Id);
    // a Date, formatted by the library (date-fns formatISO)
    const changes = await must(qbo, 'changeDataCapture', ['Customer', 'Invoice'], new Date(world.since_ms));
    const found = { Customer: [], Invoice: [] };
    for (const response of changes.CDCResponse[0].QueryResponse) {
      for (const entity of Object.keys(found)) found[entity].push(...(response[entity] || []));
    }
    const invoices = found.Invoice.filter((i) => i.status !== 'Deleted');
    return {
      delete_status: deleted.Invoice && deleted.Invoice.status,
      customers: names(found.Customer),
      invoices: invoices.map((i) => i.DocNumber).sort(),
      deleted: found.Invoice.filter((i) => i.status === 'Deleted').map((i) => i.Id === doomed.Id ? 'CDC-2' : i.Id),
    };
  },

  async payments(world) {
    const qbo = client(world);
    const customer = await must(qbo, 'createCustomer', { DisplayName: 'Zahler AG' });
    const item = await must(qbo, 'createItem', {
      Name: 'Beratung', Type: 'Service', UnitPrice: 100, IncomeAccountRef: { value: '1' },
    });
    const line = (qty, price) => ({
      Amount: qty * price,
      DetailType: 'SalesItemLineDetail',
      SalesItemLineDetail: { ItemRef: { value: item.Id }, Qty: qty, UnitPrice: price },
    });
    const invoice = await must(qbo, 'createInvoice', {
      CustomerRef: { value: customer.Id }, DocNumber: 'PAY-1', Line: [line(3, 100), line(1, 50.5)],
    });
    const pay = (amount) => must(qbo, 'createPayment', {
      CustomerRef: { value: customer.Id },
      TotalAmt: amount,
      Line: [{ Amount: amount, LinkedTxn: [{ TxnId: invoice.Id, TxnType: 'Invoice' }] }],
    });
    await pay(100);
    const afterFirst = await must(qbo, 'getInvoice', invoice.Id);
    const second = await pay(250.5);
    const afterSecond = await must(qbo, 'getInvoice', invoice.Id);
    const other = await must(qbo, 'createInvoice', {
      CustomerRef: { value: customer.Id }, DocNumber: 'PAY-2', Line: [line(1, 120)],
    });
    await must(qbo, 'voidInvoice', other.Id); // read, then posted whole with ?operation=void
    const voided = await must(qbo, 'getInvoice', other.Id);
    return {
      total: invoice.TotalAmt,
      balance: invoice.Balance,
      balance_after_first: afterFirst.Balance,
      balance_after_second: afterSecond.Balance,
      second_unapplied: second.UnappliedAmt,
      linked_payments: (afterSecond.LinkedTxn || []).filter((t) => t.TxnType === 'Payment').length,
      voided: { TotalAmt: voided.TotalAmt, Balance: voided.Balance, PrivateNote: voided.PrivateNote || '' },
    };
  },

  async payables(world) {
    const qbo = client(world);
    const vendor = await must(qbo, 'createVendor', { DisplayName: 'Lieferant Schulz' });
    await must(qbo, 'createCustomer', { DisplayName: 'Kunde und Lieferant' });
    const duplicate = await call(qbo, 'createVendor', { DisplayName: 'Kunde und Lieferant' });
    const expense = await must(qbo, 'findAccounts', { AccountType: 'Expense', Name: 'Office Expenses' });
    const bank = await must(qbo, 'findAccounts', { AccountType: 'Bank' });
    const office = expense.QueryResponse.Account[0].Id;
    const line = (amount) => ({
      Amount: amount,
      DetailType: 'AccountBasedExpenseLineDetail',
      AccountBasedExpenseLineDetail: { AccountRef: { value: office } },
    });
    const bill = await must(qbo, 'createBill', {
      VendorRef: { value: vendor.Id }, DocNumber: 'RE-1', TxnDate: '2026-11-02', Line: [line(300), line(50.5)],
    });
    const noVendor = await call(qbo, 'createBill', { Line: [line(1)] });
    // upload(filename, contentType, stream, entityType, entityId): the file, then the link
    const bytes = Buffer.from(world.document_b64, 'base64');
    const attachable = await must(qbo, 'upload', 'RE-1.pdf', 'application/pdf', Readable.from([bytes]), 'Bill', bill.Id);
    const downloaded = Buffer.from(await (await fetch(attachable.TempDownloadUri)).arrayBuffer());
    const note = await must(qbo, 'createAttachable', {
      Note: 'Skonto 2 % bis 12.11.', AttachableRef: [{ EntityRef: { type: 'Bill', value: bill.Id } }],
    });
    const linked = await must(qbo, 'getAttachable', attachable.Id);
    const credit = await must(qbo, 'createVendorCredit', {
      VendorRef: { value: vendor.Id }, Line: [line(20)],
    });
    await must(qbo, 'createBillPayment', {
      VendorRef: { value: vendor.Id },
      PayType: 'Check',
      CheckPayment: { BankAccountRef: { value: bank.QueryResponse.Account[0].Id } },
      TotalAmt: 330.5,
      Line: [
        { Amount: 350.5, LinkedTxn: [{ TxnId: bill.Id, TxnType: 'Bill' }] },
        { Amount: 20, LinkedTxn: [{ TxnId: credit.Id, TxnType: 'VendorCredit' }] },
      ],
    });
    const paid = await must(qbo, 'getBill', bill.Id);
    const taken = await must(qbo, 'getVendorCredit', credit.Id);
    const found = await must(qbo, 'findBills', { DocNumber: 'RE-1' });
    return {
      vendor: { DisplayName: vendor.DisplayName, SyncToken: vendor.SyncToken },
      duplicate_vendor: outcome(duplicate),
      bill: { TotalAmt: bill.TotalAmt, Balance: bill.Balance, DocNumber: bill.DocNumber },
      no_vendor: outcome(noVendor),
      attachable: {
        FileName: linked.FileName,
        ContentType: linked.ContentType,
        Size: linked.Size,
        linked_to_bill: (linked.AttachableRef || []).some((r) => r.EntityRef.type === 'Bill' && r.EntityRef.value === bill.Id),
      },
      downloaded_same: downloaded.equals(bytes),
      note: note.Note,
      credit: { TotalAmt: credit.TotalAmt, Balance: taken.Balance },
      balance_after_payment: paid.Balance,
      bill_payments: (paid.LinkedTxn || []).filter((t) => t.TxnType.startsWith('BillPayment')).length,
      found_bills: (found.QueryResponse.Bill || []).length,
    };
  },

  async tokens(world) {
    const auth = oauth(world);
    let qbo = client(world);
    const first = await call(qbo, 'getCompanyInfo', world.realm_id);
    await control(world, 'clock', { advance: 3601 }); // the access token's hour is over
    const expired = await call(qbo, 'getCompanyInfo', world.realm_id);
    const refreshed = await refreshWith(auth, world.refresh_token);
    if (!refreshed.ok) return { first: outcome(first), expired: outcome(expired), refresh: refreshed.error };
    qbo = client(world, refreshed.token.access_token);
    const afterRefresh = await call(qbo, 'getCompanyInfo', world.realm_id);
    await control(world, 'clock', { advance: 25 * 3600 }); // past the superseded token's grace
    const old = await refreshWith(auth, world.refresh_token);
    const current = await refreshWith(auth, refreshed.token.refresh_token);
    return {
      first: outcome(first),
      expired: outcome(expired),
      rotated: refreshed.token.refresh_token !== world.refresh_token,
      after_refresh: outcome(afterRefresh),
      old_refresh_token: old.ok ? 'ok' : old.error,
      current_refresh_token: current.ok ? 'ok' : current.error,
      rotated_again: current.ok && current.token.refresh_token !== refreshed.token.refresh_token,
    };
  },

  async throttling(world) {
    const qbo = client(world);
    const info = () => call(qbo, 'getCompanyInfo', world.realm_id);
    const burst = [];
    for (let n = 0; n < 11; n += 1) burst.push(outcome(await info())); // in one (frozen) second
    await control(world, 'clock', { advance: 1 });
    const afterWait = outcome(await info());
    const faults = {};
    for (const fault of ['429', '500', '503']) {
      await control(world, 'faults', { fault, count: 1 });
      faults[fault] = outcome(await info());
      faults[`after_${fault}`] = outcome(await info());
    }
    return { burst, after_wait: afterWait, ...faults };
  },
};

async function main() {
  const group = process.argv[2];
  if (!groups[group]) throw new Error(`unknown group ${group}; one of ${Object.keys(groups).join(', ')}`);
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const report = await groups[group](JSON.parse(input));
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
