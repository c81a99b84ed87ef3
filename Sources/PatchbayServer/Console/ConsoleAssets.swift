import Foundation

/// The console's one stylesheet and its little script, compiled into the binary: the console works
/// offline, loads nothing from elsewhere, and its Content-Security-Policy allows only these.
enum ConsoleAssets {
    static let css = """
        :root { --fg: #1d1d1f; --muted: #5f6368; --line: #d9d9de; --bg: #ffffff; --soft: #f5f5f7;
                --ok: #2eb67d; --bad: #d92b5a; --run: #d9a21b; --link: #0b57d0; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
        header { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; justify-content: space-between;
                 padding: .6rem 1rem; background: var(--soft); border-bottom: 1px solid var(--line); }
        header nav a { margin-right: 1rem; font-weight: 600; }
        a { color: var(--link); }
        a:focus, button:focus, input:focus, select:focus { outline: 3px solid #8ab4f8; outline-offset: 1px; }
        main { padding: 1rem; max-width: 1200px; margin: 0 auto; }
        h1 { font-size: 1.4rem; margin: .2rem 0 1rem; } h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
        table { border-collapse: collapse; width: 100%; margin-bottom: 1rem; }
        th, td { text-align: left; padding: .4rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
        th { font-size: .85rem; color: var(--muted); font-weight: 600; }
        .table-scroll { overflow-x: auto; }
        .muted { color: var(--muted); } .utc { color: var(--muted); font-size: .85rem; display: block; }
        .state-dead, .dead-mark { color: var(--bad); font-weight: 700; }
        .state-delivered { color: var(--ok); } .state-pending, .state-in_flight { color: var(--run); } .state-superseded { color: var(--muted, #777); }
        .flash { background: #e6f4ea; border: 1px solid var(--ok); padding: .5rem .75rem; border-radius: 4px; }
        .error { background: #fce8ec; border: 1px solid var(--bad); padding: .5rem .75rem; border-radius: 4px; }
        form.inline { display: inline; } .sign-out { display: flex; gap: .5rem; align-items: center; }
        .filters { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: end; margin-bottom: 1rem; }
        .filters label, .stack label { display: flex; flex-direction: column; font-size: .85rem; color: var(--muted); }
        input, select, button { font: inherit; padding: .35rem .5rem; border: 1px solid var(--line); border-radius: 4px; }
        button { background: var(--link); color: #fff; border-color: var(--link); cursor: pointer; }
        button.secondary { background: var(--bg); color: var(--link); }
        pre.request { background: var(--soft); padding: .75rem; overflow-x: auto; white-space: pre-wrap; word-break: break-word; font-size: .85rem; }
        svg.progress { display: block; width: 100%; max-width: 240px; height: 14px; }
        svg.timeline { width: 100%; height: auto; border: 1px solid var(--line); background: var(--soft); }
        .card { border: 1px solid var(--line); border-radius: 6px; padding: .75rem; margin-bottom: .75rem; }
        dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; } dl.facts dt { color: var(--muted); }
        .sign-in { max-width: 380px; margin: 3rem auto; } .stack { display: flex; flex-direction: column; gap: .75rem; }
        @media (max-width: 640px) {
          main { padding: .6rem; } th.optional, td.optional { display: none; }
          table, th, td { font-size: .85rem; } header nav a { margin-right: .6rem; }
        }
        """

    /// Auto-refresh of list pages every 30 s while nothing is being typed, and a confirmation for
    /// forms that change something. Every page works without it.
    static let javascript = """
        document.addEventListener("DOMContentLoaded", function () {
          document.querySelectorAll("form[data-confirm]").forEach(function (form) {
            form.addEventListener("submit", function (event) {
              if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
            });
          });
          var refresh = document.body.getAttribute("data-refresh");
          if (refresh) {
            window.setTimeout(function () {
              var active = document.activeElement;
              if (!active || (active.tagName !== "INPUT" && active.tagName !== "SELECT")) { window.location.reload(); }
            }, parseInt(refresh, 10) * 1000);
          }
        });
        """

    static let contentSecurityPolicy =
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
}
