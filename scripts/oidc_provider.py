"""A small OpenID Connect provider for Patchbay's end-to-end tests. TESTS ONLY.

Built on Authlib's Flask authorization server: its authorization-code grant,
client authentication (client_secret_basic / client_secret_post), PKCE (S256,
required) and the OpenID Connect code-flow extension (nonce required, prompt
handling). One client, three fixed users, in-memory state, signing keys made at
start-up. The /_test/* endpoints let a test break the next ID token, change
groups, change the ID token lifetime, rotate keys, end every provider session,
and list everything issued. Never point anything real at it.

    python3 scripts/oidc_provider.py --port P --issuer http://localhost:P \
        --client-id patchbay --client-secret SECRET \
        --redirect-uri http://127.0.0.1:Q/console/oidc/callback [--id-token-ttl 300]
"""
import argparse
import html
import os
import secrets
import threading
import time

os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"  # plain http, loopback only

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError, InvalidScopeError, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode
from authlib.oidc.core.util import create_half_hash
from flask import Flask, jsonify, request, session
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from werkzeug.serving import make_server

USERS = {  # username: (password, display name, groups, ID token algorithm)
    "alice": ("alice-pw", "Alice Admin", ["ops-admins"], "RS256"),
    "bob": ("bob-pw", "Bob Viewer", ["sre"], "ES256"),
    "carol": ("carol-pw", "Carol Nobody", ["marketing"], "RS256"),
}
FAULTS = {"audience", "expired", "nonce", "foreign-key", "issuer"}
lock = threading.Lock()
state = {"ttl": 300, "fault": None, "generation": 0, "keys": {}}
codes, sessions, nonces = {}, {}, set()  # code -> AuthCode; session id -> (user, auth_time); nonces used
issued = {"codes": [], "id_tokens": [], "access_tokens": []}
cfg = argparse.Namespace()


def new_key(alg, kid):
    params = {"kid": kid, "use": "sig", "alg": alg}
    if alg == "RS256":
        return RSAKey.generate_key(2048, parameters=params, private=True)
    return ECKey.generate_key("P-256", parameters=params, private=True)


def rotate():
    with lock:
        n = state["generation"] = state["generation"] + 1
        state["keys"] = {"RS256": new_key("RS256", f"rsa-{n}"), "ES256": new_key("ES256", f"ec-{n}")}


class Client:
    def get_client_id(self): return cfg.client_id
    def get_default_redirect_uri(self): return cfg.redirect_uri
    def get_allowed_scope(self, scope): return scope
    def check_redirect_uri(self, uri): return uri == cfg.redirect_uri
    def check_client_secret(self, secret): return secrets.compare_digest(secret, cfg.client_secret)
    def check_endpoint_auth_method(self, method, endpoint): return method in ("client_secret_basic", "client_secret_post")
    def check_response_type(self, response_type): return response_type == "code"
    def check_grant_type(self, grant_type): return grant_type == "authorization_code"


class AuthCode(argparse.Namespace):  # Authlib's AuthorizationCodeMixin, for OpenID
    def get_redirect_uri(self): return self.redirect_uri
    def get_scope(self): return self.scope
    def get_nonce(self): return self.nonce
    def get_auth_time(self): return self.auth_time
    def get_acr(self): return None
    def get_amr(self): return None


class CodeGrant(grants.AuthorizationCodeGrant):
    def save_authorization_code(self, code, req):
        data = req.payload.data
        with lock:
            codes[code] = AuthCode(
                code=code, client_id=req.client.get_client_id(), redirect_uri=req.payload.redirect_uri,
                scope=req.scope, user=req.user["username"], auth_time=req.user["auth_time"],
                nonce=data.get("nonce"), code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"), expires=time.time() + 600)
            issued["codes"].append(code)
            nonces.add(data.get("nonce"))

    def query_authorization_code(self, code, client):
        item = codes.get(code)
        if item and item.client_id == client.get_client_id() and item.expires > time.time():
            return item

    def delete_authorization_code(self, item):
        codes.pop(item.code, None)

    def authenticate_user(self, item):
        return {"username": item.user, "auth_time": item.auth_time}


class StrictPKCE(CodeChallenge):
    """PKCE is required for every request, and only S256 is accepted."""
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE 'code_challenge' with 'code_challenge_method=S256' is required.")
        super().validate_code_challenge(grant, redirect_uri)


def require_openid_and_state(grant):
    def check(grant, redirect_uri):
        if "openid" not in (grant.request.payload.scope or "").split():
            raise InvalidScopeError("The scope must include 'openid'.")
        if not grant.request.payload.state:
            raise InvalidRequestError("Missing 'state' in request.")
    grant.register_hook("after_validate_authorization_request_payload", check)


class OpenIDCodeFlow(OpenIDCode):
    def exists_nonce(self, nonce, req):
        return nonce in nonces  # a nonce that already got a code is a replay

    def generate_user_info(self, user, scope):
        _, name, groups, _ = USERS[user["username"]]
        return {"sub": user["username"], "name": name, "preferred_username": user["username"],
                "email": f"{user['username']}@example.test", "groups": list(groups)}

    def encode_id_token(self, token, req):
        """Authlib's hook for the ID token; signs per user and applies a pending fault."""
        username = req.user["username"]
        alg = USERS[username][3]
        now = int(time.time())
        with lock:
            fault, state["fault"] = state["fault"], None
            key, ttl = state["keys"][alg], state["ttl"]
        claims = {"iss": cfg.issuer, "aud": cfg.client_id, "iat": now, "exp": now + ttl}
        claims.update(self.get_authorization_code_claims(req.authorization_code))  # nonce, auth_time
        claims.update(self.generate_user_info(req.user, token["scope"]))
        claims["at_hash"] = create_half_hash(token["access_token"], alg).decode()
        if fault == "audience":
            claims["aud"] = "someone-else"
        elif fault == "expired":
            claims.update(iat=now - 1200, exp=now - 600)
        elif fault == "nonce":
            claims["nonce"] = "not-this-sign-in"
        elif fault == "issuer":
            claims["iss"] = "http://localhost:1/other"
        elif fault == "foreign-key":  # never published, same kid as the published key
            key = new_key(alg, key.kid)
        id_token = jwt.encode({"alg": alg, "kid": key.kid, "typ": "JWT"}, claims, key, [alg])
        issued["id_tokens"].append(id_token)
        return id_token


def save_token(token, req):
    issued["access_tokens"].append(token["access_token"])


app = Flask(__name__)
app.config.update(SECRET_KEY=secrets.token_hex(32), SESSION_COOKIE_NAME="oidc_provider_session",
                  OAUTH2_TOKEN_EXPIRES_IN={"authorization_code": 3600})
server = AuthorizationServer(app, query_client=lambda cid: Client() if cid == cfg.client_id else None,
                             save_token=save_token)
server.register_grant(CodeGrant, [StrictPKCE(required=True), OpenIDCodeFlow(require_nonce=True),
                                  require_openid_and_state])

FORM = """<!doctype html><html><head><title>Test OIDC provider</title></head><body>
<h1>Sign in (test OIDC provider)</h1>{error}
<form method="post" action="{action}">
<label>Username <input id="username" name="username" autocomplete="username"></label>
<label>Password <input id="password" name="password" type="password"></label>
<button id="login" type="submit">Sign in</button>
</form></body></html>"""


def login_form(error=""):
    query = request.query_string.decode()
    action = html.escape(f"/authorize?{query}", quote=True)
    error = f'<p class="error">{html.escape(error)}</p>' if error else ""
    return FORM.format(action=action, error=error), 200, {"Content-Type": "text/html; charset=utf-8"}


def session_user():
    entry = sessions.get(session.get("sid"))
    return {"username": entry[0], "auth_time": entry[1]} if entry else None


@app.route("/authorize", methods=["GET", "POST"])
def authorize():
    user = session_user()
    if request.method == "POST":
        username = request.form.get("username", "")
        if username not in USERS or not secrets.compare_digest(request.form.get("password", ""), USERS[username][0]):
            return login_form("Wrong username or password.")
        user = {"username": username, "auth_time": int(time.time())}
    try:
        grant = server.get_consent_grant(end_user=user)
    except OAuth2Error as error:
        return server.handle_error_response(None, error)
    if request.method == "GET" and grant.prompt == "login":
        return login_form()
    if request.method == "POST":
        session["sid"] = sid = secrets.token_urlsafe(24)
        sessions[sid] = (user["username"], user["auth_time"])
    return server.create_authorization_response(grant=grant, grant_user=user)


@app.post("/token")
def token():
    return server.create_token_response()


@app.get("/.well-known/openid-configuration")
def discovery():
    return jsonify(
        issuer=cfg.issuer, authorization_endpoint=f"{cfg.issuer}/authorize", token_endpoint=f"{cfg.issuer}/token",
        jwks_uri=f"{cfg.issuer}/jwks", response_types_supported=["code"], subject_types_supported=["public"],
        id_token_signing_alg_values_supported=["RS256", "ES256"], code_challenge_methods_supported=["S256"],
        token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post"],
        scopes_supported=["openid", "profile", "email", "groups"], grant_types_supported=["authorization_code"])


@app.get("/jwks")
def jwks():
    keys = [k.as_dict(private=False) for k in state["keys"].values()]
    return jsonify(keys=keys), 200, {"Cache-Control": "max-age=60"}


def body(field):
    return (request.get_json(silent=True) or {}).get(field)


@app.post("/_test/fault")
def set_fault():
    fault = body("fault")
    if fault not in FAULTS:
        return jsonify(ok=False, error=f"fault must be one of {sorted(FAULTS)}"), 400
    state["fault"] = fault
    return jsonify(ok=True)


@app.post("/_test/groups/<user>")
def set_groups(user):
    groups = body("groups")
    if user not in USERS or not isinstance(groups, list):
        return jsonify(ok=False, error="unknown user or no groups list"), 400
    USERS[user][2][:] = groups
    return jsonify(ok=True)


@app.post("/_test/ttl")
def set_ttl():
    seconds = body("seconds")
    if not isinstance(seconds, int) or seconds <= 0:
        return jsonify(ok=False, error="seconds must be a positive integer"), 400
    state["ttl"] = seconds
    return jsonify(ok=True)


@app.post("/_test/rotate")
def rotate_keys():
    rotate()
    return jsonify(ok=True, kids=[k.kid for k in state["keys"].values()])


@app.post("/_test/logout")
def logout_all():
    sessions.clear()
    return jsonify(ok=True)


@app.get("/_test/issued")
def list_issued():
    return jsonify(issued)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    for name in ("--issuer", "--client-id", "--client-secret", "--redirect-uri"):
        parser.add_argument(name, required=True)
    parser.add_argument("--id-token-ttl", type=int, default=300)
    parser.parse_args(namespace=cfg)
    state["ttl"] = cfg.id_token_ttl
    rotate()
    httpd = make_server("127.0.0.1", cfg.port, app, threaded=True)
    print(f"ready http://localhost:{cfg.port}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
