// Package settings reads wsgate's configuration: every setting is a WSGATE_*
// environment variable and, for the local server, a flag of the same name
// (lower case, dashes, no prefix) that wins over it. A bad value is an error
// that names the variable; nothing is silently defaulted.
package settings

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Settings holds every SPEC setting, parsed and checked.
type Settings struct {
	Addr                 string
	JWTSecret            Secret
	JWTPublicKey         string
	JWKSURL              string
	JWTIssuer            string
	JWTAudience          string
	AdminClaim           string
	MaxConnectionsPerIP  int
	MaxConnectsPerHour   int
	MaxMessagesPerMinute int
	MaxMessageBytes      int
	MaxConnectionAge     time.Duration
	IdleTimeout          time.Duration
	PingInterval         time.Duration
	AllowedOrigins       []string
	TrustedProxies       []netip.Prefix
	Store                string
	Table                string
	DynamoDBEndpoint     string
	APIGWEndpoint        string
	ClientPublish        bool
	AdvertiseURL         string
	CounterShards        int
}

// Secret is a string that redacts itself in logs and formatted output.
type Secret string

// String implements fmt.Stringer without revealing the secret.
func (Secret) String() string { return "[REDACTED]" }

// LogValue keeps the secret out of slog output.
func (s Secret) LogValue() string { return s.String() }

// Error is a bad setting; its text starts with the variable's name.
type Error struct {
	Var string
	Msg string
}

// Error implements error: the variable, a colon, what is wrong.
func (e *Error) Error() string { return e.Var + ": " + e.Msg }

// definition is one setting: its variable, default and help.
type definition struct {
	name, def, help string
}

var definitions = []definition{
	{"WSGATE_ADDR", "127.0.0.1:8080", "local server listen address"},
	{"WSGATE_JWT_SECRET", "", "HS256/384/512 shared secret (local: random and printed when no key is set)"},
	{"WSGATE_JWT_PUBLIC_KEY", "", "PEM public key (RS*, PS*, ES*, EdDSA): the PEM text or a path to it"},
	{"WSGATE_JWKS_URL", "", "JWKS endpoint; https required except on loopback"},
	{"WSGATE_JWT_ISSUER", "", "required iss when set"},
	{"WSGATE_JWT_AUDIENCE", "", "required aud when set"},
	{"WSGATE_ADMIN_CLAIM", "is_staff", "claim that makes a token admin: NAME or NAME=VALUE"},
	{"WSGATE_MAX_CONNECTIONS_PER_IP", "5", "concurrent connections per client IP; 0 = off"},
	{"WSGATE_MAX_CONNECTS_PER_HOUR", "10", "accepted connections per client IP per rolling hour; 0 = off"},
	{"WSGATE_MAX_MESSAGES_PER_MINUTE", "60", "inbound messages per connection per rolling minute; 0 = off"},
	{"WSGATE_MAX_MESSAGE_BYTES", "32768", "largest inbound message in bytes"},
	{"WSGATE_MAX_CONNECTION_AGE", "2h", "connections are closed (1001) at this age"},
	{"WSGATE_IDLE_TIMEOUT", "10m", "connections without a data message for this long are closed (1001)"},
	{"WSGATE_PING_INTERVAL", "30s", "protocol ping period of the local server"},
	{"WSGATE_ALLOWED_ORIGINS", "", "comma list of allowed Origin hosts (*.example.com allowed); empty = same host only"},
	{"WSGATE_TRUSTED_PROXIES", "", "comma list of CIDRs whose X-Forwarded-For is believed"},
	{"WSGATE_STORE", "memory", "store: memory or dynamodb"},
	{"WSGATE_TABLE", "wsgate", "DynamoDB table"},
	{"WSGATE_DYNAMODB_ENDPOINT", "", "DynamoDB endpoint URL (AWS default when empty)"},
	{"WSGATE_APIGW_ENDPOINT", "", "API Gateway management endpoint (from the event when empty)"},
	{"WSGATE_CLIENT_PUBLISH", "true", "whether clients may publish"},
	{"WSGATE_ADVERTISE_URL", "", "URL other instances use to reach this one (default http:// + listen address)"},
	{"WSGATE_COUNTER_SHARDS", "8", "DynamoDB counter shards"},
}

// FlagName turns WSGATE_MAX_CONNECTIONS_PER_IP into max-connections-per-ip.
func FlagName(v string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(v, "WSGATE_")), "_", "-")
}

// Register adds a string flag per setting to fs and returns the values the
// flags were given, by variable name, once fs is parsed.
func Register(fs *flag.FlagSet) func() map[string]string {
	vals := make(map[string]*string, len(definitions))
	for _, d := range definitions {
		help := d.help + " (" + d.name
		if d.def != "" {
			help += ", default " + d.def
		}
		vals[d.name] = fs.String(FlagName(d.name), "", help+")")
	}
	return func() map[string]string {
		out := map[string]string{}
		fs.Visit(func(f *flag.Flag) {
			for name, p := range vals {
				if FlagName(name) == f.Name {
					out[name] = *p
				}
			}
		})
		return out
	}
}

// Load reads every setting from flags (those set win) and getenv.
func Load(flags map[string]string, getenv func(string) string) (Settings, error) {
	raw := make(map[string]string, len(definitions))
	for _, d := range definitions {
		v, ok := flags[d.name]
		if !ok {
			v = getenv(d.name)
		}
		if strings.TrimSpace(v) == "" {
			v = d.def
		}
		raw[d.name] = strings.TrimSpace(v)
	}
	p := parser{raw: raw}
	s := Settings{
		Addr:                 p.str("WSGATE_ADDR"),
		JWTSecret:            Secret(raw["WSGATE_JWT_SECRET"]),
		JWTPublicKey:         p.str("WSGATE_JWT_PUBLIC_KEY"),
		JWKSURL:              p.str("WSGATE_JWKS_URL"),
		JWTIssuer:            p.str("WSGATE_JWT_ISSUER"),
		JWTAudience:          p.str("WSGATE_JWT_AUDIENCE"),
		AdminClaim:           p.str("WSGATE_ADMIN_CLAIM"),
		MaxConnectionsPerIP:  p.count("WSGATE_MAX_CONNECTIONS_PER_IP", 0),
		MaxConnectsPerHour:   p.count("WSGATE_MAX_CONNECTS_PER_HOUR", 0),
		MaxMessagesPerMinute: p.count("WSGATE_MAX_MESSAGES_PER_MINUTE", 0),
		MaxMessageBytes:      p.count("WSGATE_MAX_MESSAGE_BYTES", 1),
		MaxConnectionAge:     p.duration("WSGATE_MAX_CONNECTION_AGE"),
		IdleTimeout:          p.duration("WSGATE_IDLE_TIMEOUT"),
		PingInterval:         p.duration("WSGATE_PING_INTERVAL"),
		AllowedOrigins:       p.list("WSGATE_ALLOWED_ORIGINS"),
		TrustedProxies:       p.cidrs("WSGATE_TRUSTED_PROXIES"),
		Store:                p.oneOf("WSGATE_STORE", "memory", "dynamodb"),
		Table:                p.str("WSGATE_TABLE"),
		DynamoDBEndpoint:     p.url("WSGATE_DYNAMODB_ENDPOINT"),
		APIGWEndpoint:        p.url("WSGATE_APIGW_ENDPOINT"),
		ClientPublish:        p.boolean("WSGATE_CLIENT_PUBLISH"),
		AdvertiseURL:         p.url("WSGATE_ADVERTISE_URL"),
		CounterShards:        p.count("WSGATE_COUNTER_SHARDS", 1),
	}
	if p.err == nil {
		p.check(s)
	}
	return s, p.err
}

type parser struct {
	raw map[string]string
	err error
}

func (p *parser) fail(name, format string, args ...any) {
	if p.err == nil {
		p.err = &Error{Var: name, Msg: fmt.Sprintf(format, args...)}
	}
}

func (p *parser) str(name string) string { return p.raw[name] }

func (p *parser) count(name string, least int) int {
	v := p.raw[name]
	n, err := strconv.Atoi(v)
	if err != nil || n < least {
		p.fail(name, "must be a whole number of at least %d, got %q", least, v)
	}
	return n
}

func (p *parser) duration(name string) time.Duration {
	v := p.raw[name]
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		p.fail(name, "must be a positive Go duration such as 90s or 2h, got %q", v)
	}
	return d
}

func (p *parser) boolean(name string) bool {
	v := p.raw[name]
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(name, "must be true or false, got %q", v)
	}
	return b
}

func (p *parser) oneOf(name string, allowed ...string) string {
	v := p.raw[name]
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	p.fail(name, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
	return v
}

func (p *parser) list(name string) []string {
	var out []string
	for _, e := range strings.Split(p.raw[name], ",") {
		if e = strings.TrimSpace(e); e != "" {
			if strings.ContainsAny(e, "/ ") {
				p.fail(name, "entries are host names such as app.example.com or *.example.com, got %q", e)
			}
			out = append(out, e)
		}
	}
	return out
}

func (p *parser) cidrs(name string) []netip.Prefix {
	var out []netip.Prefix
	for _, e := range strings.Split(p.raw[name], ",") {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		pr, err := netip.ParsePrefix(e)
		if err != nil {
			a, aerr := netip.ParseAddr(e)
			if aerr != nil {
				p.fail(name, "%q is not a CIDR such as 10.0.0.0/8", e)
				continue
			}
			pr = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, pr.Masked())
	}
	return out
}

func (p *parser) url(name string) string {
	v := p.raw[name]
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.fail(name, "must be an http(s) URL, got %q", v)
	}
	return strings.TrimRight(v, "/")
}

// check applies the rules that span settings.
func (p *parser) check(s Settings) {
	sources := 0
	for _, set := range []bool{s.JWTSecret != "", s.JWTPublicKey != "", s.JWKSURL != ""} {
		if set {
			sources++
		}
	}
	if sources > 1 {
		p.fail("WSGATE_JWT_SECRET", "set only one of WSGATE_JWT_SECRET, WSGATE_JWT_PUBLIC_KEY and WSGATE_JWKS_URL")
		return
	}
	if name, _, _ := strings.Cut(s.AdminClaim, "="); strings.TrimSpace(name) == "" {
		p.fail("WSGATE_ADMIN_CLAIM", "needs a claim name, got %q", s.AdminClaim)
	}
	if s.JWKSURL != "" {
		if err := checkJWKSURL(s.JWKSURL); err != nil {
			p.fail("WSGATE_JWKS_URL", "%v", err)
		}
	}
}

// HasKey reports whether a verification key is configured.
func (s Settings) HasKey() bool {
	return s.JWTSecret != "" || s.JWTPublicKey != "" || s.JWKSURL != ""
}

var errNoKey = errors.New("no JWT key configured: set WSGATE_JWT_SECRET, WSGATE_JWT_PUBLIC_KEY or WSGATE_JWKS_URL")
