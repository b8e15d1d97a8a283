package settings

import (
	"context"

	"github.com/wsgate/wsgate/core"
)

// Gateway returns the gateway configuration these settings describe: the
// token verifier built from the configured key source, the limits, the
// origin policy and client publishing. The caller adds the Store, the
// Sender and the Logger. ctx bounds a JWKS key source's background refresh.
func (s Settings) Gateway(ctx context.Context) (core.Config, error) {
	keyfunc, methods, err := s.Key(ctx)
	if err != nil {
		return core.Config{}, err
	}
	auth, err := core.NewAuthenticator(core.AuthConfig{
		Keyfunc: keyfunc, Methods: methods,
		Issuer: s.JWTIssuer, Audience: s.JWTAudience, AdminClaim: s.AdminClaim,
	})
	if err != nil {
		return core.Config{}, &Error{Var: "WSGATE_ADMIN_CLAIM", Msg: err.Error()}
	}
	return core.Config{
		Auth:                 auth,
		MaxConnectionsPerIP:  s.MaxConnectionsPerIP,
		MaxConnectsPerHour:   s.MaxConnectsPerHour,
		MaxMessagesPerMinute: s.MaxMessagesPerMinute,
		MaxConnectionAge:     s.MaxConnectionAge,
		Origins:              core.OriginPolicy{Hosts: s.AllowedOrigins},
		ClientPublish:        s.ClientPublish,
	}, nil
}
