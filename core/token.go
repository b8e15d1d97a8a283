package core

import "strings"

// BearerToken reads the token of an `Authorization: Bearer X` header value;
// the scheme is case-insensitive, any other scheme is no token.
func BearerToken(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// HandshakeToken applies the SPEC's token rule to what an opening
// handshake carries, first found wins: the `token` query parameter, then an
// `Authorization: Bearer` header (authorization holds the header's values),
// then the subprotocol pair `bearer, JWT` (protocols holds the
// Sec-WebSocket-Protocol values). offersBearer reports that the client
// offered the `bearer` subprotocol, which the server must then select,
// whichever way the token came: a browser fails a handshake that selects
// none of the subprotocols it offered.
func HandshakeToken(query string, authorization, protocols []string) (token string, offersBearer bool) {
	var viaProtocol string
	var offered []string
	for _, v := range protocols {
		for _, p := range strings.Split(v, ",") {
			offered = append(offered, strings.TrimSpace(p))
		}
	}
	for i, p := range offered {
		if p == "bearer" {
			offersBearer = true
			if viaProtocol == "" && i+1 < len(offered) {
				viaProtocol = offered[i+1]
			}
		}
	}
	if query != "" {
		return query, offersBearer
	}
	for _, v := range authorization {
		if t, ok := BearerToken(v); ok {
			return t, offersBearer
		}
	}
	return viaProtocol, offersBearer
}

// AdminClaimFor returns the claim that makes a token admin under an admin
// claim setting (see [AuthConfig].AdminClaim): boolean true for "NAME", the
// string VALUE for "NAME=VALUE". Token minters (dev tokens, peer tokens)
// use it so that what they sign is what [Authenticator] accepts.
func AdminClaimFor(setting string) (name string, value any) {
	name, v, hasValue := ParseAdminClaim(setting)
	if hasValue {
		return name, v
	}
	return name, true
}
