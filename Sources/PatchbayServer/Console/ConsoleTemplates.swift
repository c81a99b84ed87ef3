import Foundation
import Mustache
import PatchbayTargets

/// The console's pages: Mustache templates compiled into the binary. Every `{{value}}` is
/// HTML-escaped; the only unescaped output (`{{{...}}}`) is HTML and SVG this server built itself.
enum ConsoleTemplates {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        // Every page escapes with Patchbay's HTML escaper, which works by Unicode scalar (the
        // library's own lets a quote followed by a combining mark through).
        let pragma = TemplateEscaping.html.pragma()
        for (name, text) in pages {
            // A template that does not parse is a programming error caught by the route tests.
            if let template = try? MustacheTemplate(string: pragma + text) { library.register(template, named: name) }
        }
        return library
    }()

    static let pages: [String: String] = [
        "layout": """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · Patchbay</title>
        <link rel="stylesheet" href="/console/assets/console.css">
        <script src="/console/assets/console.js" defer></script>
        {{#refreshTo}}<meta http-equiv="refresh" content="0; url={{refreshTo}}">{{/refreshTo}}
        </head>
        <body{{#refresh}} data-refresh="{{refresh}}"{{/refresh}}>
        {{#signedIn}}
        <header>
          <nav aria-label="Console">
            <a id="nav-maintenances" href="/console">Maintenances</a>
            <a id="nav-deliveries" href="/console/deliveries">Deliveries</a>
            <a id="nav-targets" href="/console/targets">Targets</a>
            {{#isAdmin}}<a id="nav-audit" href="/console/audit">Audit</a>{{/isAdmin}}
          </nav>
          <form method="post" action="/console/sign-out" class="sign-out">
            <input type="hidden" name="csrf" value="{{csrf}}">
            <span id="signed-in-as">{{signedInAs}}</span> <span class="muted">{{role}}</span>
            <button id="sign-out" type="submit" class="secondary">Sign out</button>
          </form>
        </header>
        {{/signedIn}}
        <main>
        {{#flash}}<p class="flash" role="status">{{flash}}</p>{{/flash}}
        {{{body}}}
        </main>
        </body>
        </html>
        """,
        "sign-in": """
        <div class="sign-in">
        <h1>Patchbay console</h1>
        {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
        {{#oidc}}<p><a id="oidc-sign-in" class="button" href="/console/oidc/start">Sign in with your identity provider</a></p>{{/oidc}}
        {{#tokens}}
        <form method="post" action="/console/sign-in" class="stack">
          <input type="hidden" name="csrf" value="{{csrf}}">
          <label for="token">Admin or viewer token</label>
          <input id="token" name="token" type="password" autocomplete="current-password" required{{^oidc}} autofocus{{/oidc}}>
          <button id="sign-in" type="submit">Sign in</button>
        </form>
        <p class="muted">Tokens are <code>server.adminTokens</code> and <code>server.viewerTokens</code>. The session lasts {{ttl}}.</p>
        {{/tokens}}
        </div>
        """,
        "signed-in": """
        <div class="sign-in">
        <h1>Signed in</h1>
        <p>Signed in as <strong id="signed-in-name">{{name}}</strong> ({{role}}). <a id="continue" href="/console">Continue to the console</a></p>
        </div>
        """,
        "audit": """
        <h1>Audit trail</h1>
        <form method="get" action="/console/audit" class="filters">
          <label for="since">Since</label>
          <select id="since" name="since">{{#sinceOptions}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/sinceOptions}}</select>
          <label for="action">Action</label>
          <select id="action" name="action"><option value="">any</option>{{#actions}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{value}}</option>{{/actions}}</select>
          <button type="submit" class="secondary">Show</button>
        </form>
        <div class="table-scroll">
        <table>
          <thead><tr><th>Time (UTC)</th><th>Who</th><th title="The identity provider's subject, or the token's name: names can be edited, these cannot">ID</th><th>How</th><th>Action</th><th>Outcome</th><th>From</th><th>Detail</th></tr></thead>
          <tbody>
          {{#records}}
          <tr class="audit" data-action="{{action}}" data-outcome="{{outcome}}">
            <td class="utc">{{at}}</td><td class="actor">{{actor}}</td><td class="actor-id">{{actorID}}</td><td>{{method}}</td><td>{{action}}</td>
            <td class="state-{{outcomeClass}}">{{outcome}}</td><td>{{source}}</td><td>{{detail}}</td>
          </tr>
          {{/records}}
          {{^records}}<tr><td colspan="8" class="muted">Nothing recorded in this period.</td></tr>{{/records}}
          </tbody>
        </table>
        </div>
        <p class="muted">Kept for <code>store.retention.audit</code> (365 days by default). Also <code>GET /v1/audit</code> and <code>patchbay audit list</code>.</p>
        """,
        "maintenances": """
        <h1>Maintenances</h1>
        {{#groups}}
        <h2>{{name}} <span class="muted">({{count}})</span></h2>
        <div class="table-scroll">
        <table>
          <thead><tr><th scope="col">Maintenance</th><th scope="col">Window</th><th scope="col">Servers</th><th scope="col" class="optional">Targets</th></tr></thead>
          <tbody>
          {{#rows}}
          <tr class="maintenance" data-window="{{windowKey}}" data-id="{{id}}">
            <td><a class="maintenance-link" href="/console/maintenances/{{id}}">{{system}}</a>
              {{#dead}}<span class="dead-mark" title="{{dead}} dead deliveries">● {{dead}} dead</span>{{/dead}}
              {{#cancelled}}<span class="muted">cancelled</span>{{/cancelled}}
              <span class="utc">{{windowKey}}</span></td>
            <td>{{windowLocal}}<span class="utc">{{windowUTC}}</span></td>
            <td>{{{progress}}}<span class="muted">{{progressText}}</span></td>
            <td class="optional">{{#targets}}<div>{{name}}: {{#link}}<a href="{{link}}" rel="noreferrer">{{state}}</a>{{/link}}{{^link}}{{state}}{{/link}}</div>{{/targets}}
              {{#notices}}<div class="muted">notices: {{notices}}</div>{{/notices}}</td>
          </tr>
          {{/rows}}
          </tbody>
        </table>
        </div>
        {{/groups}}
        {{^groups}}<p class="muted">No maintenances in the last {{days}} days.</p>{{/groups}}
        """,
        "maintenance": """
        <h1>{{system}}</h1>
        <dl class="facts">
          <dt>Window</dt><dd>{{windowLocal}} <span class="utc">{{windowUTC}}</span></dd>
          <dt>Window id</dt><dd>{{windowKey}}</dd>
          <dt>Status</dt><dd>{{status}}</dd>
          <dt>Servers</dt><dd>{{{progress}}} {{progressText}}</dd>
        </dl>
        <h2>Timeline</h2>
        {{{timeline}}}
        <h2>Servers</h2>
        <p class="muted">{{serversShown}}</p>
        <div class="table-scroll"><table>
          <thead><tr><th scope="col">Server</th><th scope="col">Stage</th><th scope="col">Packages</th><th scope="col" class="optional">Updated (UTC)</th></tr></thead>
          <tbody>{{#instances}}<tr><td>{{name}}</td><td>{{stage}}</td><td>{{packages}}</td><td class="optional">{{updated}}</td></tr>{{/instances}}</tbody>
        </table></div>
        <nav aria-label="Server pages">{{#previousServers}}<a id="previous-servers" href="{{previousServers}}">Earlier servers</a> {{/previousServers}}{{#nextServers}}<a id="next-servers" href="{{nextServers}}">More servers</a>{{/nextServers}}</nav>
        <h2>Vendor objects</h2>
        {{#vendorObjects}}<div class="card">{{target}}: {{status}} {{#objectID}}<span class="muted">({{objectID}})</span>{{/objectID}} {{#link}}<a href="{{link}}" rel="noreferrer">{{link}}</a>{{/link}}</div>{{/vendorObjects}}
        {{^vendorObjects}}<p class="muted">None yet.</p>{{/vendorObjects}}
        <h2>Planned notices</h2>
        <div class="table-scroll"><table>
          <thead><tr><th scope="col">Notice</th><th scope="col">Due</th><th scope="col">State</th></tr></thead>
          <tbody>{{#notices}}<tr><td>{{notice}}</td><td>{{due}}<span class="utc">{{dueUTC}}</span></td><td>{{state}} {{#reason}}<span class="muted">{{reason}}</span>{{/reason}}</td></tr>{{/notices}}</tbody>
        </table></div>
        <h2>Deliveries</h2>
        <p class="muted">{{deliveriesShown}}, newest first</p>
        {{> delivery-table}}
        <nav aria-label="Delivery pages">{{#previousDeliveries}}<a id="newer-deliveries" href="{{previousDeliveries}}">Newer</a> {{/previousDeliveries}}{{#nextDeliveries}}<a id="older-deliveries" href="{{nextDeliveries}}">Older</a>{{/nextDeliveries}}</nav>
        """,
        "delivery-table": """
        <div class="table-scroll"><table>
          <thead><tr>{{#canChange}}<th scope="col"><span class="muted">Select</span></th>{{/canChange}}<th scope="col">Delivery</th><th scope="col">Target</th><th scope="col">Event</th><th scope="col">State</th><th scope="col" class="optional">Attempts</th><th scope="col" class="optional">Updated (UTC)</th></tr></thead>
          <tbody>
          {{#deliveries}}
          <tr class="delivery" data-state="{{state}}" data-target="{{target}}">
            {{#canChange}}<td><input class="select-delivery" type="checkbox" name="ids" value="{{id}}" form="replay-selected" aria-label="Select {{id}}"></td>{{/canChange}}
            <td><a class="delivery-link" href="/console/deliveries/{{id}}">{{id}}</a></td>
            <td>{{target}}</td><td>{{eventType}} <span class="utc">{{app}} - {{environment}}</span> <span class="muted sender">from {{sender}}</span></td>
            <td class="state-{{state}}">{{state}}{{#reason}} <span class="muted">{{reason}}</span>{{/reason}}</td>
            <td class="optional">{{attempts}}</td><td class="optional">{{updated}}</td>
          </tr>
          {{/deliveries}}
          </tbody>
        </table></div>
        """,
        "deliveries": """
        <h1>Deliveries</h1>
        <form method="get" action="/console/deliveries" class="filters">
          <label for="state">State<select id="state" name="state">
            <option value="">any</option>
            {{#states}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{value}}</option>{{/states}}
          </select></label>
          <label for="target">Target<input id="target" name="target" value="{{target}}"></label>
          <label for="app">App<input id="app" name="app" value="{{app}}"></label>
          <label for="since">Since<input id="since" name="since" value="{{since}}" placeholder="24h"></label>
          <button id="filter" type="submit">Filter</button>
        </form>
        {{#canChange}}
        <form id="replay-selected" method="post" action="/console/deliveries/replay">
          <input type="hidden" name="csrf" value="{{csrf}}">
          <button id="preview-selected" type="submit">Preview replay of the selected</button>
        </form>
        {{/canChange}}
        {{> delivery-table}}
        {{^deliveries}}<p class="muted">No delivery matches.</p>{{/deliveries}}
        <nav aria-label="Pages">{{#previous}}<a id="previous-page" href="{{previous}}">Newer</a> {{/previous}}{{#next}}<a id="next-page" href="{{next}}">Older</a>{{/next}}</nav>
        """,
        "delivery": """
        <h1>Delivery {{id}}</h1>
        <dl class="facts">
          <dt>State</dt><dd class="state-{{state}}">{{state}}{{#reason}} — {{reason}}{{/reason}}</dd>
          <dt>Target</dt><dd>{{target}} ({{targetKind}})</dd>
          <dt>Event</dt><dd>{{eventType}}, {{app}} - {{environment}} <span class="utc">{{eventID}}</span></dd>
          <dt>Created</dt><dd>{{created}}</dd>
          {{#maintenanceID}}<dt>Maintenance</dt><dd><a href="/console/maintenances/{{maintenanceID}}">{{maintenanceID}}</a></dd>{{/maintenanceID}}
        </dl>
        {{#canChange}}
        <form method="post" action="/console/deliveries/replay">
          <input type="hidden" name="csrf" value="{{csrf}}">
          <input type="hidden" name="ids" value="{{id}}">
          <button id="preview-replay" type="submit">Preview replay</button>
        </form>
        {{/canChange}}
        <h2>Request as it would be sent now</h2>
        <pre class="request">{{request}}</pre>
        <h2>Attempts</h2>
        <div class="table-scroll"><table class="attempts">
          <thead><tr><th scope="col">#</th><th scope="col">Started (UTC)</th><th scope="col">Outcome</th><th scope="col">Status</th><th scope="col" class="optional">Latency</th><th scope="col">Detail</th></tr></thead>
          <tbody>{{#attempts}}<tr><td>{{number}}</td><td>{{started}}</td><td>{{outcome}}</td><td>{{status}}</td><td class="optional">{{latency}}</td><td>{{detail}}</td></tr>{{/attempts}}</tbody>
        </table></div>
        """,
        "replay-preview": """
        <h1>Replay {{count}} {{noun}}?</h1>
        {{#items}}
        <div class="card">
          <p><a href="/console/deliveries/{{id}}">{{id}}</a> to {{target}}: <strong>{{verdict}}</strong></p>
          <pre class="request">{{request}}</pre>
        </div>
        {{/items}}
        {{#replayable}}
        <form method="post" action="/console/deliveries/replay" data-confirm="Send these deliveries again?">
          <input type="hidden" name="csrf" value="{{csrf}}">
          <input type="hidden" name="confirm" value="1">
          {{#items}}<input type="hidden" name="ids" value="{{id}}">{{/items}}
          <button id="confirm-replay" type="submit">Replay now</button>
        </form>
        {{/replayable}}
        {{^replayable}}<p class="muted">Nothing here can be replayed now (pending or in flight already).</p>{{/replayable}}
        """,
        "targets": """
        <h1>Targets</h1>
        <div class="table-scroll"><table>
          <thead><tr><th scope="col">Target</th><th scope="col">Last hour</th><th scope="col">Last error</th><th scope="col" class="optional">Paused until (UTC)</th><th scope="col" class="optional">Pacing</th>{{#canChange}}<th scope="col">Test</th>{{/canChange}}</tr></thead>
          <tbody>
          {{#targets}}
          <tr class="target" data-target="{{name}}">
            <td>{{name}} <span class="utc">{{kind}}</span></td>
            <td>{{rate}} <span class="utc">{{counts}}</span></td>
            <td>{{#lastError}}<span class="state-dead">{{lastError}}</span> <span class="utc">{{lastErrorAt}}</span>{{/lastError}}{{^lastError}}<span class="muted">none</span>{{/lastError}}</td>
            <td class="optional">{{paused}}</td>
            <td class="optional">{{pacing}}</td>
            {{#canChange}}<td>{{#testable}}<form method="post" action="/console/targets/{{name}}/test" class="inline">
              <input type="hidden" name="csrf" value="{{csrf}}"><button class="test-message secondary" type="submit">Send a test message</button></form>{{/testable}}{{^testable}}<span class="muted">one object per maintenance</span>{{/testable}}</td>{{/canChange}}
          </tr>
          {{/targets}}
          </tbody>
        </table></div>
        """,
        "test-preview": """
        <h1>Test message to {{name}}</h1>
        <p>A sample <code>{{eventType}}</code> event for <strong>{{system}}</strong>, rendered for this target:</p>
        <pre class="request">{{request}}</pre>
        {{#result}}<p class="flash" role="status">{{result}}</p>{{/result}}
        {{^result}}
        <form method="post" action="/console/targets/{{name}}/test" data-confirm="Send this test message to {{name}}?">
          <input type="hidden" name="csrf" value="{{csrf}}">
          <input type="hidden" name="confirm" value="1">
          <button id="confirm-test" type="submit">Send it</button>
        </form>
        {{/result}}
        """,
        "message": """
        <h1>{{heading}}</h1>
        <p>{{text}}</p>
        <p><a href="/console">Back to the maintenances</a></p>
        """,
    ]
}
