import Foundation
import HTTPTypes
import Hummingbird

/// What the console's middleware established for a request: the signed-in operator and, for a
/// form post, the form it sent (read once, bounded, with its CSRF token checked).
struct ConsoleRequest: Sendable {
    var session: ConsoleSession
    var form: Form?
}

extension PatchbayRequestContext {
    /// The console request; set by `ConsoleSessionMiddleware` on every route of the console's
    /// signed-in group, so a handler there never checks a session itself.
    func consoleRequest() throws -> ConsoleRequest {
        guard let console else {
            throw HTTPError(.internalServerError, message: "a console route was registered outside the signed-in group")
        }
        return console
    }
}

/// Every console page and form behind one check (after Hummingbird's session middleware): a page
/// needs a live session, or it leads to the sign-in form; a form post needs a live session and
/// that session's CSRF token, or it is refused with 403, never a redirect a forged form could
/// follow. A session is live when its cookie is intact and unexpired, the token that signed in is
/// still one of its role's, and it was not signed out on any instance (`ConsoleRoutes.session`).
struct ConsoleSessionMiddleware: RouterMiddleware {
    typealias Context = PatchbayRequestContext
    let console: ConsoleRoutes

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        if request.method == .post {
            // The form is read before the session is looked up: a form too large or too slow is
            // refused as such (413, 408) whoever sends it.
            let form = try await Form.read(request)
            guard let session = try await console.session(of: request), console.keys.checkCSRF(form.value("csrf"), for: session.id) else {
                throw HTTPError(.forbidden, message: "the console form is missing a valid session or CSRF token; sign in again")
            }
            context.console = ConsoleRequest(session: session, form: form)
        } else {
            guard let session = try await console.session(of: request) else {
                return Response.redirect(to: "/console/sign-in", type: .normal)
            }
            context.console = ConsoleRequest(session: session, form: nil)
        }
        return try await next(request, context)
    }
}

/// The console's changing routes (replay, test message) are for admins; a viewer's session gets
/// 403. Added after `ConsoleSessionMiddleware`, on the group of those routes.
struct ConsoleAdminMiddleware: RouterMiddleware {
    typealias Context = PatchbayRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard try context.consoleRequest().session.role.canChange else {
            throw HTTPError(.forbidden, message: "this needs an admin: viewers cannot replay, send test messages or read the audit trail")
        }
        return try await next(request, context)
    }
}
