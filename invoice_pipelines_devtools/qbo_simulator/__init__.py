"""A local QuickBooks Online simulator: QBO's Accounting API v3 and Intuit's OAuth 2.0 on
http://127.0.0.1:PORT, faithful to ../shared/reference/quickbooks-online.md (limits and faults
included), for tests, benchmarks and the demo. `invoice-pipelines qbo-simulator --port P`.

    with QboSimulator(port=0, time_scale=1.0) as sim:
        company = sim.create_company(realm_id="9130350000000001")
        # API: f"{sim.base_url}/v3/company/{company.realm_id}/customer" with
        # "Authorization: Bearer {company.access_token}"; refresh at sim.token_url with
        # Basic client_id:client_secret; intuit-oauth finds everything at sim.discovery_url.

Served paths: `/.well-known/openid_configuration` (discovery), `/connect/oauth2` (consent, always
granted: 302 to redirect_uri with code, state, realmId), `/oauth2/v1/tokens/bearer`
(authorization_code and refresh_token grants; rotation), `/oauth2/v1/tokens/revoke`,
`/v3/company/{realm}/{customer|item|invoice|creditmemo|payment|vendor|term|account|bill|
vendorcredit|billpayment|attachable}[/{id}]`, `companyinfo/{realm}`, `preferences`, `query`, `cdc`,
`batch`, `upload` (multipart/form-data: file_content_NN parts, each with an optional
file_metadata_NN Attachable) and `download/{id}` (the file's temporary link, as text); the link,
`/attachments/{realm}/{id}/{name}?Expires=&Signature=`, hands out the bytes for 900 s.

Test controls, as methods of `QboSimulator` and over HTTP (JSON bodies; query parameters work too):

    POST   /_sim/companies      {realm_id?, client_id?, client_secret?, name?, tz_offset?,
                                 currency?, custom_txn_numbers?, inactive_names_conflict?,
                                 throttle_xml?, multicurrency?, unique_bill_numbers?} ->
                                 {realm_id, client_id, client_secret, refresh_token,
                                 access_token}
    GET    /_sim/companies
    POST   /_sim/faults         {realm_id, fault, count?, path_contains?, seconds?, xml?}
                                fault: 429 | 500 | 503 | 401 | timeout (held `seconds`, default
                                the request timeout, then the connection closes unanswered,
                                nothing done) | delay (held, then answered) | drop (closed at
                                once, nothing done) | drop_after_commit (done and committed,
                                then closed unanswered). Without path_contains a fault hits the
                                next API calls of the realm; with it, the next requests whose
                                path and query contain the text (token refreshes included).
    DELETE /_sim/faults?realm_id=R
    POST   /_sim/edit           {realm_id, entity, id, changes}: a change "as a QBO user"
                                (sparse update: SyncToken and LastUpdatedTime move)
    POST   /_sim/records        {realm_id, entity, fields}: a record created in QBO's UI
    GET    /_sim/records?realm_id=R&entity=Invoice: everything stored (inactive too)
    GET    /_sim/deleted?realm_id=R&entity=Invoice: ids of hard-deleted records
    POST   /_sim/clock          {advance: seconds} | {freeze: true} | {unfreeze: true}
    GET    /_sim/requests?realm_id=R&limit=N: the request log (status, requestid,
                                minorversion, injected fault, throttled; items the throttle
                                counted and, when it let the request in, metered_at)
    POST   /_sim/config         {realm_id?, per_minute, per_second, concurrent, batch_per_minute,
                                enabled, retry_after, upload_max_bytes, access_ttl,
                                refresh_grace, refresh_idle_ttl, refresh_max_ttl,
                                request_timeout; with realm_id: custom_txn_numbers,
                                inactive_names_conflict, throttle_xml, multicurrency,
                                unique_bill_numbers}
    POST   /_sim/webhooks       {realm_id, url, verifier_token, format: cloudevents|legacy}:
                                every change is POSTed there (loopback only), signed with the
                                intuit-signature header; GET /_sim/webhooks: what was sent
    POST   /_sim/expire-tokens  {realm_id?}: every access token of the realm expires now
    GET    /_sim/stats?realm_id=R: in flight, requests in the last minute and second, throttled
    POST   /_sim/reset          {realm_id?}: forget records, requestids and faults

Time: the simulator's clock runs `time_scale` times faster than real time and `advance` moves it;
token lifetimes, CDC windows, rate-limit windows and held requests all use it.
"""

from invoice_pipelines_devtools.qbo_simulator.api import CompanyHandle
from invoice_pipelines_devtools.qbo_simulator.auth import TokenSettings
from invoice_pipelines_devtools.qbo_simulator.limits import Limits
from invoice_pipelines_devtools.qbo_simulator.process import SimulatorProcess
from invoice_pipelines_devtools.qbo_simulator.server import QboSimulator, SimulatorControl

__all__ = [
    "CompanyHandle",
    "Limits",
    "QboSimulator",
    "SimulatorControl",
    "SimulatorProcess",
    "TokenSettings",
]
